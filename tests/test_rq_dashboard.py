"""rq-dashboard (the PyPI package, its Flask app driven through Flask's test client) on a running
``jobpool start`` pool: it lists the pool's workers with their current jobs, the queues with the
counts jobpool's registries hold, a failed job with its traceback, and a requeue from it is run
by the pool."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import rq
import rq_dashboard.web
from flask.testing import FlaskClient
from rq_dashboard.cli import make_flask_app

import jobs
from conftest import wait_for
from jobpool import Callback, Group, Queue, Retry, cancel_job
from jobpool.command import send_stop_job_command
from jobpool.job import Job, JobStatus
from jobpool.rate_limit import RateLimit
from jobpool.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from jobpool.repeat import Repeat
from support.pool_process import Pool

PREFIX = "/rq"
"""Where the dashboard is mounted, as behind a reverse proxy (its CLI's ``--url-prefix``)."""


@pytest.fixture
def dashboard(redis_url: str) -> Iterator[FlaskClient]:
    """rq-dashboard's app as its CLI builds it, pointed at the test's Redis."""
    app = make_flask_app(None, None, None, PREFIX)
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["TESTING"] = True  # a dashboard exception fails the request's test, not a 500 page
    rq_dashboard.web.setup_rq_connection(app)
    with app.test_client() as client:
        yield client
    app.redis_conn.close()


def get_json(client: FlaskClient, path: str) -> Any:
    response = client.get(PREFIX + path)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def get_html(client: FlaskClient, path: str) -> str:
    response = client.get(PREFIX + path, follow_redirects=True)  # /0/view/queues is served at /
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def job_detail(client: FlaskClient, job_id: str) -> dict[str, Any]:
    """The dashboard's job.json, or ``{"error": ...}`` naming the exception it raised."""
    try:
        detail: dict[str, Any] = get_json(client, f"/0/data/job/{job_id}.json")
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return detail


REGISTRY_FIELDS = {
    "count": "count",
    "started": "started_job_registry_count",
    "failed": "failed_job_registry_count",
    "finished": "finished_job_registry_count",
    "deferred": "deferred_job_registry_count",
    "scheduled": "scheduled_job_registry_count",
    "canceled": "canceled_job_registry_count",
}
"""A queue's counts (its length, then its registries') and the fields of queues.json holding them."""


def registry_counts(connection: redis.Redis, name: str) -> dict[str, int]:
    """What jobpool holds for a queue."""
    registries = {
        "started": StartedJobRegistry,
        "failed": FailedJobRegistry,
        "finished": FinishedJobRegistry,
        "deferred": DeferredJobRegistry,
        "scheduled": ScheduledJobRegistry,
        "canceled": CanceledJobRegistry,
    }
    counts = {
        kind: each(name, connection=connection).get_job_count(cleanup=False)
        for kind, each in registries.items()
    }
    return {"count": Queue(name, connection=connection).count, **counts}


def dashboard_counts(listed: dict[str, Any]) -> dict[str, int]:
    """The same counts, as the dashboard's queues.json lists them."""
    return {kind: listed[field] for kind, field in REGISTRY_FIELDS.items()}


def test_dashboard_shows_a_running_pool_and_its_requeue_is_run(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool], dashboard: FlaskClient
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    failed = queue.enqueue(jobs.fail_once, redis_url)
    wait_for(lambda: failed.get_status() == JobStatus.FAILED)
    # Both workers busy with a job each, and one more job waiting behind them.
    gates = [queue.enqueue(jobs.wait_for_gate, f"gate:{n}") for n in range(2)]
    for gate in gates:
        running.busy_worker(gate.id)
    waiting = queue.enqueue(jobs.add, 1, 2)

    # A pool's supervisor writes RQ's records of a running execution (which a worker's current job
    # is read from) within half a second of its start: the dashboard shows it from then on.
    workers: list[dict[str, Any]] = []

    def current_jobs_listed() -> bool:
        workers[:] = get_json(dashboard, "/0/data/workers.json")["workers"]
        current = [w["current_job"]["job_id"] for w in workers if isinstance(w["current_job"], dict)]
        return sorted(current) == sorted(gate.id for gate in gates)

    wait_for(current_jobs_listed)
    assert sorted(worker["name"].split(".")[0] for worker in workers) == ["testpool", "testpool"]
    assert all(worker["queues"] == ["q"] and worker["state"] == "busy" for worker in workers)
    assert sum(worker["failed_job_count"] for worker in workers) == 1
    assert "Workers" in get_html(dashboard, "/0/view/workers")

    # A worker that took a job ahead with its slow one has it taken back within 100 ms: settled then.
    wait_for(
        lambda: (
            registry_counts(connection, "q")
            == {**dict.fromkeys(REGISTRY_FIELDS, 0), "count": 1, "started": 2, "failed": 1}
        )
    )
    (listed,) = get_json(dashboard, "/0/data/queues.json")["queues"]
    assert listed["name"] == "q"
    assert dashboard_counts(listed) == registry_counts(connection, "q")
    assert "q" in get_html(dashboard, "/0/view/queues")

    started = get_json(dashboard, "/0/data/jobs/q/started/8/asc/1.json")
    assert sorted(job["id"] for job in started["jobs"]) == sorted(g.id for g in gates)
    queued = get_json(dashboard, "/0/data/jobs/q/queued/8/asc/1.json")
    assert [job["id"] for job in queued["jobs"]] == [waiting.id]
    failed_list = get_json(dashboard, "/0/data/jobs/q/failed/8/asc/1.json")
    (failed_entry,) = failed_list["jobs"]
    assert failed_entry["id"] == failed.id
    assert "ValueError: first run" in failed_entry["exc_info"]
    assert "Traceback (most recent call last)" in failed_entry["exc_info"]
    get_html(dashboard, "/0/view/jobs/q/failed/8/asc/1")

    detail = get_json(dashboard, f"/0/data/job/{failed.id}.json")
    assert detail["status"] == "failed" and detail["origin"] == "q"
    latest = failed.latest_result()
    assert latest is not None and detail["exc_info"] == latest.exc_string
    assert "ValueError: first run" in detail["exc_info"]
    assert failed.id in get_html(dashboard, f"/0/view/job/{failed.id}")

    requeued = dashboard.post(f"{PREFIX}/job/{failed.id}/requeue")
    assert requeued.status_code == 200 and requeued.get_json() == {"status": "OK"}
    assert failed.id not in FailedJobRegistry("q", connection=connection)
    queued = get_json(dashboard, "/0/data/jobs/q/queued/8/asc/1.json")
    assert [job["id"] for job in queued["jobs"]] == [waiting.id, failed.id]
    connection.rpush("gate:0", "open")  # a worker is free again: it runs the waiting job, then ours
    wait_for(lambda: failed.get_status() == JobStatus.FINISHED)
    assert failed.return_value() == "run 2"
    detail = get_json(dashboard, f"/0/data/job/{failed.id}.json")
    assert detail["status"] == "finished" and detail["result"] == "run 2"
    finished = get_json(dashboard, "/0/data/jobs/q/finished/8/asc/1.json")
    assert {job["id"] for job in finished["jobs"]} >= {failed.id, waiting.id, gates[0].id}
    connection.rpush("gate:1", "open")
    wait_for(lambda: Job.fetch(gates[1].id, connection).get_status() == JobStatus.FINISHED)
    after = dashboard_counts(get_json(dashboard, "/0/data/queues.json")["queues"][0])
    assert after == registry_counts(connection, "q")
    assert after["failed"] == 0 and after["finished"] == 4

    def counters_listed() -> bool:  # a worker writes them with each job's record
        workers[:] = get_json(dashboard, "/0/data/workers.json")["workers"]
        return [sum(w[f"{kind}_job_count"] for w in workers) for kind in ("successful", "failed")] == [4, 1]

    wait_for(counters_listed)
    assert all(worker["total_working_time"] > 0 for worker in workers)


def test_every_registry_and_kind_of_job_jobpool_writes_reads_in_the_dashboard(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool], dashboard: FlaskClient
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    returned = queue.enqueue(jobs.returns, {"numbers": [1, 2.5], "text": "x"}, meta={"owner": "ops"})
    retried = queue.enqueue(jobs.fail, "always", retry=Retry(1), on_failure=Callback(jobs.on_failure_hook))
    repeated = queue.enqueue(jobs.add, 2, 3, repeat=Repeat(times=1))
    (grouped,) = Group.create(connection, name="batch").enqueue_many(
        queue, [Queue.prepare_data(jobs.add, (1, 1), job_id="in-a-group")]
    )
    limited = queue.enqueue(jobs.add, 4, 4, rate_limit=RateLimit("dashboard", 1))
    ended = [returned, retried, repeated, grouped, limited]
    wait_for(lambda: all(job.get_status() in (JobStatus.FINISHED, JobStatus.FAILED) for job in ended))
    blocker = queue.enqueue(jobs.wait_for_gate, "gate")
    child = queue.enqueue(jobs.add, 5, 5, depends_on=blocker)
    scheduled = queue.enqueue_in(timedelta(hours=1), jobs.add, 6, 6)
    canceled = queue.enqueue(jobs.add, 7, 7, depends_on=blocker)  # never in the queue: no worker takes it
    cancel_job(canceled.id, connection)
    running.busy_worker(blocker.id)

    (listed,) = get_json(dashboard, "/0/data/queues.json")["queues"]
    assert dashboard_counts(listed) == registry_counts(connection, "q")
    by_registry = {
        "finished": {returned.id, repeated.id, grouped.id, limited.id},
        "failed": {retried.id},
        "started": {blocker.id},
        "deferred": {child.id},
        "scheduled": {scheduled.id},
        "canceled": {canceled.id},
    }
    for registry, ids in by_registry.items():
        page = get_json(dashboard, f"/0/data/jobs/q/{registry}/8/asc/1.json")
        assert {job["id"] for job in page["jobs"]} == ids, registry
        get_html(dashboard, f"/0/view/jobs/q/{registry}/8/asc/1")

    for job in [*ended, blocker, scheduled]:
        detail = get_json(dashboard, f"/0/data/job/{job.id}.json")
        assert detail["status"] == job.get_status(), job.id
        assert job.id in get_html(dashboard, f"/0/view/job/{job.id}")
    assert get_json(dashboard, f"/0/data/job/{returned.id}.json")["result"] == {
        "numbers": [1, 2.5],
        "text": "x",
    }
    assert json.loads(get_json(dashboard, f"/0/data/job/{returned.id}.json")["metadata"]) == {"owner": "ops"}
    assert "ValueError: always" in get_json(dashboard, f"/0/data/job/{retried.id}.json")["exc_info"]
    # rq-dashboard 0.9.0's job detail fails for any job with dependencies on RQ 3.0 (it decodes
    # RQ's Job.dependency_ids, which are str since RQ 3.0): the same for a job RQ enqueued.
    rq_parent = rq.Queue("elsewhere", connection=connection).enqueue(jobs.add, 1, 1)
    rq_child = rq.Queue("elsewhere", connection=connection).enqueue(jobs.add, 2, 2, depends_on=rq_parent)
    theirs = job_detail(dashboard, rq_child.id)
    for job in (child, canceled):
        assert job.id in get_html(dashboard, f"/0/view/job/{job.id}")
        ours = job_detail(dashboard, job.id)
        assert ours.keys() == theirs.keys() and ours.get("error") == theirs.get("error")
        if "error" not in ours:  # a fixed dashboard
            assert ours["status"] == job.get_status() and ours["depends_on"] == [blocker.id]

    # The dashboard's delete, of a job jobpool wrote, leaves nothing of it behind.
    deleted = dashboard.post(f"{PREFIX}/job/{canceled.id}/delete")
    assert deleted.status_code == 200 and deleted.get_json() == {"status": "OK"}
    assert Job.exists(canceled.id, connection) is False
    assert canceled.id not in CanceledJobRegistry("q", connection=connection)


def test_failures_the_pool_records_itself_show_their_reason_in_the_dashboard(
    connection: redis.Redis, pool: Callable[..., Pool], dashboard: FlaskClient
) -> None:
    """Failures written by the supervisor (a worker's death, a hard timeout) or by a stop command,
    not by the job's own exception: the dashboard shows each with its reason and status."""
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    killed = queue.enqueue(jobs.sleep_for, 60)
    running.busy_worker(killed.id).kill()
    wait_for(lambda: killed.get_status() == JobStatus.FAILED)
    stuck = queue.enqueue(jobs.stuck_in_c, job_timeout=1)
    wait_for(lambda: stuck.get_status() == JobStatus.FAILED, deadline_seconds=30)
    stopped = queue.enqueue(jobs.sleep_for, 60)
    running.busy_worker(stopped.id)
    send_stop_job_command(connection, stopped.id)
    wait_for(lambda: stopped.get_status() == JobStatus.STOPPED)

    page = get_json(dashboard, "/0/data/jobs/q/failed/8/asc/1.json")
    listed = {job["id"]: job["exc_info"] for job in page["jobs"]}
    assert listed.keys() == {killed.id, stuck.id, stopped.id}
    reasons = {
        killed.id: "terminated unexpectedly",
        stuck.id: "did not return to Python",
        stopped.id: "stopped by user",
    }
    for job_id, reason in reasons.items():
        assert reason in listed[job_id]
    for job in (killed, stuck, stopped):
        detail = get_json(dashboard, f"/0/data/job/{job.id}.json")
        assert detail["status"] == job.get_status() and detail["exc_info"] == listed[job.id]
        latest = job.latest_result()
        assert detail["exc_info"] == (latest.exc_string if latest else None)


def test_emptying_the_queue_and_started_registry_from_the_dashboard_while_the_pool_runs(
    connection: redis.Redis, pool: Callable[..., Pool], dashboard: FlaskClient
) -> None:
    """The dashboard's "Empty" buttons delete the jobs with RQ's ``Job.delete``, a running one
    included: the pool's ending of that job writes nothing back, and the pool goes on."""
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    deleted_running = queue.enqueue(jobs.wait_for_gate, "gate")
    running.busy_worker(deleted_running.id)
    wait_for(lambda: connection.keys(f"rq:execution:{deleted_running.id}:*"))  # its RQ records written
    waiting = [queue.enqueue(jobs.add, 1, n) for n in range(3)]
    for registry in ("started", "queued"):
        emptied = dashboard.post(f"{PREFIX}/queue/q/{registry}/empty")
        assert emptied.status_code == 200 and emptied.get_json() == {"status": "OK"}
    assert not any(Job.exists(job.id, connection) for job in [deleted_running, *waiting])

    connection.rpush("gate", "open")
    after = queue.enqueue(jobs.add, 2, 2)
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
    assert not Job.exists(deleted_running.id, connection)
    assert not connection.keys(f"*{deleted_running.id}*")
    (listed,) = get_json(dashboard, "/0/data/queues.json")["queues"]
    assert dashboard_counts(listed) == {**dict.fromkeys(REGISTRY_FIELDS, 0), "finished": 1}
    (worker,) = get_json(dashboard, "/0/data/workers.json")["workers"]
    assert worker["current_job"] == "idle"
