"""Crash isolation, as RQ's: ``jobpool.Worker`` runs each job in a forked work horse, so a job
that kills its process fails alone and the worker goes on; ``SimpleWorker`` runs jobs in its own
process. ``death_penalty_class`` and ``exception_handlers`` as RQ's Worker takes them. Each
scenario runs through RQ's worker and jobpool's, and what users see is compared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psutil
import pytest
import redis
import rq
import rq.timeouts
import rq.worker

import jobpool
import jobpool.timeouts
import jobs
import misbehaving_jobs
from conftest import wait_for
from jobpool import Queue, work_horse
from jobpool.job import JobStatus
from support.redis_replies import Members

WORKER_PROCESS = Path(__file__).parent / "support" / "worker_process.py"
WORKER_CLASSES: dict[str, Any] = {
    "rq": rq.Worker,
    "rq-simple": rq.worker.SimpleWorker,
    "jobpool": jobpool.Worker,
    "jobpool-simple": jobpool.SimpleWorker,
}


def _drain(kind: str, connection: redis.Redis, penalty: type[Any] | None = None, **options: Any) -> None:
    """Runs every job of queue "q" in burst mode with RQ's or jobpool's worker class ``kind``
    (subclassed to set ``death_penalty_class``, as RQ's users do, when ``penalty`` is given)."""
    worker_class = WORKER_CLASSES[kind]
    if penalty is not None:
        worker_class = type("PenaltyWorker", (worker_class,), {"death_penalty_class": penalty})
    if kind.startswith("rq"):
        worker_class([rq.Queue("q", connection=connection)], connection=connection, **options).work(
            burst=True, logging_level="WARNING"
        )
    else:
        worker_class(["q"], connection=connection, **options).work(burst=True)


def _failure(connection: redis.Redis, job_id: str) -> str:
    return rq.job.Job.fetch(job_id, connection=connection).latest_result().exc_string or ""  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "crash",
    [(misbehaving_jobs.segfault, ()), (misbehaving_jobs.exit_at_once, (3,)), (jobs.kill_own_process, ())],
    ids=["segfault", "os._exit", "SIGKILL"],
)
def test_a_job_that_kills_its_process_fails_alone_and_the_worker_goes_on(
    crash: tuple[Any, tuple[Any, ...]], connection: redis.Redis
) -> None:
    seen = {}
    for kind in ("rq", "jobpool"):
        connection.flushdb()
        queue = rq.Queue("q", connection=connection)
        crashed = queue.enqueue(crash[0], *crash[1])
        after = queue.enqueue(jobs.add, 1, 2)
        _drain(kind, connection, name=f"w-{kind}")
        seen[kind] = {
            "crashed": crashed.get_status(),
            "in_failed_registry": crashed.id in queue.failed_job_registry,
            "after": (after.get_status(), after.return_value()),
            "started_registry": queue.started_job_registry.get_job_ids(),
        }
        reason = _failure(connection, crashed.id)
        assert reason.startswith("Work-horse terminated unexpectedly; waitpid returned")
    assert seen["jobpool"] == seen["rq"]
    assert seen["rq"]["crashed"] == "failed" and seen["rq"]["after"] == ("finished", 3)


def test_worker_forks_a_horse_a_job_and_simple_worker_does_not(connection: redis.Redis) -> None:
    ran_in = {}
    for kind in ("rq", "rq-simple", "jobpool", "jobpool-simple"):
        job = Queue("q", connection=connection).enqueue(misbehaving_jobs.own_pid)
        _drain(kind, connection)
        ran_in[kind] = "this process" if job.return_value() == os.getpid() else "a work horse"
    assert ran_in == {
        "rq": "a work horse",
        "rq-simple": "this process",
        "jobpool": "a work horse",
        "jobpool-simple": "this process",
    }
    # As RQ's classes: both workers, neither a kind of the other.
    assert issubclass(rq.worker.SimpleWorker, rq.Worker) is issubclass(jobpool.SimpleWorker, jobpool.Worker)
    assert jobpool.SimpleWorker.__name__ == "SimpleWorker"


def test_a_horse_stuck_in_c_past_its_timeout_is_killed_and_the_job_fails(
    connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work_horse, "HARD_KILL_GRACE_SECONDS", 0.5)
    queue = Queue("q", connection=connection)
    stuck = queue.enqueue(jobs.stuck_in_c, job_timeout=1)
    after = queue.enqueue(jobs.add, 2, 2)
    jobpool.Worker(["q"], connection=connection).work(burst=True)
    assert stuck.get_status() == JobStatus.FAILED
    assert "JobTimeoutException: Task exceeded maximum timeout value" in _failure(connection, stuck.id)
    assert after.get_status() == JobStatus.FINISHED


