"""Bad input: a clear, typed error, and nothing written to Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

import jobs
from jobpool import Queue, Retry
from jobpool.durations import MAX_SECONDS
from jobpool.exceptions import (
    DeserializationError,
    FunctionReferenceError,
    InvalidJobId,
    InvalidJobOperation,
    InvalidRetry,
    JobpoolError,
    NoSuchJobError,
    SerializationError,
    TimeoutFormatError,
)
from jobpool.job import Job
from jobpool.registry import FailedJobRegistry
from jobpool.retry import MAX_RETRIES
from jobpool.serializers import JSONSerializer


def _enqueue(connection: redis.Redis, *args: object, **kwargs: object) -> Job:
    return Queue("q", connection=connection).enqueue(jobs.add, *args, **kwargs)


@pytest.mark.parametrize("job_id", ["has:colon", "has space", "ünïcode", "", "a/b", "a*"])
def test_job_id_with_refused_characters(connection: redis.Redis, job_id: str) -> None:
    with pytest.raises(InvalidJobId) as raised:
        _enqueue(connection, 1, 2, job_id=job_id)
    assert isinstance(raised.value, ValueError)  # what RQ raised, so old except clauses still work
    assert connection.dbsize() == 0


@pytest.mark.parametrize("timeout", [0, -2, "1x", "abc", "", "0s", 1.5, True])
def test_malformed_timeout(connection: redis.Redis, timeout: object) -> None:
    with pytest.raises(TimeoutFormatError):
        _enqueue(connection, 1, 2, job_timeout=timeout)
    assert connection.dbsize() == 0


@pytest.mark.parametrize("option", ["result_ttl", "ttl", "failure_ttl"])
def test_malformed_ttl(connection: redis.Redis, option: str) -> None:
    with pytest.raises(TimeoutFormatError):
        _enqueue(connection, 1, 2, **{option: "soon"})
    with pytest.raises(TimeoutFormatError):
        _enqueue(connection, 1, 2, **{option: -5})
    assert connection.dbsize() == 0


def test_arguments_the_serializer_cannot_encode(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection, serializer=JSONSerializer)
    with pytest.raises(SerializationError, match="JSONSerializer"):
        queue.enqueue(jobs.echo, {1, 2})
    with pytest.raises(SerializationError, match="meta"):
        queue.enqueue(jobs.echo, 1, meta={"s": {1}})
    with pytest.raises(SerializationError):
        Queue("q", connection=connection).enqueue(jobs.echo, lambda: None)  # pickle cannot encode a lambda
    assert connection.dbsize() == 0


@pytest.mark.parametrize("func", [lambda: None, "not a path", "nodots", 42])
def test_functions_a_worker_could_not_import(connection: redis.Redis, func: object) -> None:
    with pytest.raises(FunctionReferenceError):
        Queue("q", connection=connection).enqueue(func)
    assert connection.dbsize() == 0


def test_function_defined_inside_a_function(connection: redis.Redis) -> None:
    def local() -> None:
        return None

    with pytest.raises(FunctionReferenceError, match="module-level"):
        Queue("q", connection=connection).enqueue(local)
    assert connection.dbsize() == 0


@pytest.mark.parametrize("ttl", [0, -1, "0s"])
def test_job_ttl_must_be_positive(connection: redis.Redis, ttl: object) -> None:
    """A ttl of -1 would otherwise expire the job hash at once and strand its id in the queue."""
    with pytest.raises(TimeoutFormatError, match="positive"):
        _enqueue(connection, 1, 2, ttl=ttl)
    assert connection.dbsize() == 0


@pytest.mark.parametrize("option", ["job_timeout", "result_ttl", "failure_ttl", "ttl"])
@pytest.mark.parametrize("value", [10**16, 10**18, float(10**16), str(10**16), "100000000d", MAX_SECONDS + 1])
def test_numbers_redis_would_refuse_raise_before_anything_is_written(
    connection: redis.Redis, option: str, value: object
) -> None:
    """EXPIRE fails from about 9.2e15 s, and Redis keeps a script's writes up to the failing
    command: such a ttl used to raise only after the job was queued."""
    queue = Queue("q", connection=connection)
    with pytest.raises(TimeoutFormatError, match="at most"):
        queue.enqueue(jobs.add, 1, 2, **{option: value})
    with pytest.raises(TimeoutFormatError, match="at most"):
        queue.enqueue_in(timedelta(seconds=5), jobs.add, 1, 2, **{option: value})
    with pytest.raises(TimeoutFormatError, match="at most"):
        data: dict[str, Any] = {"timeout" if option == "job_timeout" else option: value}
        queue.enqueue_many(
            [Queue.prepare_data(jobs.add, (1, 2)), Queue.prepare_data(jobs.add, (3, 4), **data)]
        )
    assert connection.dbsize() == 0


def test_the_largest_numbers_allowed_are_stored(connection: redis.Redis) -> None:
    limit = MAX_SECONDS
    job = _enqueue(connection, 1, 2, job_timeout=limit, result_ttl=limit, failure_ttl=limit, ttl=limit)
    forever = _enqueue(connection, 1, 2, job_timeout=-1, result_ttl=-1, failure_ttl=-1)
    retried = _enqueue(connection, 1, 2, retry=Retry(MAX_RETRIES, [0, limit]))
    fetched = Job.fetch(job.id, connection)
    assert (fetched.timeout, fetched.result_ttl, fetched.failure_ttl, fetched.ttl) == (limit,) * 4
    assert limit - 5 < connection.ttl(job.key) <= limit
    fetched = Job.fetch(forever.id, connection)
    assert (fetched.timeout, fetched.result_ttl, fetched.failure_ttl) == (-1, -1, -1)
    fetched = Job.fetch(retried.id, connection)
    assert (fetched.retries_left, fetched.retry_intervals) == (MAX_RETRIES, [0, limit])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Retry(MAX_RETRIES + 1),
        lambda: Retry(True),
        lambda: Retry("3"),  # type: ignore[arg-type]
        lambda: Retry(2, MAX_SECONDS + 1),
        lambda: Retry(2, [1, 10**16]),
        lambda: Retry(2, [1.5]),  # type: ignore[list-item]
        lambda: Retry(2, "5"),  # type: ignore[arg-type]
        lambda: Retry(2, 1.5),  # type: ignore[arg-type]
    ],
)
def test_retry_numbers_out_of_range(make: Callable[[], Retry]) -> None:
    with pytest.raises(InvalidRetry) as raised:
        make()
    assert isinstance(raised.value, ValueError)  # what RQ raises for a bad max or interval


def test_numbers_set_on_a_job_directly_are_checked_before_it_is_enqueued(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    retry = Retry(2, [5])
    retry.intervals = ["soon"]  # type: ignore[list-item]
    with pytest.raises(InvalidRetry):
        queue.enqueue(jobs.add, 1, 2, retry=retry)
    for name, value in [("timeout", 10**16), ("result_ttl", 10**16), ("failure_ttl", -7), ("ttl", 10**18)]:
        job = queue.create_job(jobs.add, (1, 2))
        setattr(job, name, value)
        with pytest.raises(TimeoutFormatError):
            queue.enqueue_job(job)
        with pytest.raises(TimeoutFormatError):
            queue.schedule_job(job, datetime.now(timezone.utc))
    job = Job.create(jobs.add, (1, 2), connection=connection)
    job.ttl = 10**18
    with pytest.raises(TimeoutFormatError):
        job.save()
    assert connection.dbsize() == 0


def test_the_enqueue_script_refuses_a_ttl_before_writing(
    connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own check, for a caller that skipped the producer's."""
    monkeypatch.setattr(Job, "_check_numbers", lambda job: None)
    queue = Queue("q", connection=connection)
    for ttl in [10**16, 10**18, -1]:
        job = queue.create_job(jobs.add, (1, 2))
        job.ttl = ttl
        with pytest.raises(redis.ResponseError, match="ttl"):
            queue.enqueue_job(job)
    assert connection.dbsize() == 0


