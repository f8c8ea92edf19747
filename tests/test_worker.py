"""jobpool's Worker (the Rust core under a Python loop) against a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
import rq

import jobs
from conftest import SUCCESS_RESULT_FIELDS, wait_for
from jobpool import Callback, Queue, Retry, Worker
from jobpool.job import Job, JobStatus
from jobpool.recovery import recover_abandoned
from jobpool.results import Result
from support.redis_replies import Entries

WORKER_PROCESS = Path(__file__).parent / "support" / "worker_process.py"


def drain(connection: redis.Redis, *queue_names: str, **options: object) -> bool:
    return Worker(list(queue_names), connection=connection, **options).work(burst=True)  # type: ignore[arg-type]


def test_runs_jobs_and_writes_what_rq_reads(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    added = [queue.enqueue(jobs.add, i, 10) for i in range(5)]
    none = queue.enqueue(jobs.echo)
    assert drain(connection, "q") is True
    assert [job.return_value() for job in added] == [10, 11, 12, 13, 14]
    for job in added:
        theirs = rq.job.Job.fetch(job.id, connection=connection)
        assert theirs.get_status() == rq.job.JobStatus.FINISHED
        assert theirs.return_value() == job.return_value()
        assert theirs.started_at and theirs.ended_at and theirs.worker_name
    assert none.return_value() == ((), {})
    assert queue.finished_job_registry.count == 6 and queue.count == 0
    assert connection.zcard("rq:wip:q") == 0 and not connection.keys("rq:execution:*")
    ((_, fields),) = cast(Entries, connection.xrange(f"rq:results:{added[0].id}"))
    assert set(fields) == SUCCESS_RESULT_FIELDS
    assert 0 < connection.ttl(added[0].key) <= 500  # RQ's default result_ttl


def test_worker_registers_as_an_rq_worker(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    queue.enqueue(jobs.add, 1, 1)
    queue.enqueue(jobs.fail)
    worker = Worker([queue], connection=connection, name="w-counted")
    worker.work(burst=True)
    raw = connection.hgetall("rq:worker:w-counted")
    assert raw[b"successful_job_count"] == b"1" and raw[b"failed_job_count"] == b"1"
    assert raw[b"queues"] == b"q" and raw[b"death"]
    assert not connection.sismember("rq:workers", "rq:worker:w-counted")
    assert 0 < connection.ttl("rq:worker:w-counted") <= 60


@pytest.mark.parametrize(
    ("enqueue", "reason"),
    [
        (lambda q: q.enqueue(jobs.fail, "broken"), "ValueError: broken"),
        (lambda q: q.enqueue("jobs.no_such_function"), "no_such_function"),
        (lambda q: q.enqueue("no_such_module.function"), "no_such_module"),
        (lambda q: q.enqueue(jobs.spin_until_timeout, job_timeout=1), "JobTimeoutException"),
        (
            lambda q: q.enqueue(jobs.add, 1, 2, on_success=Callback(jobs.failing_success_hook)),
            "callback broke",
        ),
    ],
)
def test_every_failure_is_recorded_with_a_reason_and_the_worker_carries_on(
    connection: redis.Redis, enqueue: object, reason: str
) -> None:
    queue = Queue("q", connection=connection)
    failing = enqueue(queue)  # type: ignore[operator]
    after = queue.enqueue(jobs.add, 2, 2)
    drain(connection, "q")
    assert failing.get_status() == JobStatus.FAILED
    assert failing.id in queue.failed_job_registry
    assert reason in (failing.exc_info or "")
    latest = failing.latest_result()
    assert latest is not None and latest.type == Result.Type.FAILED and reason in (latest.exc_string or "")
    assert after.return_value() == 4


def test_corrupt_job_hash_fails_with_a_reason(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    corrupt = queue.enqueue(jobs.add, 1, 2)
    connection.hset(corrupt.key, "data", b"\x80not a pickle")
    after = queue.enqueue(jobs.add, 2, 2)
    drain(connection, "q")
    assert corrupt.get_status() == JobStatus.FAILED
    assert "DeserializationError" in (corrupt.exc_info or "") and corrupt.id in (corrupt.exc_info or "")
    assert after.return_value() == 4


def test_unserializable_return_value_is_stored_as_rq_does(connection: redis.Redis) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.return_unpicklable)
    drain(connection, "q")
    assert job.return_value() == "Unserializable return value"


def test_retries_then_fails(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.fail, retry=Retry(max=2))
    drain(connection, "q")
    assert job.get_status() == JobStatus.FAILED and Job.fetch(job.id, connection).retries_left == 0
    assert Result.count(job) == 1  # retries write no result; the final failure does


def test_retry_interval_goes_to_the_scheduled_registry(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.fail, retry=Retry(max=1, interval=60))
    drain(connection, "q")
    assert job.get_status() == JobStatus.SCHEDULED and job.id in queue.scheduled_job_registry
    assert 55 <= queue.scheduled_job_registry.get_scheduled_time(job).timestamp() - time.time() <= 61


def test_meta_current_job_and_callbacks(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    meta = queue.enqueue(jobs.record_meta, "k", "v")
    succeeded = queue.enqueue(jobs.add, 3, 4, on_success=Callback(jobs.on_success_meta))
    failed = queue.enqueue(jobs.fail, on_failure=Callback(jobs.on_failure_hook))
    drain(connection, "q")
    assert meta.return_value() == meta.id and meta.get_meta() == {"k": "v"}
    assert succeeded.get_meta() == {"success_seen": 7}
    assert failed.get_meta() == {"failure_seen": "ValueError"}


def test_dependents_run_after_their_parent(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 1)
    child = queue.enqueue(jobs.add, 2, 2, depends_on=parent)
    drain(connection, "q")
    assert parent.is_finished and child.is_finished and child.return_value() == 4


def test_priority_is_queue_order(connection: redis.Redis) -> None:
    low, high = Queue("low", connection=connection), Queue("high", connection=connection)
    low_jobs = [low.enqueue(jobs.started_at_epoch) for _ in range(5)]
    high_jobs = [high.enqueue(jobs.started_at_epoch) for _ in range(5)]
    drain(connection, "high", "low")
    assert max(j.return_value() for j in high_jobs) < min(j.return_value() for j in low_jobs)


def test_max_jobs_and_burst_return_value(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    for i in range(5):
        queue.enqueue(jobs.add, i, i)
    assert Worker([queue], connection=connection).work(burst=True, max_jobs=2) is True
    assert queue.count == 3
    assert drain(connection, "empty") is False


def test_rq_enqueued_jobs_are_run_and_read_back_by_rq(connection: redis.Redis) -> None:
    theirs = rq.Queue("q", connection=connection)
    job = theirs.enqueue(jobs.add, 20, 22)
    bad = theirs.enqueue(jobs.fail, "from rq")
    drain(connection, "q")
    assert rq.job.Job.fetch(job.id, connection=connection).return_value() == 42
    fetched = rq.job.Job.fetch(bad.id, connection=connection)
    assert fetched.get_status() == rq.job.JobStatus.FAILED
    assert "ValueError: from rq" in (cast(rq.results.Result, fetched.latest_result()).exc_string or "")
    assert bad.id in rq.registry.FailedJobRegistry("q", connection=connection)


@pytest.fixture
def worker_process(redis_url: str) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(WORKER_PROCESS), redis_url, *args], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_idle_worker_wakes_at_once_for_jobpool_jobs_and_within_a_second_for_rq_pushes(
    connection: redis.Redis, worker_process: object
) -> None:
    worker_process("q", "--max-jobs", "3")  # type: ignore[operator]
    queue = Queue("q", connection=connection)
    # The case under test: the worker idle, blocked on the wake-up list.
    wait_for(lambda: any(client.get("cmd") == "blpop" for client in connection.client_list()))
    latencies = []
    for _ in range(2):
        enqueued = time.time()
        job = queue.enqueue(jobs.started_at_epoch)
        wait_for(lambda job=job: job.get_status() == JobStatus.FINISHED)  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
        latencies.append(job.return_value() - enqueued)
    assert max(latencies) < 0.5  # woken by the marker, well before the one-second wait ends
    plain = rq.Queue("q", connection=connection)
    enqueued = time.time()
    rq_job = plain.enqueue(jobs.started_at_epoch)
    wait_for(lambda: rq_job.get_status() == rq.job.JobStatus.FINISHED)
    assert cast(float, rq_job.return_value()) - enqueued < 2.0  # found by the look after the bounded wait


@pytest.mark.parametrize("mode", [[], ["--simple"]], ids=["Worker", "SimpleWorker"])
def test_warm_shutdown_lets_the_running_job_finish(
    mode: list[str], connection: redis.Redis, worker_process: object
) -> None:
    process = worker_process("q", *mode)  # type: ignore[operator]
    job = Queue("q", connection=connection).enqueue(jobs.sleep_for, 1.0)
    wait_for(lambda: job.get_status() == JobStatus.STARTED)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert job.get_status() == JobStatus.FINISHED


@pytest.mark.parametrize("mode", [[], ["--simple"]], ids=["Worker", "SimpleWorker"])
def test_second_signal_stops_the_running_job(
    mode: list[str], connection: redis.Redis, worker_process: object
) -> None:
    process = worker_process("q", *mode)  # type: ignore[operator]
    job = Queue("q", connection=connection).enqueue(jobs.sleep_for, 30.0, retry=Retry(3))
    wait_for(lambda: job.get_status() == JobStatus.STARTED)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert job.get_status() == JobStatus.STOPPED  # and, stopped, it is not retried
    assert job.id in Queue("q", connection=connection).failed_job_registry


def test_killed_worker_job_is_recovered_as_abandoned(connection: redis.Redis, worker_process: object) -> None:
    process = worker_process("q", "--heartbeat-ttl", "1")  # type: ignore[operator]
    queue = Queue("q", connection=connection)
    doomed = queue.enqueue(jobs.sleep_for, 30.0)
    retried = queue.enqueue(jobs.sleep_for, 30.0, retry=Retry(1))
    wait_for(lambda: doomed.get_status() == JobStatus.STARTED)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert doomed.get_status() == JobStatus.STARTED and doomed.id in queue.started_job_registry
    wait_for(lambda: recover_abandoned(connection, ["q"]) != [] or doomed.get_status() != JobStatus.STARTED)
    assert doomed.get_status() == JobStatus.FAILED
    assert "AbandonedJobError" in (doomed.exc_info or "")
    assert retried.get_status() == JobStatus.QUEUED and queue.job_ids == [retried.id]


def test_a_worker_on_its_own_never_holds_a_job(connection: redis.Redis, worker_process: object) -> None:
    """A lone worker has no supervisor to take a held job back, so it takes one job at a time: the
    job after a slow one stays in its queue, for any other worker, until the slow one ends."""
    worker_process("q")  # type: ignore[operator]
    queue = Queue("q", connection=connection)
    quick = [queue.enqueue(jobs.add, i, 1) for i in range(5)]
    slow = queue.enqueue(jobs.sleep_for, 1.5)
    after = queue.enqueue(jobs.add, 2, 2)
    wait_for(lambda: slow.get_status() == JobStatus.STARTED)
    assert all(job.get_status() == JobStatus.FINISHED for job in quick)
    assert after.get_status() == JobStatus.QUEUED and queue.job_ids == [after.id]
    assert queue.started_job_registry.get_job_ids() == [slow.id]
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
