"""The pool's one wait on Redis for all its idle workers: a ``BLPOP`` on its queues' wake-up
lists, however many workers there are. A dead worker must not wait for it to time out: the
supervisor's ``SIGCHLD`` handler cuts it short (``cut``)."""

from __future__ import annotations

import redis

from .. import keys

# The supervisor's wait on the wake-up lists when workers are idle (it also paces its loop then).
IDLE_WAIT_SECONDS = 0.25


class WaitCut(Exception):
    """Raised by the SIGCHLD handler into the supervisor's wait on Redis, so that a dead worker is
    reaped, and its jobs settled, at once rather than when the wait times out. A wake-up marker
    that the cut wait had popped is lost; it was only a hint, and the once-a-second look finds the
    job it announced."""


class WakeupWait:
    def __init__(self, url: str, queue_names: list[str]) -> None:
        self.connection = redis.Redis.from_url(url, socket_timeout=IDLE_WAIT_SECONDS + 5)
        self.wakeups = [keys.wakeup(name) for name in queue_names]
        self._cuttable = False  # true only while blocked in the BLPOP of wait

    def wait(self, seconds: float) -> bool:
        """Waits up to ``seconds`` for a wake-up marker; whether one came. Raises ``WaitCut`` when
        ``cut`` cut it short."""
        try:
            # redis-py drops the connection when an exception cuts a command short: no reply is left
            # behind on it for the next call to read.
            self._cuttable = True
            return self.connection.blpop(self.wakeups, timeout=seconds) is not None
        finally:
            self._cuttable = False

    def cut(self) -> None:
        """From a signal handler: raises ``WaitCut`` into the wait, if one is under way (once per
        wait)."""
        if self._cuttable:
            self._cuttable = False
            raise WaitCut