def test_unique_needs_a_job_id(connection: redis.Redis) -> None:
    from datetime import timedelta

    queue = Queue("q", connection=connection)
    with pytest.raises(ValueError, match="job_id"):
        queue.enqueue(jobs.add, 1, 2, unique=True)
    with pytest.raises(ValueError, match="job_id"):
        queue.enqueue_in(timedelta(seconds=5), jobs.add, 1, 2, unique=True)
    assert connection.dbsize() == 0


def test_bad_retry_and_argument_types(connection: redis.Redis) -> None:
    with pytest.raises(ValueError):
        Retry(0)
    with pytest.raises(ValueError):
        Retry(2, [-1])
    with pytest.raises(TypeError):
        Queue("q", connection=connection).enqueue_call(jobs.add, args=5)  # type: ignore[arg-type]  # the bad input under test
    with pytest.raises(TypeError):
        Queue("q", connection=connection).enqueue_call(jobs.add, kwargs=[1])  # type: ignore[arg-type]  # the bad input under test
    with pytest.raises(TypeError, match="repeat must be a Repeat"):
        Queue("q", connection=connection).enqueue(jobs.add, 1, 2, repeat=object())
    with pytest.raises(TypeError, match="rate_limit must be a RateLimit"):
        Queue("q", connection=connection).enqueue(jobs.add, 1, 2, rate_limit=("k", 1))
    assert connection.dbsize() == 0


