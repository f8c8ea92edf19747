"""``rate_limit=RateLimit(key, concurrency)`` and the ``rate_limited`` status (RQ 3.0): side by
side with RQ (its SimpleWorker against jobpool's Worker, its scheduler, requeue, cancel, delete and
maintenance against jobpool's, on the same private Redis, emptied in between), through a
``jobpool start`` pool, and with workers SIGKILLed as they run a job holding a slot.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest
import redis
import rq
import rq.registry
import rq.scheduler
from rq.job import Job as RQJob

import jobpool
import jobpool.registry
import jobs
from conftest import wait_for
from jobpool import Queue, RateLimit, Repeat
from jobpool.exceptions import InvalidJobOperation
from jobpool.job import Job, JobStatus
from jobpool.pool.scheduler import enqueue_due_jobs, release_scheduler_locks
from jobpool.rate_limit import RateLimitRegistry
from jobpool.recovery import recover_abandoned
from support.pool_process import PYTHONPATH, Pool, lapse_executions
from support.redis_replies import Members
from test_repeat import both, drain, library, stored

TESTS = PYTHONPATH.split(":")[0]


def job_class(name: str) -> Any:
    return RQJob if name == "rq" else Job


def enqueue_limited(
    name: str, connection: redis.Redis, redis_url: str, tags: list[str], **options: Any
) -> None:
    """Enqueues one ``note_order`` job per tag (job id = tag) under the rate limit ``k`` of one."""
    lib = library(name)
    queue = lib.Queue("q", connection=connection)
    for tag in tags:
        queue.enqueue(
            jobs.note_order, redis_url, "order", tag, job_id=tag, rate_limit=lib.RateLimit("k", 1), **options
        )


def statuses(name: str, connection: redis.Redis, ids: list[str]) -> list[str]:
    return [job_class(name).fetch(job_id, connection=connection).get_status().value for job_id in ids]


# ---- the RateLimit object and what RQ refuses -------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [("", 1), (None, 1), ("k", 0), ("k", -3), ("k", "2"), ("k", 1.5), ("k", None)],
)
def test_rate_limit_refuses_what_rq_refuses_with_its_errors(arguments: tuple[Any, Any]) -> None:
    errors = []
    for make in (rq.RateLimit, RateLimit):
        with pytest.raises(ValueError) as raised:
            make(*arguments)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]


def _custom_prefix_queue(name: str, connection: redis.Redis) -> Any:
    lib = library(name)

    class PrefixedJob(job_class(name)):  # type: ignore[misc]
        redis_job_namespace_prefix = "custom:job:"

    return lib.Queue("q", connection=connection, job_class=PrefixedJob)


def _enqueue_refused(name: str, connection: redis.Redis, restriction: str) -> None:
    lib = library(name)
    queue = lib.Queue("q", connection=connection)
    limit = lib.RateLimit("k", 1)
    if restriction == "unique":
        queue.enqueue(jobs.add, 1, 2, job_id="a", unique=True, rate_limit=limit)
    elif restriction == "a pipeline":
        queue.enqueue(jobs.add, 1, 2, pipeline=connection.pipeline(), rate_limit=limit)
    elif restriction == "a synchronous queue":
        lib.Queue("q", connection=connection, is_async=False).enqueue(jobs.add, 1, 2, rate_limit=limit)
    else:
        _custom_prefix_queue(name, connection).enqueue(jobs.add, 1, 2, rate_limit=limit)


@pytest.mark.parametrize(
    "restriction", ["unique", "a pipeline", "a synchronous queue", "a custom job key prefix"]
)
def test_a_rate_limit_is_refused_where_rq_refuses_it(connection: redis.Redis, restriction: str) -> None:
    def scenario(name: str) -> tuple[str, list[bytes]]:
        with pytest.raises(ValueError) as raised:
            _enqueue_refused(name, connection, restriction)
        return str(raised.value), sorted(cast(Members, connection.keys("*")))

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[1] == []  # nothing written


def test_a_rate_limited_job_cannot_be_canceled_in_a_callers_pipeline(
    redis_url: str, connection: redis.Redis
) -> None:
    def scenario(name: str) -> str:
        enqueue_limited(name, connection, redis_url, ["a"])
        job = job_class(name).fetch("a", connection=connection)
        with pytest.raises(
            InvalidJobOperation if name == "jobpool" else rq.exceptions.InvalidJobOperation
        ) as raised:
            job.cancel(pipeline=connection.pipeline())
        return str(raised.value)

    theirs, ours = both(connection, scenario)
    assert ours == theirs


# ---- enqueueing and draining -----------------------------------------------------------------------


def test_jobs_past_the_concurrency_wait_rate_limited_as_with_rq(
    redis_url: str, connection: redis.Redis
) -> None:
    def scenario(name: str) -> tuple[list[str], list[str], dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        enqueued = [
            queue.enqueue(jobs.add, 1, n, job_id=f"j{n}", rate_limit=lib.RateLimit("k", 2)) for n in range(4)
        ]
        returned = [job.get_status(refresh=False).value for job in enqueued]
        return returned, statuses(name, connection, [job.id for job in enqueued]), stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0] == ours[1] == ["queued", "queued", "rate_limited", "rate_limited"]
    assert ours[2][b"rq:rl:k:allowed"][0] == [(b"j0", 0), (b"j1", 0)]
    assert ours[2][b"rq:rl-keys"][0] == [b"k"] and ours[2][b"rq:rl:k"][0] == {b"concurrency": b"2"}


def test_a_worker_runs_waiting_jobs_oldest_first_as_slots_free(
    redis_url: str, connection: redis.Redis
) -> None:
    def scenario(name: str) -> tuple[list[bytes], list[str], dict[bytes, Any]]:
        enqueue_limited(name, connection, redis_url, ["a", "b"])
        enqueue_limited(name, connection, redis_url, ["c"], at_front=True)
        enqueue_limited(name, connection, redis_url, ["d"])
        library(name).Queue("q", connection=connection).enqueue(
            jobs.fail, job_id="e", rate_limit=library(name).RateLimit("k", 1)
        )
        drain(name, connection)
        return (
            cast(Members, connection.lrange("order", 0, -1)),
            statuses(name, connection, list("abcde")),
            stored(connection),
        )

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0] == [b"a", b"b", b"c", b"d"]
    assert ours[1] == ["finished"] * 4 + ["failed"]
    assert not any(key.startswith(b"rq:rl") for key in ours[2][b"rq:rl-keys"][0])
    assert ours[2].get(b"rq:rl:k:allowed") is None and ours[2].get(b"rq:rl:k:rate_limited") is None


def test_a_repeat_keeps_its_slot_when_it_runs_at_once_and_frees_it_when_it_waits(
    redis_url: str, connection: redis.Redis
) -> None:
    def scenario(name: str) -> tuple[list[bytes], list[str], dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        limit = lib.RateLimit("k", 1)
        queue.enqueue(
            jobs.note_order, redis_url, "order", "a", job_id="a", rate_limit=limit, repeat=lib.Repeat(1)
        )
        queue.enqueue(
            jobs.note_order, redis_url, "order", "b", job_id="b", rate_limit=limit, repeat=lib.Repeat(1, 60)
        )
        queue.enqueue(jobs.note_order, redis_url, "order", "c", job_id="c", rate_limit=limit)
        drain(name, connection)
        return (
            cast(Members, connection.lrange("order", 0, -1)),
            statuses(name, connection, list("abc")),
            stored(connection),
        )

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[0] == [b"a", b"a", b"b", b"c"] and ours[1] == ["finished", "scheduled", "finished"]


# ---- other ways in and out: scheduler, dependents, requeue, cancel, delete, maintenance --------------


def move_due_jobs(name: str, connection: redis.Redis) -> None:
    if name == "rq":
        scheduler = rq.scheduler.RQScheduler([rq.Queue("q", connection=connection)], connection=connection)
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
    else:
        enqueue_due_jobs(connection, ["q"], "test-scheduler")
        release_scheduler_locks(connection, ["q"], "test-scheduler")


def test_a_due_scheduled_job_waits_for_a_slot_as_with_rq(redis_url: str, connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[list[str], dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        limit = lib.RateLimit("k", 1)
        past = datetime.now(timezone.utc) - timedelta(seconds=5)
        for job_id in ("a", "b"):
            queue.enqueue_at(past, jobs.add, 1, 2, job_id=job_id, rate_limit=limit)
        move_due_jobs(name, connection)
        return statuses(name, connection, ["a", "b"]), stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert sorted(ours[0]) == ["queued", "rate_limited"]


def test_a_dependent_waits_for_a_slot_once_its_parent_finishes_as_with_rq(
    redis_url: str, connection: redis.Redis
) -> None:
    def scenario(name: str) -> tuple[list[bytes], list[str], dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        limit = lib.RateLimit("k", 1)
        queue.enqueue(jobs.note_order, redis_url, "order", "parent", job_id="parent")
        queue.enqueue(
            jobs.note_order, redis_url, "order", "x", job_id="x", depends_on="parent", rate_limit=limit
        )
        queue.enqueue(
            jobs.note_order, redis_url, "order", "y", job_id="y", depends_on="parent", rate_limit=limit
        )
        waiting = statuses(name, connection, ["x", "y"])
        drain(name, connection)
        return (
            cast(Members, connection.lrange("order", 0, -1))[:1],
            waiting + statuses(name, connection, ["x", "y"]),
            stored(connection),
        )

    theirs, ours = both(connection, scenario)
    assert ours[1] == theirs[1] == ["deferred", "deferred", "finished", "finished"]
    assert ours[0] == theirs[0] == [b"parent"]
    theirs_data = {k: v for k, v in theirs[2].items() if k != b"order"}
    assert {k: v for k, v in ours[2].items() if k != b"order"} == theirs_data


def test_a_requeued_failed_job_waits_for_a_slot_as_with_rq(redis_url: str, connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[list[str], dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        limit = lib.RateLimit("k", 1)
        queue.enqueue(jobs.fail, job_id="failing", rate_limit=limit)
        drain(name, connection)
        queue.enqueue(jobs.sleep_for, 0, job_id="holder", rate_limit=limit)  # takes the slot
        queue.failed_job_registry.requeue("failing", at_front=True)
        return statuses(name, connection, ["failing", "holder"]), stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours[0] == theirs[0] == ["rate_limited", "queued"]
    # RQ's requeue saves the whole job, writing exc_info back empty; jobpool's removes it.
    for data in (ours[1], theirs[1]):
        data[b"rq:job:failing"][0].pop(b"exc_info", None)
    assert ours[1] == theirs[1]
    assert ours[1][b"rq:job:failing"][0][b"enqueue_at_front"] == b"1"


@pytest.mark.parametrize(
    "how", ["cancel the queued", "delete the queued", "cancel a waiting", "delete a waiting"]
)
def test_cancel_and_delete_free_the_slot_and_promote_as_with_rq(
    redis_url: str, connection: redis.Redis, how: str
) -> None:
    def scenario(name: str) -> tuple[list[str], dict[bytes, Any]]:
        enqueue_limited(name, connection, redis_url, ["a", "b", "c"])
        target = job_class(name).fetch("a" if "queued" in how else "b", connection=connection)
        target.cancel() if how.startswith("cancel") else target.delete()
        remaining = [job_id for job_id in "abc" if connection.exists(f"rq:job:{job_id}")]
        return statuses(name, connection, remaining), stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert len(ours[1][b"rq:rl:k:allowed"][0]) == 1


def test_maintenance_frees_a_leaked_slot_and_forgets_an_unused_limit_as_rq_does(
    redis_url: str, connection: redis.Redis
) -> None:
    def scenario(name: str) -> tuple[list[str], dict[bytes, Any], dict[bytes, Any]]:
        lib = library(name)
        enqueue_limited(name, connection, redis_url, ["a", "b"])
        with connection.pipeline() as pipe:  # deleted in a caller's pipeline: its slot stays held
            job_class(name).fetch("a", connection=connection).delete(pipeline=pipe)
            pipe.execute()
        leaked = stored(connection)
        registries = lib.registry.clean_registries
        registries(lib.Queue("q", connection=connection))
        promoted = stored(connection)
        status = statuses(name, connection, ["b"])
        lib.Queue("q", connection=connection).empty()
        registries(lib.Queue("q", connection=connection))
        assert not any(key.startswith(b"rq:rl") for key in stored(connection))
        return status, leaked, promoted

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[1][b"rq:rl:k:allowed"][0] == [(b"a", 0)] and ours[0] == ["queued"]


def test_the_registry_reads_what_rqs_reads(redis_url: str, connection: redis.Redis) -> None:
    enqueue_limited("jobpool", connection, redis_url, ["a", "b", "c"])
    theirs, ours = rq.rate_limit.RateLimitRegistry("k", connection), RateLimitRegistry("k", connection)
    for method in (
        "get_allowed_job_ids",
        "get_rate_limited_job_ids",
        "get_allowed_job_count",
        "get_rate_limited_job_count",
    ):
        assert getattr(ours, method)() == getattr(theirs, method)(), method
    assert ours.concurrency == theirs.concurrency == 1
    assert [r.key for r in RateLimitRegistry.all(connection)] == ["k"]
    assert (ours.config_key, ours.allowed_key, ours.rate_limited_key) == (
        theirs.config_key,
        theirs.allowed_key,
        theirs.rate_limited_key,
    )


@pytest.mark.parametrize("producer", ["rq", "jobpool"])
def test_rq_and_jobpool_share_limits_and_repeats(
    redis_url: str, connection: redis.Redis, producer: str
) -> None:
    """Jobs one library enqueued with a rate limit and a repeat are run by the other's worker."""
    consumer = "jobpool" if producer == "rq" else "rq"
    lib = library(producer)
    queue = lib.Queue("q", connection=connection)
    limit, repeat = lib.RateLimit("k", 1), lib.Repeat(times=1)
    for tag in ("a", "b"):
        queue.enqueue(jobs.note_order, redis_url, "order", tag, job_id=tag, rate_limit=limit, repeat=repeat)
    assert statuses(consumer, connection, ["a", "b"]) == ["queued", "rate_limited"]
    drain(consumer, connection)
    assert connection.lrange("order", 0, -1) == [b"a", b"a", b"b", b"b"]
    assert statuses(producer, connection, ["a", "b"]) == ["finished", "finished"]
    assert not connection.exists("rq:rl:k:allowed", "rq:rl:k:rate_limited")


