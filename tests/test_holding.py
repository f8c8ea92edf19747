"""Jobs taken ahead never hurt: a real ``jobpool start`` with mixed workloads (quick jobs, then a
slow one, then quick ones again), read from outside as RQ's tools read it.

A pool worker whose jobs are quick takes its next job while the current one runs (it *holds*
it). These tests pin the promises of that: a held job's deadline starts when it starts, a job
held behind a slow one goes back to its queue for an idle worker, a worker running any job is
``busy`` in RQ's worker hash, and ``--prefetch 0`` holds nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import psutil
import pytest
import redis
import rq

import jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.job import Job, JobStatus
from jobpool.recovery import recover_abandoned
from jobpool.results import Result
from jobpool.work_horse import HARD_KILL_GRACE_SECONDS
from support.pool_process import Pool, lapse_executions
from support.redis_replies import Members


def _quick_jobs(queue: Queue, count: int, **options: object) -> list[Job]:
    return [queue.enqueue(jobs.add, i, 1, **options) for i in range(count)]


def test_a_long_job_after_quick_ones_is_not_killed_by_their_deadline(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """The quick jobs' timeout is 1 s; the long job, taken ahead while the last of them ran,
    runs 8 s under its own 60 s. Its deadline starts when it starts, from its own timeout."""
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    quick = _quick_jobs(queue, 3, job_timeout=1)
    long = queue.enqueue(jobs.sleep_for, 8, job_timeout=60)
    wait_for(lambda: long.get_status() != JobStatus.STARTED and long.get_status() != JobStatus.QUEUED, 40)
    assert long.get_status() == JobStatus.FINISHED, long.exc_info
    assert all(job.get_status() == JobStatus.FINISHED for job in quick)
    assert "killing" not in running.log.read_text()


def test_a_job_behind_a_slow_one_is_run_by_the_idle_worker(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    _quick_jobs(queue, 6)
    slow = queue.enqueue(jobs.sleep_for, 6)
    after = queue.enqueue(jobs.add, 2, 2)
    wait_for(lambda: slow.get_status() == JobStatus.STARTED)
    wait_for(lambda: after.get_status() == JobStatus.FINISHED, deadline_seconds=3)
    assert slow.get_status() == JobStatus.STARTED  # run beside the slow job, not after it
    assert Job.fetch(after.id, connection).worker_name != Job.fetch(slow.id, connection).worker_name


def test_a_mixed_day_on_two_workers_one_killed_as_it_holds_a_job(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """Jobs as users mix them, on two workers: quick ones under a 1 s timeout, a long one under
    its own 60 s that outlives their deadline and the hard kill's grace, then quick ones again.
    The worker that is not running the long job is SIGKILLed as it owns a job it took, still
    marked held in Redis. The long job finishes, not killed; no quick job is lost or run twice;
    only the one the killed worker was running, if any, fails, saying why."""
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    before = [queue.enqueue(jobs.counted_sleep, 0, job_timeout=1) for _ in range(20)]
    long = queue.enqueue(jobs.counted_sleep, 1 + HARD_KILL_GRACE_SECONDS + 2, job_timeout=60)
    after = [queue.enqueue(jobs.counted_sleep, 0.05, job_timeout=1) for _ in range(60)]
    wait_for(lambda: connection.get(f"runs:{long.id}") is not None)
    long_worker = cast(bytes, connection.hget(long.key, "worker_name"))
    holder: list[bytes] = []

    def the_other_worker_holds_a_job() -> bool:
        with connection.pipeline(transaction=False) as pipe:
            for job in after:
                pipe.hmget(job.key, "jobpool_held", "worker_name")
            owners = [worker for held, worker in pipe.execute() if held and worker != long_worker]
        holder[:] = owners[:1]
        return bool(holder)

    wait_for(the_other_worker_holds_a_job)
    os.kill(int(connection.hget(b"rq:worker:" + holder[0], "pid") or 0), signal.SIGKILL)
    ended = (JobStatus.FINISHED, JobStatus.FAILED)
    wait_for(lambda: all(job.get_status() in ended for job in [*before, long, *after]), 60)
    assert long.get_status() == JobStatus.FINISHED, long.exc_info
    assert all(job.get_status() == JobStatus.FINISHED for job in before)
    failed = [job for job in after if job.get_status() == JobStatus.FAILED]
    assert len(failed) <= 1
    assert all("terminated unexpectedly" in (job.exc_info or "") for job in failed)
    runs = [int(connection.get(f"runs:{job.id}") or 0) for job in [*before, long, *after]]
    assert runs == [1] * len(runs)
    assert connection.llen("rq:queue:q") == 0 and connection.zcard("rq:wip:q") == 0
    assert "killing" not in running.log.read_text()


def test_a_held_job_goes_back_to_the_front_of_its_queue_while_the_job_before_it_is_slow(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    quick = _quick_jobs(queue, 5)
    slow = queue.enqueue(jobs.sleep_for, 3)
    after = queue.enqueue(jobs.add, 2, 2)
    last = queue.enqueue(jobs.add, 3, 3)
    wait_for(lambda: slow.get_status() == JobStatus.STARTED)
    names = {
        job.id: name
        for job, name in [
            *((j, f"quick{i}") for i, j in enumerate(quick)),
            (slow, "slow"),
            (after, "after"),
            (last, "last"),
        ]
    }
    try:
        wait_for(lambda: queue.job_ids == [after.id, last.id], deadline_seconds=2)
    except AssertionError:
        raise AssertionError([names.get(i, i) for i in queue.job_ids]) from None
    assert after.get_status() == JobStatus.QUEUED and not Job.fetch(after.id, connection).worker_name
    assert queue.started_job_registry.get_job_ids() == [slow.id]
    assert connection.hget(after.key, "jobpool_held") is None
    wait_for(lambda: last.get_status() == JobStatus.FINISHED)
    assert after.return_value() == 4 and Result.count(after) == 1
    assert all(job.get_status() == JobStatus.FINISHED for job in quick)
    assert "back in its queue" in running.log.read_text()


def test_a_busy_worker_says_busy_and_names_the_job_it_runs(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """Read by RQ's own Worker class, as ``rq info`` and dashboards read it."""
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    _quick_jobs(queue, 5)
    slow = queue.enqueue(jobs.sleep_for, 2)  # taken ahead, behind quick jobs, with nothing after it
    wait_for(lambda: slow.get_status() == JobStatus.STARTED)

    def seen() -> tuple[str, str | None]:
        (worker,) = rq.Worker.all(connection=connection)
        return worker.get_state(), worker.get_current_job_id()

    wait_for(lambda: seen() == ("busy", slow.id), deadline_seconds=1.5)
    samples = []
    while slow.get_status() == JobStatus.STARTED:
        samples.append(seen())
        time.sleep(0.05)  # the sampling rate, not a synchronisation
    assert samples and all(state == "busy" for state, _ in samples[:-1]), samples
    wait_for(lambda: seen() == ("idle", None))


