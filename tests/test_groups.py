"""RQ 3.0's groups (``rq.group.Group``), side by side: each scenario runs through RQ (its Group and
its SimpleWorker in burst mode) and through jobpool (its Group, its Worker in burst mode, and a
``jobpool start --burst`` pool), on the same private Redis emptied in between, and compares what
users see and the Redis data (keys, members, TTLs) left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
import rq
import rq.exceptions
import rq.group
import rq.job

import jobpool
import jobpool.exceptions
import jobpool.group
import jobs
from conftest import run_rq_worker, wait_for
from jobpool import Group, Queue
from jobpool.job import Job
from support.pool_process import Pool
from support.side_by_side import library

GROUP = "g1"


def group_class(name: str) -> Any:
    return rq.group.Group if name == "rq" else jobpool.group.Group


def job_class(name: str) -> Any:
    return rq.job.Job if name == "rq" else Job


def both(connection: redis.Redis, scenario: Callable[[str], Any]) -> tuple[Any, Any]:
    """``scenario`` run for RQ, then, on the emptied Redis, for jobpool."""
    theirs = scenario("rq")
    connection.flushdb()
    ours = scenario("jobpool")
    return theirs, ours


def group_data(connection: redis.Redis) -> dict[str, Any]:
    """The group keys as stored (members and TTL, the lock's TTL to the minute), and each job's
    ``group_id`` and status."""
    data: dict[str, Any] = {}
    for key in sorted(connection.scan_iter("rq:group*")) + sorted(connection.scan_iter("rq:clean_groups")):
        ttl = connection.ttl(key)
        kind = connection.type(key)
        value = sorted(connection.smembers(key)) if kind == b"set" else connection.get(key)
        data[key.decode()] = (kind, value, ttl if ttl < 0 else round(ttl / 60))
    for key in sorted(connection.scan_iter("rq:job:*")):
        if connection.type(key) == b"hash":
            data[key.decode()] = connection.hmget(key, "group_id", "status")
    return data


def enqueue_group(name: str, connection: redis.Redis, queue_name: str = "q", **queue_options: Any) -> Any:
    """A group of three jobs: one that runs, one that fails, and one that waits for a job
    enqueued before the group (not one of the group's: see the test of that)."""
    lib = library(name)
    queue = lib.Queue(queue_name, connection=connection, **queue_options)
    queue.enqueue(jobs.add, 0, 0, job_id="parent")
    group = group_class(name).create(connection=connection, name=GROUP)
    datas = [
        lib.Queue.prepare_data(jobs.add, (1, 2), job_id="a"),
        lib.Queue.prepare_data(jobs.fail, ("no",), job_id="b"),
        lib.Queue.prepare_data(jobs.add, (3, 4), job_id="c", depends_on="parent"),
    ]
    return group, group.enqueue_many(queue, datas)


def seen_by_users(name: str, connection: redis.Redis, group: Any) -> dict[str, Any]:
    cls = group_class(name)
    return {
        "repr": repr(group),
        "key": group.key,
        "get_key": cls.get_key(GROUP),
        "all": sorted(g.name for g in cls.all(connection)),
        "jobs": sorted((job.id, job.get_status().value, job.group_id) for job in group.get_jobs()),
    }


def test_a_group_is_stored_as_rqs(connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[Any, ...]:
        _, enqueued = enqueue_group(name, connection)
        returned = [(job.id, job.get_status(refresh=False).value, job.group_id) for job in enqueued]
        fetched = group_class(name).fetch(GROUP, connection=connection)
        return sorted(returned), seen_by_users(name, connection, fetched), group_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[2]["rq:group:g1"] == (b"set", [b"a", b"b", b"c"], -1)  # no TTL, as RQ's
    assert ours[2]["rq:groups"] == (b"set", [GROUP.encode()], -1)


def test_a_job_waits_for_a_parent_enqueued_in_the_same_group(connection: redis.Redis) -> None:
    """RQ's Group.enqueue_many queues such a job at once (it reads the parent's status before
    its pipeline has saved the parent, and finds none); jobpool defers it, as
    Queue.enqueue_many does in both."""
    queue = Queue("q", connection=connection)
    group = Group.create(connection, name=GROUP)
    datas = [
        Queue.prepare_data(jobs.add, (1, 2), job_id="a"),
        Queue.prepare_data(jobs.add, (3, 4), job_id="c", depends_on="a"),
    ]
    statuses = [job.get_status(refresh=False) for job in group.enqueue_many(queue, datas)]
    assert statuses == ["queued", "deferred"] and queue.job_ids == ["a"]
    assert connection.zrange("rq:deferred:q", 0, -1) == [b"c"]
    jobpool.Worker(["q"], connection=connection).work(burst=True)
    assert [job.get_status() for job in group.get_jobs()] == ["finished", "finished"]


def test_class_attributes_and_a_new_groups_id_are_rqs(connection: redis.Redis) -> None:
    for attribute in ("REDIS_GROUP_NAME_PREFIX", "REDIS_GROUP_KEY", "REDIS_GROUP_CLEANING_KEY"):
        assert getattr(Group, attribute) == getattr(rq.group.Group, attribute)
    ours, theirs = Group.create(connection), rq.group.Group.create(connection)
    assert len(ours.name) == len(theirs.name) == 32 and ours.name != theirs.name
    assert connection.keys("*") == []  # nothing is written until jobs join


def test_queue_enqueue_many_with_a_group_id_only_marks_the_jobs(connection: redis.Redis) -> None:
    def scenario(name: str) -> dict[str, Any]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        queue.enqueue_many([lib.Queue.prepare_data(jobs.add, (1, 2), job_id="a")], group_id=GROUP)
        return group_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours == {"rq:job:a": [GROUP.encode(), b"queued"]}


def test_fetching_a_group_with_no_job_raises_no_such_group_error(connection: redis.Redis) -> None:
    with pytest.raises(rq.exceptions.NoSuchGroupError):
        rq.group.Group.fetch("nope", connection=connection)
    with pytest.raises(jobpool.exceptions.NoSuchGroupError):
        Group.fetch("nope", connection=connection)


def test_a_bad_group_name_is_refused_before_anything_is_written(connection: redis.Redis) -> None:
    with pytest.raises(TypeError):
        Group(connection, name=42)  # type: ignore[arg-type]
    assert connection.keys("*") == []


@pytest.mark.parametrize("runner", ["worker", "pool"])
def test_running_a_group_leaves_the_data_rqs_worker_leaves(
    connection: redis.Redis, pool: Callable[..., Pool], runner: str
) -> None:
    """The jobs run, and maintenance cleans the groups as the run starts (under RQ's lock): an
    id in ``rq:groups`` whose set is gone, and a job id whose hash expired, are dropped."""

    def scenario(name: str) -> tuple[Any, ...]:
        connection.sadd("rq:groups", "emptied")
        connection.sadd("rq:group:stale", "expired-job", "kept")
        connection.sadd("rq:groups", "stale")
        connection.hset("rq:job:kept", mapping={"status": "finished", "group_id": "stale"})
        group, _ = enqueue_group(name, connection)
        if name == "rq":
            run_rq_worker(connection, "q")
        elif runner == "worker":
            jobpool.Worker(["q"], connection=connection).work(burst=True)
        else:
            assert pool("-n", "2", "--burst", "q").wait() == 0
        return seen_by_users(name, connection, group), group_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    users, data = ours
    assert users["all"] == [GROUP, "stale"]
    assert users["jobs"] == [("a", "finished", GROUP), ("b", "failed", GROUP), ("c", "finished", GROUP)]
    assert data["rq:group:stale"] == (b"set", [b"kept"], -1)
    assert data["rq:clean_groups"] == (b"string", b"1", 10)  # RQ's lock: 599 s


def test_cleanup_drops_the_ids_of_jobs_that_are_gone_and_then_empty_groups(connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[Any, ...]:
        group, _ = enqueue_group(name, connection)
        connection.delete("rq:job:a")  # as if it had expired
        kept = sorted(job.id for job in group.get_jobs())
        after_get_jobs = group_data(connection)
        connection.delete("rq:job:b", "rq:job:c")
        group_class(name).clean_registries(connection)
        return kept, after_get_jobs, group_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    kept, after_get_jobs, cleaned = ours
    assert kept == ["b", "c"] and after_get_jobs["rq:group:g1"][1] == [b"b", b"c"]
    assert cleaned == {"rq:job:parent": [b"", b"queued"]}  # the set went with its last member, and the id


def test_deleting_a_job_takes_it_out_of_its_group(connection: redis.Redis) -> None:
    def scenario(name: str) -> dict[str, Any]:
        enqueue_group(name, connection)
        job_class(name).fetch("b", connection=connection).delete()
        group = group_class(name).fetch(GROUP, connection=connection)
        with connection.pipeline() as pipe:
            group.delete_job("c", pipeline=pipe)
            assert connection.smembers(group.key) == {b"a", b"c"}  # not until the pipeline runs
            pipe.execute()
        return group_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours["rq:group:g1"][1] == [b"a"]


def test_a_callers_pipeline_is_executed_by_group_enqueue_many(connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[Any, ...]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        group = group_class(name).create(connection=connection, name=GROUP)
        with connection.pipeline() as pipe:
            pipe.set("mine", "1")
            enqueued = group.enqueue_many(queue, [lib.Queue.prepare_data(jobs.add, (1, 2), job_id="a")], pipe)
            return [job.id for job in enqueued], connection.get("mine"), queue.job_ids, group_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[1] == b"1" and ours[2] == ["a"]


def test_a_group_on_an_inline_queue_runs_its_jobs_at_enqueue(connection: redis.Redis) -> None:
    """The group's sets are RQ's. Its jobs' records are not: RQ's Group.enqueue_many on a
    synchronous queue runs each job before its pipeline saves the job, which then overwrites the
    job's outcome with ``queued``; jobpool's record what ran."""

    def scenario(name: str) -> tuple[Any, ...]:
        group, _ = enqueue_group(name, connection, is_async=False)
        members = {key: value for key, value in group_data(connection).items() if "group" in key}
        return members, sorted((job.id, job.get_status().value) for job in group.get_jobs())

    theirs, ours = both(connection, scenario)
    assert ours[0] == theirs[0]
    assert theirs[1] == [("a", "queued"), ("b", "queued"), ("c", "queued")]
    assert ours[1] == [("a", "finished"), ("b", "failed"), ("c", "finished")]


def test_a_running_pool_cleans_groups_once_rqs_lock_lapses(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    connection.sadd("rq:groups", "emptied")
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: not connection.sismember("rq:groups", "emptied"))
    assert 590 < connection.ttl("rq:clean_groups") <= 599  # RQ's lock: one cleaner a window
    connection.sadd("rq:groups", "emptied-later")
    connection.delete("rq:clean_groups")  # as if the window had passed
    wait_for(lambda: not connection.sismember("rq:groups", "emptied-later"), deadline_seconds=30)
    assert connection.exists("rq:clean_groups")
