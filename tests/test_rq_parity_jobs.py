"""RQ 3.0 parity of what jobs do: ``async def`` jobs, jobs that return a ``Retry``, and what
callbacks see (the job's status; ``on_failure`` for abandoned jobs and dead workers).

Each scenario runs through RQ's own worker and through jobpool's, on the same private Redis
(emptied in between), and compares what users see: statuses, return values, ``Result``
entries, errors, and the Redis data the run leaves behind.
"""

from __future__ import annotations

import pickle
import time
import zlib
from base64 import b64decode
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis
import rq
import rq.job
import rq.registry
from rq.worker import Worker as RQForkingWorker

import jobpool
import jobs
from conftest import wait_for
from jobpool._native import Ending, Ledger
from jobpool.job import Job, JobStatus
from jobpool.redis_target import connect_core
from jobpool.registry import StartedJobRegistry
from jobpool.timeutils import epoch_seconds
from support.pool_process import Pool, lapse_executions
from support.redis_replies import Entries, Members, Scored
from support.side_by_side import drain, library

JOB = "the-job"
# Hash fields that differ between two equivalent runs only because time passed or a worker's name
# differs; and ``data``/``description``, which name the library a job is told to use.
VOLATILE_FIELDS = {
    b"created_at",
    b"enqueued_at",
    b"started_at",
    b"ended_at",
    b"last_heartbeat",
    b"worker_name",
    b"data",
    b"description",
    b"exc_info",  # a traceback: its frames differ, its last line is compared (in the results)
}
# RQ's worker saves the whole job object when it requeues or fails a job that returned a Retry,
# and so also writes the deprecated ``result`` field (the pickled Retry). jobpool does not: only
# RQ's deprecated ``job.result`` reads it back.
RQ_ONLY_FIELDS = {b"result"}
# jobpool's own fields (docs/architecture.md): which execution's RQ records exist, which holds it.
JOBPOOL_ONLY_FIELDS = {b"jobpool_records", b"jobpool_held"}
REGISTRIES = ("wip", "finished", "failed", "scheduled", "deferred")


def enqueue(name: str, connection: redis.Redis, func: Any, *args: Any, **options: Any) -> None:
    library(name).Queue("q", connection=connection).enqueue(func, *args, job_id=JOB, **options)


def fetch(name: str, connection: redis.Redis) -> Any:
    return (rq.job.Job if name == "rq" else Job).fetch(JOB, connection=connection)


def results(name: str, connection: redis.Redis) -> list[tuple[str, str, str | None]]:
    """(type, return value's repr, the traceback's last line) of each Result, newest first."""
    return [
        (r.type.name, repr(r.return_value), r.exc_string.strip().splitlines()[-1] if r.exc_string else None)
        for r in fetch(name, connection).results()
    ]


def seen_by_users(name: str, connection: redis.Redis) -> dict[str, Any]:
    job = fetch(name, connection)
    return {
        "status": job.get_status().value,
        "return_value": repr(job.return_value()),
        "results": results(name, connection),
        "number_of_retries": job.number_of_retries,
        "retries_left": job.retries_left,
    }


def redis_data(connection: redis.Redis) -> dict[str, Any]:
    """The job's data as stored: hash fields (but the volatile ones), TTLs (to about 5 s),
    its places (queue, registries, scores as seconds from now), its results stream's fields."""
    now = epoch_seconds()
    fields = connection.hgetall(f"rq:job:{JOB}")
    places: dict[str, Any] = {"queue": connection.lrange("rq:queue:q", 0, -1)}
    for kind in REGISTRIES:
        for member, score in cast(Scored, connection.zrange(f"rq:{kind}:q", 0, -1, withscores=True)):
            if member.split(b":")[0] == JOB.encode():
                places[kind] = score if score in (float("inf"), -1) else _about(score - now)
    stream = []
    for _, entry in cast(Entries, connection.xrange(f"rq:results:{JOB}")):
        value = entry.get(b"return_value")
        stream.append(
            (
                sorted(entry),
                entry[b"type"],
                repr(pickle.loads(b64decode(value))) if value else None,
                # the last line, less the time an abandoned job's reason ends with
                zlib.decompress(b64decode(entry[b"exc_string"])).decode().splitlines()[-1].split(", at ")[0]
                if entry.get(b"exc_string")
                else None,
            )
        )
    return {
        "hash": {
            k: v for k, v in fields.items() if k not in VOLATILE_FIELDS | RQ_ONLY_FIELDS | JOBPOOL_ONLY_FIELDS
        },
        "job ttl": _rounded_ttl(connection.ttl(f"rq:job:{JOB}")),
        "results ttl": _rounded_ttl(connection.ttl(f"rq:results:{JOB}")),
        "places": places,
        "results": stream,
    }