# ---- a pool, and workers killed --------------------------------------------------------------------


def test_a_pool_never_runs_more_than_the_concurrency(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    queue = Queue("q", connection=connection)
    limited = [
        queue.enqueue(jobs.exclusive_run, redis_url, "k", 0.2, rate_limit=RateLimit("k", 2)) for _ in range(8)
    ]
    free = [queue.enqueue(jobs.add, 1, n) for n in range(4)]
    pool("-n", "3", "q").wait_for_message("READY=1")
    wait_for(
        lambda: all(job.get_status() == JobStatus.FINISHED for job in limited + free), deadline_seconds=30
    )
    seen = [int(n) for n in connection.lrange("k:seen", 0, -1)]
    assert len(seen) == 8 and max(seen) == 2  # two ran together, never three
    registry = RateLimitRegistry("k", connection)
    assert registry.get_allowed_job_count() == registry.get_rate_limited_job_count() == 0


def test_a_pools_maintenance_frees_a_leaked_slot(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """A slot whose job was deleted in a caller's pipeline stays taken until maintenance: a pool's
    (every 10 s, as RQ's workers run theirs) frees it, and the waiting job runs."""
    enqueue_limited("jobpool", connection, redis_url, ["a", "b"])
    with connection.pipeline() as pipe:
        Job.fetch("a", connection=connection).delete(pipeline=pipe)
        pipe.execute()
    assert RateLimitRegistry("k", connection).get_allowed_job_ids() == ["a"]
    pool("-n", "1", "q").wait_for_message("READY=1")
    wait_for(
        lambda: Job.fetch("b", connection=connection).get_status() == JobStatus.FINISHED, deadline_seconds=30
    )
    assert connection.lrange("order", 0, -1) == [b"b"]
    wait_for(lambda: not connection.exists("rq:rl:k", "rq:rl:k:allowed", "rq:rl-keys"), deadline_seconds=30)


@pytest.fixture
def worker_process(redis_url: str) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, f"{TESTS}/support/worker_process.py", redis_url, "q"],
            stdout=subprocess.PIPE,
            text=True,
            env={"PYTHONPATH": PYTHONPATH},
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_pool_worker_killed_holding_a_slot_frees_it_and_the_next_job_runs_once(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    queue = Queue("q", connection=connection)
    limit = RateLimit("k", 1)
    doomed = queue.enqueue(jobs.sleep_for, 60, rate_limit=limit)
    waiting = queue.enqueue(jobs.counted_sleep, 0, rate_limit=limit)
    assert waiting.get_status() == JobStatus.RATE_LIMITED
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    victim = running.busy_worker(doomed.id)
    assert waiting.get_status() == JobStatus.RATE_LIMITED  # a second worker is idle: the limit holds it
    victim.kill()
    wait_for(lambda: doomed.get_status() == JobStatus.FAILED)
    wait_for(lambda: waiting.get_status() == JobStatus.FINISHED)
    assert "terminated unexpectedly" in (doomed.exc_info or "")
    assert connection.get(f"runs:{waiting.id}") == b"1"
    registry = RateLimitRegistry("k", connection)
    assert registry.get_allowed_job_ids() == registry.get_rate_limited_job_ids() == []


def test_an_abandoned_job_holding_a_slot_frees_it_when_recovered(
    redis_url: str, connection: redis.Redis, worker_process: Callable[[], subprocess.Popen[str]]
) -> None:
    """A lone worker is SIGKILLed mid-job; recovery (as any pool's maintenance runs it once the
    execution's heartbeat lapses) fails the job, frees its slot and promotes the waiting job, in
    the script run that records the failure; running recovery again changes nothing."""
    queue = Queue("q", connection=connection)
    limit = RateLimit("k", 1)
    doomed = queue.enqueue(jobs.sleep_for, 60, rate_limit=limit)
    waiting = queue.enqueue(jobs.counted_sleep, 0, rate_limit=limit)
    process = worker_process()
    wait_for(lambda: doomed.get_status() == JobStatus.STARTED)
    process.kill()
    process.wait()
    assert RateLimitRegistry("k", connection).get_allowed_job_ids() == [doomed.id]
    lapse_executions(connection, "q")
    recovered = recover_abandoned(connection, ["q"])
    assert [outcome for *_, outcome in recovered] == ["failed"]
    assert doomed.get_status() == JobStatus.FAILED and waiting.get_status() == JobStatus.QUEUED
    registry = RateLimitRegistry("k", connection)
    assert registry.get_allowed_job_ids() == [waiting.id] and registry.get_rate_limited_job_count() == 0
    assert recover_abandoned(connection, ["q"]) == []
    assert queue.job_ids == [waiting.id]  # promoted once
    jobpool.Worker(["q"], connection=connection).work(burst=True)
    assert waiting.get_status() == JobStatus.FINISHED and connection.get(f"runs:{waiting.id}") == b"1"
    assert registry.get_allowed_job_count() == 0


def test_a_job_canceled_while_it_runs_frees_its_slot_when_it_ends(
    redis_url: str, connection: redis.Redis, worker_process: Callable[[], subprocess.Popen[str]]
) -> None:
    queue = Queue("q", connection=connection)
    limit = RateLimit("k", 1)
    gate = "gate"
    running = queue.enqueue(jobs.wait_for_gate, gate, rate_limit=limit)
    waiting = queue.enqueue(jobs.counted_sleep, 0, rate_limit=limit)
    worker_process()
    wait_for(lambda: running.get_status() == JobStatus.STARTED)
    running.cancel()
    assert waiting.get_status() == JobStatus.RATE_LIMITED  # the canceled job still runs
    connection.rpush(gate, "open")
    wait_for(lambda: waiting.get_status() == JobStatus.FINISHED)
    assert running.get_status() == JobStatus.CANCELED
    assert RateLimitRegistry("k", connection).get_allowed_job_count() == 0


def test_repeat_and_rate_limit_are_exported_as_in_rq() -> None:
    assert {"Repeat", "RateLimit"} <= set(jobpool.__all__) and {"Repeat", "RateLimit"} <= set(rq.__all__)
    assert JobStatus.RATE_LIMITED.value == rq.job.JobStatus.RATE_LIMITED.value == "rate_limited"
    assert Repeat is jobpool.Repeat
