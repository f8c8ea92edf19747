"""The soft timeout of a job: JobTimeoutException raised inside it when it runs too long.

SIGALRM (with a sub-second timer) interrupts Python code; a job stuck in C code does not return
to Python and is hard-killed by the supervisor instead.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module under signal: no stub
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .exceptions import JobTimeoutException

__all__ = ["JobTimeoutException", "death_penalty"]


class _Deadline:
    """What the SIGALRM handler reports: set before the timer is armed."""

    seconds: float = 0.0
    what = "Task"


def _expire(signum: int, frame: FrameType | None) -> None:
    seconds = f"{_Deadline.seconds:g}"
    raise JobTimeoutException(f"{_Deadline.what} exceeded maximum timeout value ({seconds} seconds)")


@contextmanager
def death_penalty(seconds: float | None, what: str = "Task") -> Iterator[None]:
    """Raises JobTimeoutException in the block after ``seconds``; None or -1 means no limit.

    The handler stays installed between jobs (re-installing it costs two system calls a job);
    it only fires while a timer is armed."""
    if seconds is None or seconds < 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    _Deadline.seconds, _Deadline.what = seconds, what
    if _signal.getsignal(signal.SIGALRM) is not _expire:  # as job_runner reads handlers
        signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