def test_prefetch_0_holds_nothing(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    queue = Queue("q", connection=connection)
    ids = [job.id for job in _quick_jobs(queue, 400)]
    running = pool("-n", "1", "--prefetch", "0", "q")
    most_started = 0
    while connection.zcard("rq:finished:q") < len(ids):
        most_started = max(most_started, connection.zcard("rq:wip:q"))
        assert running.process.poll() is None
    assert most_started <= 1  # one job at a time: never one running and one held


def _hold_behind_a_slow_job(
    connection: redis.Redis, running: Pool, slow_seconds: float = 60
) -> tuple[Job, Job]:
    """Makes the pool's one worker hold a job behind a slow one, for as long as the test likes:
    the supervisor is frozen (SIGSTOP) while the worker waits on a gate job, before the quick
    jobs (their ids in the list ``jobs-before-slow``) that lead to the slow one, so nothing takes
    the held job back. Returns (slow, held); the supervisor stays stopped."""
    queue = Queue("q", connection=connection)
    gate = queue.enqueue(jobs.wait_for_gate, "gate")
    quick = [queue.enqueue(jobs.counted_sleep, 0) for _ in range(100)]
    connection.rpush("jobs-before-slow", *[job.id for job in quick])
    slow = queue.enqueue(jobs.counted_sleep, slow_seconds)
    held = queue.enqueue(jobs.counted_sleep, 0)
    wait_for(lambda: gate.get_status() == JobStatus.STARTED)
    running.process.send_signal(signal.SIGSTOP)
    # A worker writes a few short report lines a job to its supervisor's pipe; those of 100
    # jobs fit in the pipe while the supervisor is stopped.
    connection.rpush("gate", "open")
    wait_for(lambda: connection.get(f"runs:{slow.id}") is not None)  # the slow job runs
    assert connection.hget(held.key, "jobpool_held") is not None
    assert slow.get_status() == JobStatus.STARTED and int(connection.get(f"runs:{slow.id}") or 0) == 1
    assert not set(connection.lrange("rq:queue:q", 0, -1)) & {job.id.encode() for job in quick}
    return slow, held


def test_a_held_job_of_a_sigkilled_worker_goes_back_to_its_queue_and_runs_once(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    slow, held = _hold_behind_a_slow_job(connection, running)
    name = cast(bytes, connection.hget(held.key, "worker_name") or b"").decode()
    os.kill(int(connection.hget(f"rq:worker:{name}", "pid") or 0), signal.SIGKILL)
    running.process.send_signal(signal.SIGCONT)
    wait_for(lambda: held.get_status() == JobStatus.FINISHED, deadline_seconds=5)
    assert int(connection.get(f"runs:{held.id}") or 0) == 1 and Result.count(held) == 1
    assert slow.get_status() == JobStatus.FAILED and "terminated unexpectedly" in (slow.exc_info or "")


@pytest.mark.parametrize("point", ["before a release", "after a release"])
def test_a_worker_killed_as_it_releases_its_held_job_loses_it_nowhere_and_it_runs_once(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path, point: str
) -> None:
    """SIGKILL of a stopping worker just before, or just after, it puts back the job it held
    (its supervisor frozen, so the hold is the worker's to give up: it won it in the ledger).
    Once the supervisor runs again it writes the record of the slow job the worker kept in the
    ledger. Put back, the held job is run once by the worker that replaces the dead one; killed
    before, the worker leaves it started and held, as a take whose worker vanished, and recovery
    puts it back ("released") once its execution lapses; it then runs once."""
    kill_log = tmp_path / "kills.log"
    environ = {
        "JOBPOOL_TEST_KILL_PROBABILITY": "1",
        "JOBPOOL_TEST_KILL_LOG": str(kill_log),
        "JOBPOOL_TEST_KILL_AT": point,
    }
    running = pool("-n", "1", "--preload", "support.faulty_pool_worker", "q", environ=environ)
    running.wait_for_message("READY=1")
    slow, held = _hold_behind_a_slow_job(connection, running, slow_seconds=3)
    name = cast(bytes, connection.hget(held.key, "worker_name") or b"").decode()
    worker = psutil.Process(int(connection.hget(f"rq:worker:{name}", "pid") or 0))
    worker.send_signal(signal.SIGTERM)  # a warm shutdown: the slow job ends, the held one goes back
    wait_for(lambda: worker.status() == psutil.STATUS_ZOMBIE)  # dead; its supervisor is frozen
    assert kill_log.read_text().splitlines() == [point]
    if point == "after a release":
        assert connection.lrange("rq:queue:q", 0, -1) == [held.id.encode()]
        assert held.get_status() == JobStatus.QUEUED and connection.hget(held.key, "jobpool_held") is None
        assert f"released {held.id}, which had not started" in running.log.read_text()
    running.process.send_signal(signal.SIGCONT)
    wait_for(lambda: slow.get_status() == JobStatus.FINISHED)
    if point == "before a release":
        assert connection.llen("rq:queue:q") == 0 and held.get_status() == JobStatus.STARTED
        assert connection.hget(held.key, "jobpool_held") is not None
        lapse_executions(connection, "q")
        recovered = recover_abandoned(connection, ["q"])
        assert [(job_id, outcome) for _, job_id, _, outcome in recovered] == [(held.id, "released")]
    wait_for(lambda: held.get_status() == JobStatus.FINISHED)
    assert int(connection.get(f"runs:{held.id}") or 0) == 1 and Result.count(held) == 1
    assert int(connection.get(f"runs:{slow.id}") or 0) == 1 and Result.count(slow) == 1
    assert connection.llen("rq:queue:q") == 0 and connection.zcard("rq:wip:q") == 0


def test_a_long_job_of_a_pool_killed_outright_fails_as_abandoned_and_its_held_job_runs(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """SIGKILL of the supervisor (its workers die with it) while a worker runs a long job and
    holds the next: once the pool's heartbeats lapse, another pool's recovery puts the held job
    back in its queue (it never ran), and fails the long one as abandoned (it ran: its start is
    written by then, by the supervisor's pass over running jobs), as RQ's would."""
    first = pool("-n", "1", "q")
    first.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    _quick_jobs(queue, 50)
    slow = queue.enqueue(jobs.counted_sleep, 60)
    held = queue.enqueue(jobs.counted_sleep, 0)
    wait_for(lambda: connection.get(f"runs:{slow.id}") is not None)
    wait_for(lambda: connection.hget(slow.key, "jobpool_held") is None)  # its start is written
    _kill_outright_and_recover(connection, first, pool)
    assert held.get_status() == JobStatus.FINISHED and int(connection.get(f"runs:{held.id}") or 0) == 1
    assert slow.get_status() == JobStatus.FAILED and "AbandonedJobError" in (slow.exc_info or "")
    assert int(connection.get(f"runs:{slow.id}") or 0) == 1


def test_a_pool_killed_outright_mid_batch_loses_nothing_and_fails_nothing(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """SIGKILL of the supervisor (its workers die with it, and the records the worker kept in
    the ledger with them) while a worker is in a batch of quick jobs, its supervisor frozen
    before: a worker that works in batches writes a job's start with its record, so what the
    batch ran but had not recorded, what it held, and the job it ran are all found in Redis
    still marked held, and another pool's recovery puts them back in their queue. Each job ends
    finished, none is lost or failed, and some run twice: at least once, as the design
    promises (``--prefetch 0`` runs each job once, at the price of a round trip per job)."""
    first = pool("-n", "1", "q")
    first.wait_for_message("READY=1")
    slow, held = _hold_behind_a_slow_job(connection, first, slow_seconds=1)
    quick = [
        Job.fetch(job_id.decode(), connection)
        for job_id in cast(Members, connection.lrange("jobs-before-slow", 0, -1))
    ]
    _kill_outright_and_recover(connection, first, pool)
    assert connection.llen("rq:queue:q") == 0 and connection.zcard("rq:wip:q") == 0
    runs = [int(connection.get(f"runs:{job.id}") or 0) for job in quick]
    assert all(job.get_status() == JobStatus.FINISHED for job in quick) and all(r in (1, 2) for r in runs)
    assert held.get_status() == JobStatus.FINISHED and int(connection.get(f"runs:{held.id}") or 0) == 1
    assert slow.get_status() == JobStatus.FINISHED and int(connection.get(f"runs:{slow.id}") or 0) == 2


def _kill_outright_and_recover(connection: redis.Redis, first: Pool, pool: Callable[..., Pool]) -> None:
    """SIGKILL of the pool's supervisor (its workers die with it); once they are gone and its
    executions have lapsed, another pool drains the queue (burst) and exits cleanly."""
    first.process.kill()
    first.process.wait()
    wait_for(lambda: not any(p.is_running() for p in _workers_named(connection, "testpool")))
    lapse_executions(connection, "q")
    assert pool("-n", "1", "--burst", "q").wait() == 0


def _workers_named(connection: redis.Redis, pool_name: str) -> list[psutil.Process]:
    """The processes of the workers registered under ``pool_name`` (gone ones left out)."""
    found = []
    for key in cast("set[bytes]", connection.smembers("rq:workers")):
        if key.decode().startswith(f"rq:worker:{pool_name}."):
            pid = int(connection.hget(key, "pid") or 0)
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append(psutil.Process(pid))
    return found
