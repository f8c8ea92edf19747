"""What a job may do to the worker that runs it, and may not: raise SystemExit and friends (it
fails, with its real reason, and the worker carries on, as RQ's does), take over the worker's
signals (they are put back after the job), fork (the copy ends when the job returns in it)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import psutil
import pytest
import redis

import jobs
import misbehaving_jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.command import send_stop_job_command
from jobpool.job import Job, JobStatus
from jobpool.job_runner import WORKER_SIGNALS, Outcome, run_job
from jobpool.results import Result
from jobpool.serializers import DefaultSerializer
from support.pool_process import Pool


def run_in_this_process(connection: redis.Redis, func: Any, *args: Any) -> Outcome:
    """Runs a job here, as a worker does; whatever escapes ``run_job`` fails the test (pytest
    would stop the whole session on a KeyboardInterrupt)."""
    job = Queue("q", connection=connection).enqueue(func, *args)
    fields = connection.hgetall(job.key)
    try:
        return run_job(job.id, fields, connection, DefaultSerializer)  # type: ignore[arg-type]
    except BaseException as escaped:
        pytest.fail(f"{escaped!r} escaped run_job")


@pytest.mark.parametrize(
    ("func", "args", "reason"),
    [
        (misbehaving_jobs.exit_with, (3,), "SystemExit: 3"),
        (misbehaving_jobs.interrupt, (), "KeyboardInterrupt: raised by the job"),
        (misbehaving_jobs.raise_base_exception, (), "NotAnException: raised by the job"),
    ],
)
def test_a_base_exception_is_the_jobs_failure(
    connection: redis.Redis, func: Any, args: tuple[Any, ...], reason: str
) -> None:
    outcome = run_in_this_process(connection, func, *args)
    assert not outcome.succeeded and not outcome.stopped
    assert reason in outcome.reason and "Traceback" in outcome.reason


def test_a_pool_worker_survives_base_exceptions_and_records_them(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    (worker,) = running.workers()
    queue = Queue("q", connection=connection)
    raising = [
        (queue.enqueue(misbehaving_jobs.exit_with, 3), "SystemExit: 3"),
        (queue.enqueue(misbehaving_jobs.interrupt), "KeyboardInterrupt"),
        (queue.enqueue(misbehaving_jobs.raise_base_exception), "NotAnException"),
    ]
    after = queue.enqueue(jobs.add, 2, 2)
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
    for job, reason in raising:
        assert job.get_status() == JobStatus.FAILED and job.id in queue.failed_job_registry
        exc_info = job.exc_info or ""
        assert reason in exc_info and "terminated" not in exc_info
    assert [p.pid for p in running.workers()] == [worker.pid]  # the same worker ran them all


@pytest.mark.parametrize("fail", [False, True])
def test_the_workers_signal_handlers_are_put_back_after_a_job(connection: redis.Redis, fail: bool) -> None:
    def worker_handler(signum: int, frame: object) -> None:
        return None

    before = {signum: signal.signal(signum, worker_handler) for signum in WORKER_SIGNALS}
    try:
        outcome = run_in_this_process(connection, misbehaving_jobs.take_over_signals, fail)
        assert outcome.succeeded is not fail
        assert {signum: signal.getsignal(signum) for signum in WORKER_SIGNALS} == dict.fromkeys(
            WORKER_SIGNALS, worker_handler
        )
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_pool_stays_stoppable_after_a_job_took_over_its_signals(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    careless = queue.enqueue(misbehaving_jobs.take_over_signals)
    sleeper = queue.enqueue(jobs.sleep_for, 60)
    wait_for(lambda: sleeper.get_status() == JobStatus.STARTED)
    assert careless.get_status() == JobStatus.FINISHED
    send_stop_job_command(connection, sleeper.id)  # SIGUSR2 to the worker, from its supervisor
    wait_for(lambda: sleeper.get_status() == JobStatus.STOPPED)
    running.process.send_signal(signal.SIGTERM)  # the worker's SIGTERM stops it again
    assert running.wait(timeout=20) == 0


def test_a_process_a_job_forked_ends_when_the_job_returns_in_it(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    forking = queue.enqueue(misbehaving_jobs.fork_and_return)
    after = queue.enqueue(jobs.add, 1, 1)
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
    child = forking.return_value()
    assert isinstance(child, int)  # the worker's own return: the child's pid

    def ended() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE  # nobody reaps it
        except psutil.NoSuchProcess:
            return True

    wait_for(ended, deadline_seconds=10)
    assert Result.count(Job.fetch(forking.id, connection)) == 1  # recorded once, by the worker
    running.process.send_signal(signal.SIGTERM)
    assert running.wait(timeout=20) == 0
