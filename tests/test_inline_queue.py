"""Queue(is_async=False): jobs run at enqueue, in the caller's process, side by side with RQ 3.0's
synchronous queue on the same Redis: the same statuses, return values, results, registries, job
TTLs and callbacks, and the same refusals."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import rq

import jobpool
from jobpool.exceptions import FunctionReferenceError
from jobpool.job import Job

SEEN: list[tuple[str, str, Any]] = []
"""What the callbacks below saw: (callback, the job's status read from Redis inside it, value)."""


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def make_nested() -> Callable[[int], int]:
    def nested(x: int) -> int:
        return x * 2

    return nested


def remember_success(job: Any, connection: Any, result: Any) -> None:
    SEEN.append(("success", job.get_status(refresh=True), result))


def remember_failure(job: Any, connection: Any, exc_type: Any, value: Any, traceback: Any) -> None:
    SEEN.append(("failure", job.get_status(refresh=True), str(value)))


LIBRARIES: dict[str, Any] = {"rq": rq, "jobpool": jobpool}


def queues(connection: redis.Redis) -> dict[str, Any]:
    """A synchronous queue of each library, each with a name of its own on the same Redis."""
    return {
        name: library.Queue(f"{name}-q", connection=connection, is_async=False)
        for name, library in LIBRARIES.items()
    }


def seen_by_users(connection: redis.Redis, queue: Any, job: Any) -> dict[str, Any]:
    """What a user reads back of a job a synchronous queue ran (statuses as plain text, TTLs
    rounded to the minute)."""
    fetched = type(job).fetch(job.id, connection=connection)
    result = fetched.latest_result()
    fields = connection.hgetall(fetched.key)
    registries = {
        kind: job.id.encode() in connection.zrange(f"rq:{kind}:{queue.name}", 0, -1)
        for kind in ("finished", "failed", "started", "deferred")
    }
    return {
        "status": str(getattr(fetched.get_status(), "value", fetched.get_status())),
        "return_value": fetched.return_value(),
        "result_type": result.type.name if result else None,
        "exc_string_tail": (result.exc_string or "").strip().splitlines()[-1:] if result else None,
        "worker_name": fields.get(b"worker_name"),
        "has_times": all(name in fields for name in (b"started_at", b"ended_at", b"enqueued_at")),
        "job_ttl_minutes": round(connection.ttl(fetched.key) / 60),
        "result_ttl_minutes": round(connection.ttl(f"rq:results:{job.id}") / 60),
        "registries": registries,
        "queued": connection.llen(f"rq:queue:{queue.name}"),
        "in_queues_set": f"rq:queue:{queue.name}".encode() in connection.smembers("rq:queues"),
    }


def side_by_side(connection: redis.Redis, enqueue: Callable[[Any, Any], Any]) -> dict[str, dict[str, Any]]:
    """What users read back of the job ``enqueue(library, queue)`` enqueued, by library."""
    seen = {}
    for name, queue in queues(connection).items():
        job = enqueue(LIBRARIES[name], queue)
        seen[name] = seen_by_users(connection, queue, job)
    return seen


def test_a_job_runs_at_enqueue_and_finishes_as_in_rq(connection: redis.Redis) -> None:
    seen = side_by_side(connection, lambda library, queue: queue.enqueue(add, 1, 2, result_ttl=600))
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["status"] == "finished" and seen["jobpool"]["return_value"] == 3
    assert seen["jobpool"]["registries"]["finished"] and seen["jobpool"]["queued"] == 0
    assert seen["jobpool"]["job_ttl_minutes"] == 10 and seen["jobpool"]["worker_name"] == b"sync"


def test_a_failing_job_is_recorded_failed_not_raised_and_not_retried(connection: redis.Redis) -> None:
    seen = side_by_side(
        connection, lambda library, queue: queue.enqueue(fail, "boom", retry=library.Retry(max=2))
    )
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["status"] == "failed"
    assert seen["jobpool"]["exc_string_tail"] == ["ValueError: boom"]
    assert seen["jobpool"]["registries"]["failed"] and seen["jobpool"]["queued"] == 0
    assert seen["jobpool"]["job_ttl_minutes"] == 525600  # a year, the default failure_ttl


def test_a_result_ttl_of_zero_leaves_nothing(connection: redis.Redis) -> None:
    for queue in queues(connection).values():
        job = queue.enqueue(add, 2, 2, result_ttl=0)
        assert job.get_status(refresh=False) in ("finished", rq.job.JobStatus.FINISHED)
    assert sorted(connection.keys("rq:job:*")) == [] and connection.keys("rq:results:*") == []


def test_callbacks_run_after_the_outcome_is_written(connection: redis.Redis) -> None:
    SEEN.clear()
    for name, queue in queues(connection).items():
        library = LIBRARIES[name]
        queue.enqueue(add, 20, 22, on_success=library.Callback(remember_success))
        queue.enqueue(fail, "no", on_failure=library.Callback(remember_failure))
    as_text = [(kind, str(getattr(status, "value", status)), value) for kind, status, value in SEEN]
    assert as_text == [("success", "finished", 42), ("failure", "failed", "no")] * 2


def test_a_job_whose_parent_has_not_finished_is_deferred(connection: redis.Redis) -> None:
    for name, queue in queues(connection).items():
        library = LIBRARIES[name]
        parent = library.Queue(f"{name}-async", connection=connection).enqueue(add, 1, 1)
        child = queue.enqueue(add, 2, 2, depends_on=parent)
        assert str(getattr(child.get_status(), "value", child.get_status())) == "deferred", name
        assert connection.zrange(f"rq:deferred:{queue.name}", 0, -1) == [child.id.encode()], name
        done = queue.enqueue(add, 3, 3, depends_on=queue.enqueue(add, 0, 0))
        assert done.return_value() == 6, name


def test_what_a_worker_could_not_import_runs_as_rq_runs_it(connection: redis.Redis) -> None:
    builtin = side_by_side(connection, lambda library, queue: queue.enqueue("len", [1, 2, 3]))
    assert builtin["jobpool"] == builtin["rq"] and builtin["jobpool"]["return_value"] == 3
    connection.flushdb()
    nested = side_by_side(connection, lambda library, queue: queue.enqueue(make_nested(), 21))
    assert nested["jobpool"]["status"] == nested["rq"]["status"] == "failed"
    with pytest.raises(FunctionReferenceError, match="lambda or a function defined inside"):
        jobpool.Queue("q", connection=connection).enqueue(make_nested(), 21)  # a worker's queue refuses it


def test_enqueue_many_runs_each_job_in_order(connection: redis.Redis) -> None:
    started = time.time()
    ran = {}
    for name, queue in queues(connection).items():
        library = LIBRARIES[name]
        ran[name] = queue.enqueue_many([library.Queue.prepare_data(add, (n, n)) for n in range(3)])
        assert [job.return_value() for job in ran[name]] == [0, 2, 4], name
        assert connection.llen(f"rq:queue:{queue.name}") == 0, name
    ended = [Job.fetch(job.id, connection=connection).ended_at for job in ran["jobpool"]]
    assert ended == sorted(ended) and ended[0].timestamp() >= started - 1  # one after another
