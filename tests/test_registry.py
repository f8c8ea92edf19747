"""Registries: count, len, in, ids, expiry, requeue and remove, on RQ's sorted sets."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
import redis
import rq

import jobs
from conftest import run_rq_worker
from jobpool import Queue, keys
from jobpool.exceptions import InvalidJobOperation
from jobpool.job import Job, JobStatus
from jobpool.redis_target import connect_core, process_core
from jobpool.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from jobpool.timeutils import epoch_seconds
from support.pool_process import lapse_executions


def test_finished_and_failed_registries_after_rq_worker(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    ok = queue.enqueue(jobs.add, 1, 2, result_ttl=100)
    bad = queue.enqueue(jobs.fail, failure_ttl=200)
    run_rq_worker(connection, "q")
    finished, failed = queue.finished_job_registry, queue.failed_job_registry
    assert finished.count == 1 and len(finished) == 1 and ok in finished and ok.id in finished
    assert failed.get_job_ids() == [bad.id] and bad.id not in finished
    assert 95 <= (finished.get_expiration_time(ok).timestamp() - epoch_seconds()) <= 100
    assert 195 <= (failed.get_expiration_time(bad).timestamp() - epoch_seconds()) <= 200
    assert StartedJobRegistry("q", connection=connection).count == 0


def test_expired_entries_are_cleaned_on_count(connection: redis.Redis) -> None:
    registry = FinishedJobRegistry("q", connection=connection)
    connection.zadd(registry.key, {"old": epoch_seconds() - 10, "new": epoch_seconds() + 100})
    assert registry.get_job_ids(cleanup=False) == ["old", "new"]
    assert registry.count == 1 and registry.get_job_ids() == ["new"]
    assert registry.get_expired_job_ids() == []


def test_failed_registry_requeue_and_remove(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    first, second = queue.enqueue(jobs.fail), queue.enqueue(jobs.fail)
    run_rq_worker(connection, "q")
    registry = FailedJobRegistry("q", connection=connection)
    assert set(registry.get_job_ids()) == {first.id, second.id}
    registry.requeue(first.id, at_front=True)
    assert queue.job_ids == [first.id] and first.is_queued
    with pytest.raises(InvalidJobOperation):
        registry.requeue(first.id)
    registry.remove(second, delete_job=True)
    assert registry.count == 0 and not Job.exists(second.id, connection)


def test_started_registry_holds_executions(connection: redis.Redis) -> None:
    registry = StartedJobRegistry("q", connection=connection)
    connection.zadd(registry.key, {"job1:exec1": epoch_seconds() + 60, "job2:exec2": epoch_seconds() + 60})
    assert registry.get_job_ids() == ["job1", "job2"] and "job1" in registry and "job3" not in registry
    assert registry.get_job_and_execution_ids() == [("job1", "exec1"), ("job2", "exec2")]
    with pytest.raises(InvalidJobOperation):
        registry.requeue("job1")


@pytest.mark.parametrize(
    ("registry_class", "kind"),
    [
        (StartedJobRegistry, "wip"),
        (FinishedJobRegistry, "finished"),
        (FailedJobRegistry, "failed"),
        (DeferredJobRegistry, "deferred"),
        (ScheduledJobRegistry, "scheduled"),
        (CanceledJobRegistry, "canceled"),
    ],
)
def test_registry_keys_match_rq(connection: redis.Redis, registry_class: type, kind: str) -> None:
    ours = registry_class("q", connection=connection)
    theirs = getattr(rq.registry, registry_class.__name__)("q", connection=connection)
    assert ours.key == theirs.key == f"rq:{kind}:q"
    assert registry_class(queue=Queue("q", connection=connection)).key == ours.key


def test_deferred_and_canceled_registries(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 1)
    child = queue.enqueue(jobs.add, 2, 2, depends_on=parent)
    deferred = DeferredJobRegistry("q", connection=connection)
    assert deferred.get_job_ids() == [child.id]
    child.cancel()
    assert deferred.count == 0 and CanceledJobRegistry("q", connection=connection).get_job_ids() == [child.id]
    assert rq.registry.CanceledJobRegistry("q", connection=connection).get_job_ids() == [child.id]


def _started_as_rq_1_did(connection: redis.Redis, job: Job, score: int) -> None:
    """Marks ``job`` started as RQ before 2.0 did: its bare id, with no execution, in the
    started registry."""
    connection.lrem(keys.queue(job.origin), 0, job.id)
    connection.hset(job.key, "status", JobStatus.STARTED)
    connection.zadd(keys.registry("started", job.origin), {job.id: score})


def test_started_registry_reads_bare_job_ids_as_rq_does(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    lapsed, live = queue.enqueue(jobs.add, 1, 1), queue.enqueue(jobs.add, 2, 2)
    _started_as_rq_1_did(connection, lapsed, epoch_seconds() - 10)
    _started_as_rq_1_did(connection, live, epoch_seconds() + 100)
    registry = StartedJobRegistry("q", connection=connection)
    connection.zadd(registry.key, {"gone": epoch_seconds() - 10, "x:e1": epoch_seconds() + 100})
    theirs = rq.registry.StartedJobRegistry("q", connection=connection)
    with pytest.warns(DeprecationWarning):  # RQ reads a bare id as (job id, ""), and says so
        expected = theirs.get_job_and_execution_ids(cleanup=False)
    assert registry.get_job_and_execution_ids() == expected
    assert ("gone", "") in expected and (live.id, "") in expected
    assert registry.get_job_ids(cleanup=False) == [job_id for job_id, _ in expected]
    assert live.id in registry and lapsed.id in registry

    # cleanup (also run by count, len and get_job_ids) fails the lapsed job as abandoned, as
    # RQ's does, and drops the entry of a job that no longer exists; the live entries stay.
    assert registry.count == 2 and len(registry) == 2
    assert registry.get_job_ids() == [live.id, "x"]
    assert lapsed.get_status() == JobStatus.FAILED and "AbandonedJobError" in (lapsed.exc_info or "")
    assert lapsed.id in queue.failed_job_registry and live.get_status() == JobStatus.STARTED


def _connections_received(connection: redis.Redis) -> int:
    return int(connection.info("stats")["total_connections_received"])


def test_counting_the_started_registry_reuses_the_process_core(connection: redis.Redis) -> None:
    """Each count with a lapsed execution fails its job through the core; the 50 counts share
    the process's one connection (and its one load of the scripts) rather than each opening
    its own."""
    queue = Queue("q", connection=connection)
    taker = connect_core(connection)
    taker.connect()
    registry = StartedJobRegistry("q", connection=connection)
    before = _connections_received(connection)
    for number in range(50):
        job = queue.enqueue(jobs.add, number, 1)
        taken = taker.take(["q"], "dead-worker", f"e{number}", 30)
        assert taken is not None and taken.job_id == job.id
        lapse_executions(connection, "q")
        assert len(registry) == 0
        assert job.get_status() == JobStatus.FAILED
    assert _connections_received(connection) - before <= 1  # the process core's, at most


def test_a_forked_child_gets_its_own_process_core(connection: redis.Redis, redis_url: str) -> None:
    parent_core = process_core(connection)
    assert process_core(redis_url) is parent_core  # one target, however it is given
    assert process_core(urlsplit(redis_url)._replace(path="/1").geturl()) is not parent_core  # db 1
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2)
    assert connect_core(connection).take(["q"], "dead-worker", "e1", 30) is not None
    lapse_executions(connection, "q")
    pid = os.fork()
    if pid == 0:  # the child: its own core, which recovers the job
        child = redis.Redis.from_url(redis_url)
        fresh = process_core(child) is not parent_core
        os._exit(0 if fresh and len(StartedJobRegistry("q", connection=child)) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert job.get_status() == JobStatus.FAILED
    assert process_core(connection) is parent_core
