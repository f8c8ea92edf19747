"""Job functions that do what jobs should not (importable by workers as ``misbehaving_jobs.<name>``):
raise what is not an Exception, take over the worker's signals, fork."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


class NotAnException(BaseException):
    """A BaseException of the job's own."""


def exit_with(code: int) -> None:
    sys.exit(code)


def interrupt() -> None:
    raise KeyboardInterrupt("raised by the job")


def raise_base_exception() -> None:
    raise NotAnException("raised by the job")


def _swallow(signum: int, frame: FrameType | None) -> None:
    return None


def take_over_signals(fail: bool = False) -> str:
    """Ignores SIGTERM and swallows SIGINT, SIGUSR1 and SIGUSR2, as a careless job (or a library
    it calls) might, then returns or raises."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, _swallow)
    signal.signal(signal.SIGUSR1, _swallow)
    signal.signal(signal.SIGUSR2, _swallow)
    if fail:
        raise ValueError("failed after taking over the signals")
    return "signals taken"


def fork_and_return() -> int | str:
    """Forks; both processes return. The parent returns the child's pid."""
    child = os.fork()
    return child if child else "returned in the child"


def corrupt_worker_counters() -> None:
    """Writes into its worker's hash counters that HINCRBY and HINCRBYFLOAT refuse."""
    from jobpool import get_current_job, keys

    job = get_current_job()
    assert job is not None and job.worker_name
    job.connection.hset(
        keys.worker(job.worker_name),
        mapping={"successful_job_count": "many", "failed_job_count": "1.5", "total_working_time": "long"},
    )


def deaf_sleep(seconds: float) -> str:
    """Takes over the worker's stop signals (as take_over_signals), then sleeps: no stop signal
    reaches the job while it runs."""
    import time

    take_over_signals()
    time.sleep(seconds)
    return "slept"


def segfault() -> None:
    """Reads address 0: the process dies of SIGSEGV."""
    import ctypes

    ctypes.string_at(0)


def exit_at_once(code: int) -> None:
    """Ends its process without unwinding (no exception, no clean-up)."""
    os._exit(code)


def own_pid() -> int:
    return os.getpid()


def sleep_noting_pid(key: str, seconds: float) -> None:
    """Pushes its process id to the Redis list ``key``, then sleeps."""
    import time

    from jobpool import get_current_job

    job = get_current_job()
    assert job is not None
    job.connection.rpush(key, os.getpid())
    time.sleep(seconds)