def _rounded_ttl(ttl: int) -> int | About:
    return ttl if ttl < 0 else _about(ttl)


class About:
    """A number of seconds read a moment after it was written: equal to another within
    ``TOLERANCE`` (the two runs compared are a moment apart, and a loaded machine stretches it;
    rounding both to a multiple of 5 would put two close values either side of a boundary)."""

    TOLERANCE = 5.0

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __eq__(self, other: object) -> bool:
        value = other.seconds if isinstance(other, About) else other
        return isinstance(value, int | float) and abs(self.seconds - value) <= self.TOLERANCE

    __hash__ = None  # type: ignore[assignment]  # equal within a tolerance: not hashable

    def __repr__(self) -> str:
        return f"About({self.seconds:.0f})"


def _about(seconds: float) -> About:
    return About(seconds)


def both(connection: redis.Redis, scenario: Callable[[str], Any]) -> tuple[Any, Any]:
    """``scenario`` run for RQ, then, on the emptied Redis, for jobpool."""
    theirs = scenario("rq")
    connection.flushdb()
    ours = scenario("jobpool")
    return theirs, ours


# ---- async def jobs ------------------------------------------------------------------------------


def test_an_async_job_runs_to_completion_as_with_rq(connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        enqueue(name, connection, jobs.async_double, 21)
        drain(name, connection)
        return seen_by_users(name, connection), redis_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0]["return_value"] == "42" and ours[0]["status"] == "finished"


def test_an_async_job_that_raises_fails_as_with_rq(connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        enqueue(name, connection, jobs.async_fail, "no luck")
        drain(name, connection)
        return seen_by_users(name, connection), redis_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0]["results"] == [("FAILED", "None", "ValueError: no luck")]


