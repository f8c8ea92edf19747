"""``repeat=Repeat(times, interval)`` (RQ 3.0): side by side with RQ (its SimpleWorker against
jobpool's Worker, on the same private Redis, emptied in between), through a ``jobpool start`` pool,
inline, and with pool workers SIGKILLing themselves at every step of their work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import rq

import jobs
from conftest import wait_for
from jobpool import Queue, Repeat, Retry
from jobpool.job import Job, JobStatus
from jobpool.results import Result
from support.pool_process import Pool
from support.redis_replies import Entries, Members, Scored
from support.side_by_side import drain, library

JOB = "repeated"
# Hash fields that differ between two equivalent runs only because time passed or a worker's
# name differs; ``data``/``description`` name the library; ``result`` is written by RQ's worker
# only (the deprecated field its whole-job save writes); the jobpool_ ones are jobpool's own.
UNCOMPARED_FIELDS = {
    b"created_at",
    b"enqueued_at",
    b"started_at",
    b"ended_at",
    b"last_heartbeat",
    b"worker_name",
    b"data",
    b"description",
    b"result",
    b"exc_info",  # a traceback, whose frames differ
    b"jobpool_records",
    b"jobpool_held",
}
# Keys of the runs' workers (and RQ's group-cleaning marker), not of the jobs.
UNCOMPARED_KEYS = (b"rq:worker", b"rq:workers", b"rq:jobpool:", b"rq:execution", b"rq:clean_groups")


def about(seconds: float) -> float:
    """``seconds`` to the nearest 5 (the two runs are a moment apart); infinity as it is."""
    return seconds if seconds == float("inf") else round(seconds / 5) * 5


def stored(connection: redis.Redis) -> dict[bytes, Any]:
    """Every key the jobs left (but the workers'): its value (hash fields but the volatile
    ones, sorted-set scores as seconds from now, stream entries' field names) and its TTL."""
    now = time.time()
    found: dict[bytes, Any] = {}
    for key in sorted(cast(Members, connection.keys("*"))):
        if key.startswith(UNCOMPARED_KEYS) or key.startswith(b"runs"):
            continue
        kind = connection.type(key)
        value: Any
        if kind == b"hash":
            value = {k: v for k, v in connection.hgetall(key).items() if k not in UNCOMPARED_FIELDS}
        elif kind == b"zset":
            value = [
                (m, about(s - now)) for m, s in cast(Scored, connection.zrange(key, 0, -1, withscores=True))
            ]
        elif kind == b"list":
            value = connection.lrange(key, 0, -1)
        elif kind == b"set":
            value = sorted(connection.smembers(key))
        elif kind == b"stream":
            value = [(sorted(entry), entry[b"type"]) for _, entry in cast(Entries, connection.xrange(key))]
        else:
            value = connection.get(key)
        ttl = connection.ttl(key)
        found[key] = (value, ttl if ttl < 0 else about(ttl))
    return found


def both(connection: redis.Redis, scenario: Callable[[str], Any]) -> tuple[Any, Any]:
    """``scenario`` run for RQ, then, on the emptied Redis, for jobpool."""
    connection.flushdb()
    theirs = scenario("rq")
    connection.flushdb()
    ours = scenario("jobpool")
    return theirs, ours


# ---- the Repeat object ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"times": 0},
        {"times": -2},
        {"times": 1, "interval": -1},
        {"times": 1, "interval": [5, -1]},
        {"times": 1, "interval": None},
        {"times": 1, "interval": 2.5},
        {"times": 1, "interval": ["a"]},
        {"times": "3"},
    ],
)
def test_repeat_refuses_what_rq_refuses_with_its_errors(arguments: dict[str, Any]) -> None:
    errors = []
    for make in (rq.Repeat, Repeat):
        with pytest.raises((ValueError, TypeError)) as raised:
            make(**arguments)
        errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1]


def test_repeat_holds_what_rq_holds() -> None:
    for arguments in ({"times": 3}, {"times": 2, "interval": 10}, {"times": 4, "interval": (10, 30)}):
        theirs, ours = rq.Repeat(**arguments), Repeat(**arguments)
        assert (ours.times, ours.intervals) == (theirs.times, theirs.intervals)
    assert Repeat.get_interval(5, [10, 30]) == rq.Repeat.get_interval(5, [10, 30]) == 30


