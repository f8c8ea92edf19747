"""Numbers another client stored in a job hash that Redis would refuse (a result_ttl EXPIRE
cannot take, retry_intervals that are not a JSON list of seconds) never lose the job: the
worker's record checks them before its first write and falls back to a default. Redis keeps a
script's writes up to the command that fails, so a record that erred halfway used to leave the
job out of every queue and registry."""

from __future__ import annotations

from typing import cast

import pytest
import redis

import jobs
import misbehaving_jobs
from jobpool import Queue, Retry, Worker
from jobpool.job import JobStatus
from support.redis_replies import Members, Scored

ONE_YEAR = 31536000


def drain(connection: redis.Redis) -> None:
    Worker(["q"], connection=connection).work(burst=True)


def places_of(connection: redis.Redis, job_id: str) -> list[str]:
    """The queue and registries of queue q that hold the job."""
    places = ["queue"] if job_id.encode() in connection.lrange("rq:queue:q", 0, -1) else []
    for kind in ("wip", "finished", "failed", "scheduled", "deferred", "canceled"):
        if any(
            m.decode().split(":")[0] == job_id
            for m in cast(Members, connection.zrange(f"rq:{kind}:q", 0, -1))
        ):
            places.append(kind)
    return places


@pytest.mark.parametrize("result_ttl", [str(10**16), str(10**18), "1.5", "-7", "soon"])
def test_an_unusable_result_ttl_keeps_the_default(connection: redis.Redis, result_ttl: str) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2, result_ttl=60)
    connection.hset(job.key, "result_ttl", result_ttl)
    drain(connection)
    if result_ttl in ("1.5", "soon"):  # unreadable to the worker too: the job fails, and says why
        assert job.get_status() == JobStatus.FAILED and "result_ttl" in (job.exc_info or "")
        assert places_of(connection, job.id) == ["failed"]
        return
    assert job.get_status() == JobStatus.FINISHED and job.return_value() == 3
    assert places_of(connection, job.id) == ["finished"]
    assert 0 < connection.ttl(job.key) <= 500  # the worker's default result_ttl


@pytest.mark.parametrize(
    "intervals", ["not json", "[1,", "5", '{"a": 1}', '["soon"]', "[[1]]", "[-5]", "[1e400]", "[null]"]
)
def test_unusable_retry_intervals_retry_at_once(connection: redis.Redis, intervals: str) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.fail, retry=Retry(1, 30))
    connection.hset(job.key, "retry_intervals", intervals)
    worker = Worker(["q"], connection=connection)
    worker.work(burst=True, max_jobs=1)
    assert places_of(connection, job.id) == ["queue"]  # retried at once: no usable interval
    assert job.get_status() == JobStatus.QUEUED
    drain(connection)
    assert job.get_status() == JobStatus.FAILED and places_of(connection, job.id) == ["failed"]


@pytest.mark.parametrize("failure_ttl", [str(10**16), "1.5", "-7"])
def test_an_unusable_failure_ttl_keeps_the_default(connection: redis.Redis, failure_ttl: str) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.fail, failure_ttl=60)
    connection.hset(job.key, "failure_ttl", failure_ttl)
    drain(connection)
    assert job.get_status() == JobStatus.FAILED and places_of(connection, job.id) == ["failed"]
    assert ONE_YEAR - 60 < connection.ttl(job.key) <= ONE_YEAR
    (score,) = [
        s
        for m, s in cast(Scored, connection.zrange("rq:failed:q", 0, -1, withscores=True))
        if m == job.id.encode()
    ]
    assert score < 10**15


def test_corrupt_worker_counters_are_started_again(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    corrupting = queue.enqueue(misbehaving_jobs.corrupt_worker_counters)
    failing = queue.enqueue(jobs.fail)
    Worker(["q"], connection=connection, name="counted").work(burst=True)
    assert places_of(connection, corrupting.id) == ["finished"] and places_of(connection, failing.id) == [
        "failed"
    ]
    raw = connection.hgetall("rq:worker:counted")
    assert raw[b"successful_job_count"] == b"1" and raw[b"failed_job_count"] == b"1"
    assert 0 <= float(raw[b"total_working_time"]) < 60
