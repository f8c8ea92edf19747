"""Where jobpool read or wrote data differently from RQ 3.0, side by side with it on the same Redis:
data older RQ versions wrote (a started-registry member without an execution id, an exc_info
stored as plain text), a Job with no function saved, and enqueues into a caller's pipeline."""

from __future__ import annotations

import importlib
import time
from typing import Any

import pytest
import redis
import rq

import jobpool

LIBRARIES: dict[str, Any] = {"rq": rq, "jobpool": jobpool}


def add(a: int, b: int) -> int:
    return a + b


def part(library: Any, module: str) -> Any:
    return importlib.import_module(f"{library.__name__}.{module}")


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_started_member_without_an_execution_id_is_read_and_recovered(
    connection: redis.Redis, name: str
) -> None:
    library = LIBRARIES[name]
    job = library.Queue("q", connection=connection).enqueue(add, 1, 2)
    connection.lpop("rq:queue:q")
    connection.hset(job.key, "status", "started")
    connection.zadd("rq:wip:q", {job.id: time.time() + 100})  # as RQ before 2.0 wrote it
    registry = part(library, "registry").StartedJobRegistry("q", connection=connection)
    assert (registry.count, len(registry), registry.get_job_ids()) == (1, 1, [job.id])
    connection.zadd("rq:wip:q", {job.id: time.time() - 100})  # its worker is gone
    registry.cleanup()
    assert registry.get_job_ids() == []
    assert str(job.get_status(refresh=True)) in ("failed", "JobStatus.FAILED")
    assert connection.zrange("rq:failed:q", 0, -1) == [job.id.encode()]


@pytest.mark.parametrize("name", LIBRARIES)
def test_an_exc_info_stored_as_plain_text_is_read(connection: redis.Redis, name: str) -> None:
    library = LIBRARIES[name]
    job = library.Queue("q", connection=connection).enqueue(add, 1, 2)
    connection.hset(job.key, "exc_info", "Traceback (most recent call last):\nValueError: old")
    fetched = part(library, "job").Job.fetch(job.id, connection=connection)
    assert fetched.exc_info == "Traceback (most recent call last):\nValueError: old"
    assert fetched.func_name == f"{__name__}.add"


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_job_with_no_function_is_not_saved(connection: redis.Redis, name: str) -> None:
    job_class = part(LIBRARIES[name], "job").Job
    with pytest.raises(ValueError):
        job_class("no-function", connection=connection).save()
    assert connection.exists("rq:job:no-function") == 0


@pytest.mark.parametrize("name", LIBRARIES)
def test_an_enqueue_into_a_watching_pipeline_joins_its_transaction(
    connection: redis.Redis, name: str
) -> None:
    queue = LIBRARIES[name].Queue("q", connection=connection)
    with connection.pipeline() as pipe:
        pipe.watch("guard")
        job = queue.enqueue(add, 1, 2, pipeline=pipe)
        assert (connection.llen("rq:queue:q"), connection.exists(job.key)) == (0, 0), "nothing before execute"
        connection.set("guard", "changed by another client")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert (connection.llen("rq:queue:q"), connection.exists(job.key)) == (0, 0), (
        "the transaction was dropped"
    )


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_pipelined_enqueue_tells_the_status_it_will_get(connection: redis.Redis, name: str) -> None:
    queue = LIBRARIES[name].Queue("q", connection=connection)
    parent = queue.enqueue(add, 1, 1)
    with connection.pipeline() as pipe:
        waiting = queue.enqueue(add, 2, 2, depends_on=parent, pipeline=pipe)
        free = queue.enqueue(add, 3, 3, pipeline=pipe)
        told = [str(getattr(job.get_status(refresh=False), "value", "")) for job in (waiting, free)]
        pipe.execute()
    assert told == ["deferred", "queued"]
    assert [str(getattr(job.get_status(refresh=True), "value", "")) for job in (waiting, free)] == told