# ---- how a repeat is stored -------------------------------------------------------------------


ENQUEUE_WAYS = ["enqueue", "enqueue_call", "enqueue_at", "create_job", "enqueue_many"]


@pytest.mark.parametrize("way", ENQUEUE_WAYS)
def test_every_way_to_enqueue_stores_a_repeat_as_rq_does(connection: redis.Redis, way: str) -> None:
    def scenario(name: str) -> dict[bytes, Any]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        repeat = lib.Repeat(times=3, interval=[10, 30])
        if way == "enqueue":
            queue.enqueue(jobs.add, 1, 2, job_id=JOB, repeat=repeat)
        elif way == "enqueue_call":
            queue.enqueue_call(jobs.add, args=(1, 2), job_id=JOB, repeat=repeat)
        elif way == "enqueue_at":
            queue.enqueue_at(
                datetime.now(timezone.utc) + timedelta(hours=1), jobs.add, 1, 2, job_id=JOB, repeat=repeat
            )
        elif way == "create_job":
            queue.enqueue_job(queue.create_job(jobs.add, args=(1, 2), job_id=JOB, repeat=repeat))
        else:
            queue.enqueue_many([lib.Queue.prepare_data(jobs.add, (1, 2), job_id=JOB, repeat=repeat)])
        job = (rq.job.Job if name == "rq" else Job).fetch(JOB, connection=connection)
        assert (job.repeats_left, job.repeat_intervals) == (3, [10, 30])
        return stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[f"rq:job:{JOB}".encode()][0][b"repeat_intervals"] == b"[10, 30]"


# ---- what a worker does with it -----------------------------------------------------------------

SCENARIOS: dict[str, dict[str, Any]] = {
    "at once": {"repeat": (2, 0)},
    "after intervals": {"repeat": (3, [30, 60, 90])},
    "the last interval reused": {"repeat": (2, [30])},
    "with no result kept": {"repeat": (1, 30), "result_ttl": 0},
    "kept for ever, with a ttl": {"repeat": (1, 30), "result_ttl": -1, "ttl": 100},
    "and a failure, which is not repeated": {"repeat": (2, 0), "fails": True},
}


