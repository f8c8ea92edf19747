"""The soft timeout of a job: JobTimeoutException raised inside it when it runs too long.

SIGALRM (with a sub-second timer) interrupts Python code; a job stuck in C code does not return
to Python and is hard-killed by the supervisor (or, for a forking ``Worker``, by its worker).

``death_penalty`` is what jobpool's workers use. RQ's death penalty classes are here too, for a
worker's ``death_penalty_class`` and for code that uses them directly.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module under signal: no stub
import contextlib
import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Literal

from .exceptions import BaseTimeoutException, HorseMonitorTimeoutException, JobTimeoutException

__all__ = [
    "BaseDeathPenalty",
    "BaseTimeoutException",
    "HorseMonitorTimeoutException",
    "JobTimeoutException",
    "TimerDeathPenalty",
    "UnixSignalDeathPenalty",
    "death_penalty",
    "get_default_death_penalty_class",
]


class _Deadline:
    """What the SIGALRM handler reports: set before the timer is armed."""

    seconds: float = 0.0
    what = "Task"


def _expire(signum: int, frame: FrameType | None) -> None:
    raise JobTimeoutException(_exceeded(_Deadline.seconds, _Deadline.what))


def _exceeded(seconds: float, what: str = "Task") -> str:
    return f"{what} exceeded maximum timeout value ({seconds:g} seconds)"


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


class BaseDeathPenalty:
    """RQ's base of job timeouts: ``with cls(timeout, exception, job_id=...):`` raises
    ``exception`` in the block once ``timeout`` seconds have passed (none if it is 0 or less).
    Subclasses define ``setup_death_penalty`` and ``cancel_death_penalty``."""

    def __init__(
        self, timeout: float, exception: type[BaseException] = BaseTimeoutException, **kwargs: Any
    ) -> None:
        self._timeout = timeout
        self._exception = exception

    def __enter__(self) -> None:
        self.setup_death_penalty()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        with contextlib.suppress(BaseTimeoutException):  # it fired as the block ended: done all the same
            self.cancel_death_penalty()
        return False

    def setup_death_penalty(self) -> None:
        raise NotImplementedError

    def cancel_death_penalty(self) -> None:
        raise NotImplementedError


class UnixSignalDeathPenalty(BaseDeathPenalty):
    """SIGALRM, as RQ's default (a sub-second timer here: RQ's ``alarm`` counts whole seconds)."""

    def handle_death_penalty(self, signum: int, frame: FrameType | None) -> None:
        raise self._exception(_exceeded(self._timeout))

    def setup_death_penalty(self) -> None:
        if self._timeout <= 0:
            return
        signal.signal(signal.SIGALRM, self.handle_death_penalty)
        signal.setitimer(signal.ITIMER_REAL, self._timeout)

    def cancel_death_penalty(self) -> None:
        if self._timeout <= 0:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


class TimerDeathPenalty(BaseDeathPenalty):
    """A timer thread that raises the exception asynchronously in the thread that entered the
    block (RQ's choice where there is no SIGALRM, and for jobs run outside the main thread). Like
    RQ's, it reaches Python code only, and the exception is raised without arguments: it is a
    subclass of ``exception`` whose message is the timeout's."""

    def __init__(
        self, timeout: float, exception: type[BaseException] = JobTimeoutException, **kwargs: Any
    ) -> None:
        message = _exceeded(timeout)

        def with_message(error: BaseException, *args: Any) -> None:
            exception.__init__(error, message)

        named = {
            "__init__": with_message,
            "__module__": exception.__module__,
            "__qualname__": exception.__qualname__,
        }
        super().__init__(timeout, type(exception.__name__, (exception,), named), **kwargs)
        self._target_thread_id = threading.get_ident()
        self._timer: threading.Timer | None = None

    def handle_death_penalty(self) -> None:
        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
        changed = set_async_exc(ctypes.c_ulong(self._target_thread_id), ctypes.py_object(self._exception))
        if changed > 1:  # cannot happen for one thread id: undo, as CPython's documentation says
            set_async_exc(ctypes.c_ulong(self._target_thread_id), None)

    def setup_death_penalty(self) -> None:
        if self._timeout <= 0:
            return
        self._timer = threading.Timer(self._timeout, self.handle_death_penalty)
        self._timer.daemon = True
        self._timer.start()

    def cancel_death_penalty(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def get_default_death_penalty_class() -> type[BaseDeathPenalty]:
    """RQ's: SIGALRM where the platform has it, else a timer thread."""
    return UnixSignalDeathPenalty if hasattr(signal, "SIGALRM") else TimerDeathPenalty