def test_an_async_job_runs_under_its_timeout(connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[str, str]:
        enqueue(name, connection, jobs.async_sleep, 30, job_timeout=1)
        started = time.monotonic()
        drain(name, connection)
        assert time.monotonic() - started < 10
        job = fetch(name, connection)
        # RQ's class is rq.timeouts.JobTimeoutException, jobpool's jobpool.timeouts's.
        return job.get_status().value, (job.latest_result().exc_string or "").splitlines()[-1].split(".")[-1]

    theirs, ours = both(connection, scenario)
    assert (
        ours == theirs == ("failed", "JobTimeoutException: Task exceeded maximum timeout value (1 seconds)")
    )


def test_a_pool_runs_async_jobs(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    queue = jobpool.Queue("q", connection=connection)
    enqueued = [queue.enqueue(jobs.async_double, n) for n in range(20)]
    pool("-n", "2", "q").wait_for_message("READY=1")
    wait_for(lambda: all(job.get_status() == JobStatus.FINISHED for job in enqueued))
    assert [job.return_value() for job in enqueued] == [2 * n for n in range(20)]


# ---- jobs that return a Retry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "at_front"),
    [(0, False), (0, True), ([5, 7], False)],
    ids=["at-once", "at-front", "interval"],
)
def test_a_returned_retry_runs_the_job_again_as_with_rq(
    connection: redis.Redis, interval: int | list[int], at_front: bool
) -> None:
    """Each run returns Retry(max=2): run again twice (or scheduled, with an interval), then
    failed with a MAX_RETRIES_EXCEEDED result; RQ ignores the job's own retries_left."""

    def scenario(name: str) -> list[Any]:
        lib = library(name)
        lib.Queue("q", connection=connection).enqueue(jobs.add, 0, 0, job_id="other")
        enqueue(name, connection, jobs.returns_retry, name, 2, interval, at_front, retry=lib.Retry(5))
        seen: list[Any] = []
        for _ in range(3):
            drain(name, connection)
            seen.append((seen_by_users(name, connection), redis_data(connection)))
            if connection.zrem("rq:scheduled:q", JOB):  # as a scheduler moves it when due
                lib.Queue("q", connection=connection).enqueue_job(fetch(name, connection))
        seen.append(connection.get(f"runs:{JOB}"))
        return seen

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    last_seen, last_data = ours[-2]
    assert ours[-1] == b"3" and last_seen["status"] == "failed" and last_seen["number_of_retries"] == 2
    assert [kind for kind, _, _ in last_seen["results"]] == ["MAX_RETRIES_EXCEEDED", "RETRIED", "RETRIED"]
    assert last_seen["retries_left"] == 5 and "failed" in last_data["places"]
    if interval:
        assert ours[0][1]["places"]["scheduled"] == 5


def test_a_pool_retries_a_job_that_returns_a_retry(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """The same as RQ's worker, through a pool's batches and its worker's ledger."""

    def scenario(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if name == "rq":
            enqueue(name, connection, jobs.returns_retry, name, 3)
            for _ in range(4):
                drain(name, connection)
        else:
            running = pool("-n", "1", "q")
            enqueue(name, connection, jobs.returns_retry, name, 3)
            running.wait_for_message("READY=1")
            wait_for(lambda: connection.hget(f"rq:job:{JOB}", "status") == b"failed")
        return seen_by_users(name, connection), redis_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0]["results"][0][0] == "MAX_RETRIES_EXCEEDED"


def test_a_retry_jobpool_refuses_fails_the_job_with_a_readable_reason(connection: redis.Redis) -> None:
    retry = rq.Retry(1, 10**12)  # RQ takes intervals that Redis refuses to schedule
    queue = jobpool.Queue("q", connection=connection)
    job = queue.enqueue(jobs.returns, retry)
    later = queue.enqueue(jobs.add, 1, 2)
    jobpool.Worker(["q"], connection=connection).work(burst=True)
    assert job.get_status() == JobStatus.FAILED
    assert "InvalidRetry: Retry intervals must be integers from 0" in (job.exc_info or "")
    assert later.return_value() == 3  # the worker carried on


def test_the_core_checks_a_returned_retrys_ending_and_a_pool_worker_can_keep_it() -> None:
    ending = Ending("job", "e" * 32, "q", 1.0, 0.1, "retry", b"UkVU", retry=(1, 5, True))
    ledger = Ledger(1)
    assert ledger.note_ended(0, ending)  # as a pool worker keeps it until its record is written
    (kept,) = ledger.ended(0)
    assert (kept.failure, kept.return_value, kept.retry) == ("retry", b"UkVU", (1, 5, True))
    with pytest.raises(ValueError, match="needs the Retry"):
        Ending("job", "e" * 32, "q", 1.0, 0.1, "max_retries_exceeded")
    with pytest.raises(ValueError, match="goes with"):
        Ending("job", "e" * 32, "q", 1.0, 0.1, "retry", b"UkVU")
    with pytest.raises(ValueError, match="goes with"):
        Ending("job", "e" * 32, "q", 1.0, 0.1, "failed", None, b"", b"", retry=(1, 0, False))


# ---- what callbacks see ---------------------------------------------------------------------------


def test_callbacks_see_the_status_rq_hands_them(connection: redis.Redis) -> None:
    """RQ sets the job's status (not yet Redis's) to finished before on_success and to failed
    before on_failure; Redis still says started until the record."""

    def scenario(name: str) -> tuple[list[bytes], list[bytes]]:
        callback = library(name).Callback(jobs.note_status)
        library(name).Queue("q", connection=connection).enqueue(
            jobs.add, 1, 2, job_id="ok", on_success=callback
        )
        library(name).Queue("q", connection=connection).enqueue(jobs.fail, job_id="bad", on_failure=callback)
        drain(name, connection)
        return (
            cast(Members, connection.lrange("seen:ok", 0, -1)),
            cast(Members, connection.lrange("seen:bad", 0, -1)),
        )

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours == ([b"finished", b"started"], [b"failed", b"started", b"ValueError", b"traceback"])


def _abandon(name: str, connection: redis.Redis, **options: Any) -> None:
    """Enqueues the job and leaves it as a worker that died running it leaves it: started, its
    execution lapsed (taken in RQ's layout by jobpool's core, which a test elsewhere checks)."""
    enqueue(name, connection, jobs.add, 1, 2, on_failure=library(name).Callback(jobs.note_status), **options)
    taken = connect_core(connection).take(["q"], "dead-worker", "e1", 30)
    assert taken is not None and taken.job_id == JOB
    lapse_executions(connection, "q")


@pytest.mark.parametrize("retried", [False, True], ids=["failed", "retried"])
def test_an_abandoned_job_runs_its_failure_callback_as_with_rq(
    connection: redis.Redis, retried: bool
) -> None:
    def scenario(name: str) -> tuple[list[bytes], dict[str, Any], dict[str, Any]]:
        _abandon(name, connection, **({"retry": library(name).Retry(1)} if retried else {}))
        if name == "rq":
            rq.registry.StartedJobRegistry("q", connection=connection).cleanup()
        else:
            StartedJobRegistry("q", connection=connection).cleanup()
        seen = seen_by_users(name, connection)
        seen["results"] = [
            (kind, value, (line or "").split(", at ")[0]) for kind, value, line in seen["results"]
        ]
        return cast(Members, connection.lrange(f"seen:{JOB}", 0, -1)), seen, redis_data(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0] == [b"started", b"started", b"AbandonedJobError", b"no traceback"]
    assert ours[1]["status"] == ("queued" if retried else "failed")


def test_a_standalone_worker_runs_abandoned_jobs_failure_callbacks_as_it_starts(
    connection: redis.Redis,
) -> None:
    _abandon("jobpool", connection)
    jobpool.Worker(["q"], connection=connection).work(burst=True)
    assert connection.lrange(f"seen:{JOB}", 0, -1)[2:] == [b"AbandonedJobError", b"no traceback"]
    assert fetch("jobpool", connection).get_status() == JobStatus.FAILED


def test_a_pool_runs_the_failure_callbacks_of_jobs_another_pool_abandoned(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    _abandon("jobpool", connection)
    plain = jobpool.Queue("q", connection=connection).enqueue(jobs.add, 3, 4)
    connect_core(connection).take(["q"], "dead-worker", "e2", 30)  # abandoned too, no callback
    lapse_executions(connection, "q")
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: connection.llen(f"seen:{JOB}") == 4 and plain.get_status() == JobStatus.FAILED)
    assert connection.lrange(f"seen:{JOB}", 0, -1) == [
        b"started",
        b"started",
        b"AbandonedJobError",
        b"no traceback",
    ]
    assert fetch("jobpool", connection).get_status() == JobStatus.FAILED
    assert "AbandonedJobError" in (plain.exc_info or "")
    assert running.process.poll() is None  # the pool lives on; its recovery process has exited
    wait_for(lambda: len(running.workers()) == 1)


def test_a_dead_workers_job_fails_without_its_failure_callback_as_with_rq(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """RQ 3.0 runs no on_failure for a job whose work-horse died (its worker fails the job
    with handle_job_failure alone); a pool's worker is its work-horse."""

    def scenario(name: str) -> tuple[str, str, list[bytes]]:
        enqueue(name, connection, jobs.kill_own_process, on_failure=library(name).Callback(jobs.note_status))
        if name == "rq":
            RQForkingWorker(["q"], connection=connection).work(burst=True, logging_level="WARNING")
        else:
            pool("-n", "1", "q").wait_for_message("READY=1")
            wait_for(lambda: connection.hget(f"rq:job:{JOB}", "status") == b"failed")
        job = fetch(name, connection)
        reason = (job.latest_result().exc_string or "").split(";")[0]
        return job.get_status().value, reason, cast(Members, connection.lrange(f"seen:{JOB}", 0, -1))

    theirs, ours = both(connection, scenario)
    assert ours == theirs == ("failed", "Work-horse terminated unexpectedly", [])
