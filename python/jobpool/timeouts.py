"""The soft timeout of a job: JobTimeoutException raised inside it when it runs too long.

SIGALRM (with a sub-second timer) interrupts Python code; a job stuck in C code does not return
to Python and is hard-killed by the supervisor instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .exceptions import JobTimeoutException

__all__ = ["JobTimeoutException", "death_penalty"]


@contextmanager
def death_penalty(seconds: float | None, what: str = "Task") -> Iterator[None]:
    """Raises JobTimeoutException in the block after ``seconds``; None or -1 means no limit."""
    if seconds is None or seconds < 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise JobTimeoutException(f"{what} exceeded maximum timeout value ({seconds:g} seconds)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
