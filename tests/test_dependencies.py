"""Dependencies: deferred until parents finish, in RQ's layout, released by RQ's worker too."""

from __future__ import annotations

import pytest
import redis
import rq

import jobs
from conftest import run_rq_worker
from jobpool import Queue
from jobpool.exceptions import InvalidJobDependency
from jobpool.job import Dependency, Job, JobStatus


def test_job_with_unfinished_parent_is_deferred(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    child = queue.enqueue(jobs.add, 3, 4, depends_on=parent)
    assert child.get_status() == JobStatus.DEFERRED
    assert queue.job_ids == [parent.id]
    assert child.id in queue.deferred_job_registry
    assert connection.smembers(f"rq:job:{parent.id}:dependents") == {child.id.encode()}
    assert connection.smembers(f"rq:job::{child.id}:dependencies") == {parent.id.encode()}
    raw = connection.hgetall(child.key)
    assert (
        raw[b"dependency_id"] == parent.id.encode() and raw[b"dependency_ids"] == f'["{parent.id}"]'.encode()
    )
    assert b"enqueued_at" not in raw
    assert Job.fetch(child.id, connection).dependency_ids == [parent.id]
    assert parent.dependent_ids == [child.id]


def test_finished_parent_means_queued_at_once(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    connection.hset(parent.key, "status", "finished")
    child = queue.enqueue(jobs.add, 3, 4, depends_on=[parent.id])
    assert child.is_queued and queue.job_ids == [parent.id, child.id]


def test_failed_parent_only_satisfies_allow_failure(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    connection.hset(parent.key, "status", "failed")
    strict = queue.enqueue(jobs.add, 3, 4, depends_on=parent)
    tolerant = queue.enqueue(jobs.add, 5, 6, depends_on=Dependency(jobs=[parent], allow_failure=True))
    assert strict.is_deferred and tolerant.is_queued
    assert connection.hget(tolerant.key, "allow_dependency_failures") == b"1"


@pytest.mark.parametrize("status", ["stopped", "canceled", "started", "queued"])
def test_stopped_or_canceled_parent_never_satisfies(connection: redis.Redis, status: str) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    connection.hset(parent.key, "status", status)
    child = queue.enqueue(jobs.add, 3, 4, depends_on=Dependency([parent], allow_failure=True))
    assert child.is_deferred


def test_several_parents_wait_for_all(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    first, second = queue.enqueue(jobs.add, 1, 1), queue.enqueue(jobs.add, 2, 2)
    connection.hset(first.key, "status", "finished")
    child = queue.enqueue(jobs.add, 3, 3, depends_on=[first, second.id])
    assert child.is_deferred
    assert Job.fetch(child.id, connection).dependency_ids == [first.id, second.id]


def test_rq_worker_releases_jobpool_dependents_in_order(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2)
    child = queue.enqueue(jobs.add, 3, 4, depends_on=parent)
    front = queue.enqueue(jobs.add, 5, 6, depends_on=Dependency([parent], enqueue_at_front=True))
    run_rq_worker(connection, "q")
    assert parent.is_finished and child.is_finished and front.is_finished
    assert child.return_value() == 7 and front.return_value() == 11


def test_rq_deferred_job_is_read_by_jobpool(connection: redis.Redis) -> None:
    rq_queue = rq.Queue("q", connection=connection)
    parent = rq_queue.enqueue(jobs.add, 1, 2)
    child = rq_queue.enqueue(jobs.add, 3, 4, depends_on=rq.job.Dependency([parent], allow_failure=True))
    fetched = Job.fetch(child.id, connection)
    assert fetched.is_deferred and fetched.dependency_ids == [parent.id]
    assert fetched.allow_dependency_failures is True
    assert child.id in Queue("q", connection=connection).deferred_job_registry


def test_bad_dependencies_are_refused_before_writing(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    with pytest.raises(InvalidJobDependency):
        queue.enqueue(jobs.add, 1, 2, depends_on=[])
    with pytest.raises(InvalidJobDependency):
        queue.enqueue(jobs.add, 1, 2, depends_on=42)
    with pytest.raises(InvalidJobDependency):
        Dependency([])
    assert connection.dbsize() == 0