class _RQNoTime(rq.timeouts.BaseDeathPenalty):
    def setup_death_penalty(self) -> None:
        if self._exception is rq.timeouts.JobTimeoutException:  # RQ waits for its horse with it too
            raise self._exception("no time at all")

    def cancel_death_penalty(self) -> None:
        pass


class _JobpoolNoTime(jobpool.timeouts.BaseDeathPenalty):
    def setup_death_penalty(self) -> None:
        raise self._exception("no time at all")

    def cancel_death_penalty(self) -> None:
        pass


@pytest.mark.parametrize("kind", ["jobpool", "jobpool-simple"])
def test_death_penalty_class_is_used_as_rq_uses_it(kind: str, connection: redis.Redis) -> None:
    seen = {}
    for each, penalty in (("rq", _RQNoTime), (kind, _JobpoolNoTime)):
        job = Queue("q", connection=connection).enqueue(jobs.add, 1, 1)
        _drain(each, connection, penalty)
        seen[each] = (job.get_status(), _failure(connection, job.id).splitlines()[-1].split(".")[-1])
    assert seen[kind] == seen["rq"] == ("failed", "JobTimeoutException: no time at all")


@pytest.mark.parametrize("kind", ["jobpool", "jobpool-simple"])
def test_timer_death_penalty_stops_a_job_as_rq_s_does(kind: str, connection: redis.Redis) -> None:
    seen = {}
    for each, penalty in (("rq", rq.timeouts.TimerDeathPenalty), (kind, jobpool.timeouts.TimerDeathPenalty)):
        job = Queue("q", connection=connection).enqueue(jobs.spin_until_timeout, job_timeout=1)
        _drain(each, connection, penalty)
        seen[each] = (job.get_status(), _failure(connection, job.id).splitlines()[-1].split(".")[-1])
    assert seen[kind] == seen["rq"]
    assert seen["rq"] == ("failed", "JobTimeoutException: Task exceeded maximum timeout value (1 seconds)")


def _handler(name: str, returns: Any) -> Any:
    """An exception handler that notes its call in Redis (it runs in the work horse) and returns
    ``returns``."""

    def handle(job: Any, exc_type: type[BaseException], value: BaseException, traceback: Any) -> Any:
        seen = f"{name} {job.id} {exc_type.__name__} {value} {traceback is not None}"
        job.connection.rpush("handled", seen)
        return returns

    return handle


@pytest.mark.parametrize("kind", ["jobpool", "jobpool-simple"])
def test_exception_handlers_run_as_rq_runs_them(kind: str, connection: redis.Redis) -> None:
    seen = {}
    for each in ("rq", kind):
        connection.delete("handled")
        queue = Queue("q", connection=connection)
        failing = queue.enqueue(jobs.fail, "broken", job_id=f"failing-{each}")
        queue.enqueue(jobs.add, 1, 1)  # handlers run for failures only
        handlers = [_handler("first", None), _handler("second", False), _handler("third", True)]
        worker_class = WORKER_CLASSES[each]
        worker = worker_class(["q"], connection=connection, exception_handlers=handlers[:2])
        worker.push_exc_handler(handlers[2])
        worker.push_exc_handler(_handler("popped", True))
        worker.pop_exc_handler()
        worker.work(burst=True)
        handled = cast(Members, connection.lrange("handled", 0, -1))
        seen[each] = [line.decode().replace(failing.id, "<id>") for line in handled]
        assert failing.get_status() == JobStatus.FAILED
    assert seen[kind] == seen["rq"]
    assert seen["rq"] == ["first <id> ValueError broken True", "second <id> ValueError broken True"]


def test_a_raising_exception_handler_leaves_the_job_failed_with_its_own_reason(
    connection: redis.Redis,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("handler broke")

    job = Queue("q", connection=connection).enqueue(jobs.fail, "the job's own")
    assert jobpool.Worker(["q"], connection=connection, exception_handlers=broken).work(burst=True)
    assert job.get_status() == JobStatus.FAILED
    assert "ValueError: the job's own" in _failure(connection, job.id)


@pytest.fixture
def lone_worker(redis_url: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER_PROCESS), redis_url, "q", "--heartbeat-ttl", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_worker_leaves_no_horse_running_its_job(
    connection: redis.Redis, lone_worker: subprocess.Popen[str]
) -> None:
    """The job is recovered as abandoned (and may be retried elsewhere): a horse left running it
    would run it twice."""
    job = Queue("q", connection=connection).enqueue(misbehaving_jobs.sleep_noting_pid, "horse", 60)
    wait_for(lambda: connection.llen("horse") == 1)
    horse = int(connection.lindex("horse", 0) or 0)
    assert horse != lone_worker.pid and psutil.Process(horse).ppid() == lone_worker.pid
    os.kill(lone_worker.pid, signal.SIGKILL)
    lone_worker.wait()
    wait_for(lambda: _gone(horse))
    assert job.get_status() == JobStatus.STARTED  # until recovery finds its execution lapsed