def test_unknown_job_id(connection: redis.Redis) -> None:
    with pytest.raises(NoSuchJobError, match="missing"):
        Job.fetch("missing", connection=connection)
    with pytest.raises(NoSuchJobError, match="not a valid job id"):
        Job.fetch("bad id", connection=connection)


def test_job_hash_whose_data_cannot_be_decoded(connection: redis.Redis) -> None:
    job = _enqueue(connection, 1, 2, job_id="corrupt")
    connection.hset(job.key, "data", b"\x00not a pickle")
    fetched = Job.fetch("corrupt", connection=connection)  # readable without the app's code, like RQ
    with pytest.raises(DeserializationError, match="corrupt"):
        _ = fetched.args


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "sleeping"),
        ("created_at", "yesterday"),
        ("timeout", "forever"),
        ("dependency_ids", "[not json"),
    ],
)
def test_corrupt_job_hash_fields(connection: redis.Redis, field: str, value: str) -> None:
    job = _enqueue(connection, 1, 2, job_id="corrupt")
    connection.hset(job.key, field, value)
    with pytest.raises(DeserializationError, match="corrupt"):
        Job.fetch("corrupt", connection=connection)


def test_job_hash_without_data(connection: redis.Redis) -> None:
    connection.hset("rq:job:nodata", mapping={"status": "queued"})
    with pytest.raises(DeserializationError, match="nodata"):
        Job.fetch("nodata", connection=connection)


def test_requeue_of_a_job_not_in_the_failed_registry(connection: redis.Redis) -> None:
    job = _enqueue(connection, 1, 2)
    before = {key: connection.type(key) for key in connection.keys("*")}
    raw_before = connection.hgetall(job.key)
    with pytest.raises(InvalidJobOperation, match=job.id):
        job.requeue()
    with pytest.raises(InvalidJobOperation):
        FailedJobRegistry("q", connection=connection).requeue(job.id)
    assert {key: connection.type(key) for key in connection.keys("*")} == before
    assert connection.hgetall(job.key) == raw_before
    assert connection.lrange("rq:queue:q", 0, -1) == [job.id.encode()]


def test_every_typed_error_shares_one_base() -> None:
    for error in (
        InvalidJobId,
        TimeoutFormatError,
        SerializationError,
        FunctionReferenceError,
        NoSuchJobError,
        DeserializationError,
        InvalidJobOperation,
    ):
        assert issubclass(error, JobpoolError)
