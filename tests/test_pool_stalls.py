"""A pool as operators meet it on a bad day: its supervisor stalled (SIGSTOP) while another pool
recovers its jobs, a worker stopped while idle, a job deaf to stop signals, workers killed over
and over. Real ``jobpool start`` processes and real signals."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import cast

import redis
import rq

import jobs
import misbehaving_jobs
from conftest import wait_for
from jobpool import Queue, Retry
from jobpool.job import JobStatus
from jobpool.recovery import recover_abandoned
from support.pool_process import Pool, lapse_executions
from support.redis_replies import Members


def test_after_a_stall_a_pool_beats_before_it_recovers_and_stops_a_run_recovered_elsewhere(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    mine = queue.enqueue(jobs.log_run, 30)
    wait_for(lambda: connection.llen(f"log:{mine.id}") == 1)
    # A stall: the supervisor stops; its job's heartbeat lapses. When it runs again, it must
    # heartbeat before its own maintenance could take the job for abandoned.
    running.process.send_signal(signal.SIGSTOP)
    lapse_executions(connection, "q")
    running.process.send_signal(signal.SIGCONT)
    time.sleep(1.5)  # the pool's ticks after the stall (its maintenance is due at once), not a sync
    assert mine.get_status() == JobStatus.STARTED and connection.llen(f"log:{mine.id}") == 1

    # Another pool recovers a stalled pool's retried job, which runs again elsewhere: the stalled
    # pool, at its next heartbeat, stops its own run, so the two overlap for a few seconds at most.
    retried = queue.enqueue(jobs.log_run, 8, retry=Retry(1))
    wait_for(lambda: connection.llen(f"log:{retried.id}") == 1)
    running.process.send_signal(signal.SIGSTOP)
    lapse_executions(connection, "q")
    recovered = recover_abandoned(connection, ["q"])  # as another pool's maintenance would
    assert {job_id for _, job_id, _, _ in recovered} >= {retried.id}
    running.process.send_signal(signal.SIGCONT)  # its idle worker takes the retry
    wait_for(lambda: connection.llen(f"log:{retried.id}") >= 2, deadline_seconds=5)
    resumed_at = time.monotonic()
    wait_for(lambda: retried.get_status() == JobStatus.FINISHED, deadline_seconds=20)
    log = [
        entry.decode().split()[0] for entry in cast(Members, connection.lrange(f"log:{retried.id}", 0, -1))
    ]
    assert log == ["start", "start", "end"], log  # two runs began, one ended: the first was stopped
    assert time.monotonic() - resumed_at >= 6  # the second run ran its 8 s
    assert "recovered elsewhere" in running.log.read_text()


def test_a_stopped_idle_worker_is_passed_by_and_shown_suspended(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    stopped, other = running.workers()
    stopped.suspend()
    try:
        queue = Queue("q", connection=connection)
        for _ in range(3):  # one at a time: each finds both workers idle, one of them stopped
            job = queue.enqueue(jobs.add, 1, 1)
            wait_for(lambda job=job: job.get_status() == JobStatus.FINISHED, deadline_seconds=5)  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
        states = {worker.pid: worker.get_state() for worker in rq.Worker.all(connection=connection)}
        assert states[stopped.pid] == "suspended" and states[other.pid] == "idle", states
    finally:
        stopped.resume()
    job = queue.enqueue(jobs.add, 2, 2)
    wait_for(lambda: job.get_status() == JobStatus.FINISHED)
    wait_for(lambda: {w.get_state() for w in rq.Worker.all(connection=connection)} == {"idle"})


def test_a_third_stop_signal_ends_a_pool_whose_job_is_deaf_to_signals(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    deaf = Queue("q", connection=connection).enqueue(misbehaving_jobs.deaf_sleep, 60)
    wait_for(lambda: deaf.get_status() == JobStatus.STARTED)
    time.sleep(0.3)  # for the job to take over the signals: the scenario, not a synchronisation
    # One at a time (signals of a kind sent together merge into one), as an operator sends them.
    for said in ("Warm shutdown", "cold shutdown"):
        running.process.send_signal(signal.SIGTERM)
        wait_for(lambda said=said: said in running.log.read_text())  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
    time.sleep(1)  # the job swallows both: the pool is still up, as expected
    assert running.process.poll() is None and deaf.get_status() == JobStatus.STARTED
    running.process.send_signal(signal.SIGTERM)
    assert running.wait(timeout=10) == 0
    assert deaf.get_status() == JobStatus.FAILED and "terminated unexpectedly" in (deaf.exc_info or "")


def test_workers_killed_from_outside_are_replaced_at_once(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """A SIGKILL is someone else's doing, not a crash loop: no back-off, however often."""
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    replaced = []
    for _ in range(4):
        (worker,) = running.workers()
        worker.kill()
        killed_at = time.monotonic()
        wait_for(lambda worker=worker: [w.pid for w in running.workers()] not in ([], [worker.pid]))  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
        replaced.append(time.monotonic() - killed_at)
    assert max(replaced) < 0.45, replaced  # the first back-off step would be 0.5 s, then 1, 2, 4
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 1)
    wait_for(lambda: job.get_status() == JobStatus.FINISHED)
    assert running.process.poll() is None
