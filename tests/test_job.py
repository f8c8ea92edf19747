"""Job: fetching, status, meta, results, position, cancel, delete, requeue, the current job."""

from __future__ import annotations

import pytest
import redis

import jobs
from conftest import run_rq_worker
from jobpool import Queue, cancel_job, get_current_job, requeue_job
from jobpool.exceptions import InvalidJobOperation, NoSuchJobError
from jobpool.job import Job, JobStatus
from jobpool.registry import CanceledJobRegistry, FailedJobRegistry
from jobpool.results import Result


def test_fetch_round_trips_every_attribute(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(
        jobs.add,
        1,
        2,
        job_id="attrs",
        meta={"a": 1},
        result_ttl=50,
        failure_ttl=60,
        ttl=70,
        description="d",
        job_timeout=90,
    )
    fetched = Job.fetch("attrs", connection=connection)
    assert (fetched.func_name, fetched.args, fetched.kwargs) == ("jobs.add", (1, 2), {})
    assert (fetched.result_ttl, fetched.failure_ttl, fetched.ttl, fetched.timeout) == (50, 60, 70, 90)
    assert fetched.meta == {"a": 1} and fetched.description == "d" and fetched.origin == "q"
    assert fetched.created_at == job.created_at.replace(microsecond=fetched.created_at.microsecond)
    assert fetched.enqueued_at is not None and fetched.started_at is None and fetched.ended_at is None
    assert fetched.worker_name is None and fetched.last_heartbeat is None
    assert fetched.get_status(refresh=False) == JobStatus.QUEUED
    assert Job.fetch("attrs:someexecution", connection=connection).id == "attrs"


def test_fetch_many_is_one_round_trip_with_none_for_missing(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    a, b = queue.enqueue(jobs.add, 1, 1), queue.enqueue(jobs.add, 2, 2)
    connection.config_resetstat()
    found = Job.fetch_many([a.id, "missing", b.id], connection=connection)
    assert [j.id if j else None for j in found] == [a.id, None, b.id]
    assert connection.info("commandstats")["cmdstat_hgetall"]["calls"] == 3


def test_fetch_unknown_job(connection: redis.Redis) -> None:
    with pytest.raises(NoSuchJobError, match="nope"):
        Job.fetch("nope", connection=connection)


@pytest.mark.parametrize("status", list(JobStatus))
def test_status_properties(connection: redis.Redis, status: JobStatus) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2)
    connection.hset(job.key, "status", status.value)
    assert job.get_status() == status
    flags = {s: getattr(job, f"is_{s.value}") for s in JobStatus if s != JobStatus.RATE_LIMITED}
    assert [s for s, on in flags.items() if on] == ([status] if status != JobStatus.RATE_LIMITED else [])
    job.delete()
    with pytest.raises(InvalidJobOperation, match="Failed to retrieve status"):
        job.get_status()


def test_meta_save_and_refresh(connection: redis.Redis) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2, meta={"a": 1})
    other = Job.fetch(job.id, connection)
    other.meta["progress"] = 50
    other.save_meta()
    assert job.get_meta(refresh=False) == {"a": 1}
    assert job.get_meta() == {"a": 1, "progress": 50}
    connection.hset(job.key, "description", "changed")
    job.refresh()
    assert job.description == "changed"


def test_current_job_and_meta_from_inside_a_job(connection: redis.Redis) -> None:
    """get_current_job() is the running job inside perform() and None outside; meta saved from
    inside is what the producer reads."""
    producer_job = Queue("q", connection=connection).enqueue(jobs.record_meta, "handled_by", "worker-1")
    assert get_current_job() is None
    assert jobs.current_job_id() is None
    running = Job.fetch(producer_job.id, connection)
    assert running.perform() == producer_job.id
    assert get_current_job() is None
    assert producer_job.get_meta() == {"handled_by": "worker-1"}


def test_results_written_by_rq_are_read(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    ok, bad = queue.enqueue(jobs.add, 2, 3), queue.enqueue(jobs.fail, "broken")
    assert ok.return_value() is None and ok.latest_result() is None
    run_rq_worker(connection, "q")
    assert ok.return_value(refresh=True) == 5 and ok.result == 5 and ok.is_finished
    latest = ok.latest_result()
    assert latest is not None and latest.type == Result.Type.SUCCESSFUL and latest.execution_id
    assert latest.execution_started_at is not None and latest.execution_ended_at is not None
    assert [r.id for r in ok.results()] == [latest.id]
    assert bad.is_failed and "ValueError: broken" in (bad.exc_info or "")
    failure = bad.latest_result()
    assert failure is not None and failure.type == Result.Type.FAILED and bad.return_value() is None
    assert Result.count(ok) == 1
    Result.delete_all(ok)
    assert ok.latest_result() is None


def test_cancel(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.add, 1, 2)
    job.cancel()
    assert job.is_canceled and queue.count == 0
    assert job in CanceledJobRegistry("q", connection=connection)
    assert Job.exists(job.id, connection)
    with pytest.raises(InvalidJobOperation):
        job.cancel()
    other = queue.enqueue(jobs.add, 3, 4)
    cancel_job(other.id, connection=connection)
    assert other.is_canceled


def test_cancel_with_enqueue_dependents_leaves_the_canceled_parent_out(connection: redis.Redis) -> None:
    """As RQ: the canceled parent no longer holds its dependents back; other parents still do."""
    queue = Queue("q", connection=connection)
    parent, other = queue.enqueue(jobs.add, 1, 2), queue.enqueue(jobs.add, 0, 0)
    only_parent = queue.enqueue(jobs.add, 3, 4, depends_on=parent)
    both = queue.enqueue(jobs.add, 5, 6, depends_on=[parent, other])
    connection.ltrim(queue.key, 1, 0)  # as if both parents had been taken by workers
    cancel_job(parent.id, connection=connection, enqueue_dependents=True)
    assert only_parent.is_queued and queue.job_ids == [only_parent.id]
    assert both.is_deferred and both.id in queue.deferred_job_registry


def test_cancel_without_enqueue_dependents_keeps_them_deferred(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    child = queue.enqueue(jobs.add, 3, 4, depends_on=parent)
    parent.cancel()
    assert child.is_deferred and queue.job_ids == []


def test_delete(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    child = queue.enqueue(jobs.add, 3, 4, depends_on=parent)
    parent.delete(delete_dependents=True)
    assert not Job.exists(parent.id, connection) and not Job.exists(child.id, connection)
    assert queue.count == 0 and child.id not in queue.deferred_job_registry
    assert not connection.exists(parent.dependents_key, child.dependencies_key)


def test_requeue_failed_job(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.fail)
    run_rq_worker(connection, "q")
    registry = FailedJobRegistry("q", connection=connection)
    assert job.id in registry and job.is_failed
    requeued = requeue_job(job.id, connection=connection)
    assert requeued.is_queued and job.id not in registry and queue.job_ids == [job.id]
    assert requeued.started_at is None and requeued.ended_at is None
    with pytest.raises(InvalidJobOperation):
        requeued.requeue()


def test_executions_are_read_while_the_job_runs(connection: redis.Redis) -> None:
    """RQ's worker writes the execution; jobpool reads it from inside the job."""
    job = Queue("q", connection=connection).enqueue(jobs.describe_own_executions)
    run_rq_worker(connection, "q")
    (execution_id, composite_key, worker_name, started) = job.return_value(refresh=True)
    assert composite_key == f"{job.id}:{execution_id}" and worker_name and started
    assert job.get_executions() == []  # gone once the execution ended
