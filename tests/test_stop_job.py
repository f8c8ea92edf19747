"""stop-job in a pool: a job held ahead is stopped before it begins, and a pool worker stops the
execution its supervisor names, whether it runs it or has yet to begin it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from setproctitle import getproctitle, setproctitle

import jobs
from jobpool import Queue, keys
from jobpool._native import Ledger
from jobpool.job import Job, JobStatus
from jobpool.job_runner import Outcome
from jobpool.pool_worker import PoolWorker
from jobpool.redis_target import connect_core
from jobpool.supervisor import Child, Supervisor

EXECUTION = "0123456789abcdef0123456789abcdef"


# ---- what a stop-job does in the pool -------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing in for a pool worker, to receive the supervisor's signals."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_a_job_held_ahead_is_stopped_before_it_begins(
    redis_url: str, connection: redis.Redis, sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """The supervisor's relay, without the processes: the worker holds ``held`` (taken ahead, so
    it shows as started) while it runs another job."""
    queue = Queue("q", connection=connection)
    held = queue.enqueue(jobs.counted_sleep, 0)
    supervisor = Supervisor(redis_url, ["q"], 1, name="relay")
    report_read, report_write = os.pipe()
    os.set_blocking(report_read, False)
    child = Child(0, sleeper.pid, "relay.0.1", report_read, report_write, started=time.monotonic())
    supervisor.children[sleeper.pid] = child
    connection.hset(keys.worker(child.name), mapping={"state": "busy", "failed_job_count": 0})
    supervisor.ledger.hold(0, EXECUTION)
    connect_core(redis_url).take(["q"], child.name, EXECUTION, 30, None, False, True)
    assert held.get_status() == JobStatus.STARTED and connection.hget(held.key, "jobpool_held")

    supervisor._apply_command(child.name, {"command": "stop-job", "job_id": held.id})

    assert held.get_status() == JobStatus.STOPPED and held.id in queue.failed_job_registry
    assert "before the job began" in (Job.fetch(held.id, connection).exc_info or "")
    assert connection.hget(held.key, "jobpool_held") is None
    assert not queue.started_job_registry.get_job_ids() and queue.count == 0
    assert supervisor.ledger.start_held(0) is False  # taken back: the worker will not begin it
    assert supervisor.ledger.stop_requested(0, EXECUTION)  # and, were it beginning it, it stops it
    assert sleeper.wait(timeout=5) == -signal.SIGUSR2
    worker = connection.hgetall(keys.worker(child.name))
    assert worker[b"state"] == b"busy" and worker[b"failed_job_count"] == b"1"
    for fd in (report_read, report_write):
        os.close(fd)


@pytest.fixture
def pool_worker(connection: redis.Redis) -> Iterator[PoolWorker]:
    """A pool worker in this process, with the SIGUSR2 handler a pool worker installs."""
    report_read, report_write = os.pipe()
    nudge_read, nudge_write = os.pipe()
    title = getproctitle()
    worker = PoolWorker(
        ["q"],
        name="pw",
        connection=connection,
        report_fd=report_write,
        nudge_fd=nudge_read,
        title="test",
        ledger=Ledger(1),
        slot=0,
    )
    previous = signal.signal(signal.SIGUSR2, worker.stop_requested_job)
    yield worker
    signal.signal(signal.SIGUSR2, previous)
    setproctitle(title)
    for fd in (report_read, report_write, nudge_read, nudge_write):
        os.close(fd)


def _perform_asking_meanwhile(worker: PoolWorker, execution_id: str | None = None) -> Outcome:
    """Takes the next job and runs it as a pool worker does; 0.3 s in, its supervisor asks it to
    stop ``execution_id`` (default: the job's own execution)."""
    taken = worker._take(None)
    assert taken is not None

    def ask() -> None:
        worker.ledger.request_stop(0, execution_id or taken[2])
        os.kill(os.getpid(), signal.SIGUSR2)

    timer = threading.Timer(0.3, ask)
    worker._starting(taken)
    timer.start()
    try:
        return worker._perform(taken)
    finally:
        timer.cancel()


def test_a_pool_worker_stops_the_execution_its_supervisor_names(
    connection: redis.Redis, pool_worker: PoolWorker
) -> None:
    queue = Queue("q", connection=connection)
    queue.enqueue(jobs.sleep_for, 30)
    started = time.monotonic()
    outcome = _perform_asking_meanwhile(pool_worker)
    assert outcome.stopped and "stop-job command" in outcome.reason and time.monotonic() - started < 10
    queue.enqueue(jobs.sleep_for, 1)
    assert _perform_asking_meanwhile(pool_worker, EXECUTION).succeeded  # another execution's stop


def test_a_pool_worker_asked_to_stop_a_job_it_has_not_begun_never_runs_it(
    connection: redis.Redis, pool_worker: PoolWorker
) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.counted_sleep, 0)
    taken = pool_worker._take(None)
    assert taken is not None
    pool_worker.ledger.request_stop(0, taken[2])  # between its take and its start
    outcome = pool_worker._perform(taken)
    assert outcome.stopped and "before the job began" in outcome.reason
    assert connection.get(f"runs:{job.id}") is None