@pytest.mark.parametrize("scenario_name", SCENARIOS)
def test_a_repeated_job_leaves_what_rq_leaves(
    redis_url: str, connection: redis.Redis, scenario_name: str
) -> None:
    options = dict(SCENARIOS[scenario_name])
    times, interval = options.pop("repeat")
    fails = options.pop("fails", False)

    def scenario(name: str) -> tuple[int, str, int | None, dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        function, args = (jobs.fail, ("no luck",)) if fails else (jobs.count_run, (redis_url, "runs"))
        queue.enqueue(
            function, *args, job_id=JOB, repeat=lib.Repeat(times=times, interval=interval), **options
        )
        drain(name, connection)
        job = (rq.job.Job if name == "rq" else Job).fetch(JOB, connection=connection)
        return (
            int(connection.get("runs") or 0),
            cast(JobStatus, job.get_status()).value,
            job.repeats_left,
            stored(connection),
        )

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    runs, status, repeats_left, _ = ours
    if fails:
        assert (status, repeats_left) == ("failed", 2)
    elif interval == 0:
        assert (runs, status, repeats_left) == (times + 1, "finished", 0)  # every repeat ran at once
    else:
        assert (runs, status, repeats_left) == (1, "scheduled", times - 1)


def test_an_inline_queue_runs_a_repeated_job_once_as_rq_does(redis_url: str, connection: redis.Redis) -> None:
    def scenario(name: str) -> tuple[int, str, dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection, is_async=False)
        job = queue.enqueue(jobs.count_run, redis_url, "runs", job_id=JOB, repeat=lib.Repeat(times=2))
        return int(connection.get("runs") or 0), job.get_status().value, stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[:2] == (1, "finished")


# ---- a pool --------------------------------------------------------------------------------------


def test_a_pool_runs_each_repeat_at_once_or_after_its_interval(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    queue = Queue("q", connection=connection)
    at_once = queue.enqueue(jobs.count_run, redis_url, "runs:at-once", repeat=Repeat(times=3))
    later = queue.enqueue(jobs.count_run, redis_url, "runs:later", repeat=Repeat(times=2, interval=[1, 0]))
    pool("-n", "2", "q").wait_for_message("READY=1")
    wait_for(lambda: at_once.get_status() == JobStatus.FINISHED and connection.get("runs:at-once") == b"4")
    wait_for(lambda: later.get_status() == JobStatus.FINISHED and connection.get("runs:later") == b"3")
    for job, runs in ((at_once, 4), (later, 3)):
        job.refresh()
        assert job.repeats_left == 0
        assert [r.type for r in job.results()] == [Result.Type.SUCCESSFUL] * runs
    assert later.repeat_intervals == [0]  # its list shifted once, then kept its last entry
    assert queue.count == 0 and queue.scheduled_job_registry.count == 0


# ---- faults --------------------------------------------------------------------------------------

FAULTY_JOBS = 30
REPEATS = 2


def test_a_repeat_is_neither_lost_nor_doubled_by_workers_killed_at_every_step(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    """Workers SIGKILL themselves at random at the edges of every step (take, hold, start, the
    record of a success, which sends the repeat round, ...). A job killed as it runs fails (it has
    no retries), ending its repeats there; otherwise each of its runs is recorded once, and each
    success sends exactly one repeat round, whichever process writes the record."""
    kill_log = tmp_path / "kills.log"
    environ = {"JOBPOOL_TEST_KILL_PROBABILITY": "0.02", "JOBPOOL_TEST_KILL_LOG": str(kill_log)}
    queue = Queue("q", connection=connection)
    datas = [
        Queue.prepare_data(jobs.counted_sleep, (0.01,), repeat=Repeat(times=REPEATS))
        for _ in range(FAULTY_JOBS)
    ]
    ids = [job.id for job in queue.enqueue_many(datas)]
    pool("-n", "2", "--preload", "support.faulty_pool_worker", "q", environ=environ)

    def all_ended() -> bool:
        statuses = [job.get_status(refresh=False) for job in Job.fetch_many(ids, connection) if job]
        return all(status in (JobStatus.FINISHED, JobStatus.FAILED) for status in statuses)

    wait_for(all_ended, deadline_seconds=180, step=0.2)
    kills = kill_log.read_text().splitlines() if kill_log.exists() else []
    print(f"kills: {len(kills)}")
    assert len(kills) >= 3, kills
    failed = 0
    for job in Job.fetch_many(ids, connection):
        assert job is not None
        types = [result.type for result in job.results()]
        successes = types.count(Result.Type.SUCCESSFUL)
        runs = int(connection.get(f"runs:{job.id}") or 0)
        assert runs == len(types), f"{job.id}: {runs} runs, results {types}"  # each run recorded once
        assert job.repeats_left == REPEATS - min(successes, REPEATS), (job.id, types, job.repeats_left)
        if job.get_status(refresh=False) == JobStatus.FINISHED:
            assert types == [Result.Type.SUCCESSFUL] * (REPEATS + 1), (job.id, types)
        else:
            failed += 1
            assert types[0] == Result.Type.FAILED and successes <= REPEATS, (job.id, types)  # newest first
            assert "terminated unexpectedly" in (job.exc_info or ""), job.exc_info
    assert queue.count == 0 and queue.scheduled_job_registry.count == 0
    assert failed <= len(kills)


def test_a_retried_job_repeats_after_its_successful_run(redis_url: str, connection: redis.Redis) -> None:
    """A failure is retried (using no repeat); the success after it sends the repeat round."""

    def scenario(name: str) -> tuple[list[str], int | None, dict[bytes, Any]]:
        lib = library(name)
        queue = lib.Queue("q", connection=connection)
        retry = (rq.Retry if name == "rq" else Retry)(max=1)
        queue.enqueue(jobs.fail_once, redis_url, job_id=JOB, repeat=lib.Repeat(times=1), retry=retry)
        drain(name, connection)
        job = (rq.job.Job if name == "rq" else Job).fetch(JOB, connection=connection)
        return [r.type.name for r in job.results()], job.repeats_left, stored(connection)

    theirs, ours = both(connection, scenario)
    assert ours == theirs
    assert ours[:2] == (["SUCCESSFUL", "SUCCESSFUL"], 0)  # a retried failure writes no result
