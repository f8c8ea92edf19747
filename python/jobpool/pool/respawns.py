"""When the slot of a worker that exited gets its next worker: at once, unless it crash-loops
(a worker that dies within STABLE_SECONDS of its start waits first, twice as long each time),
or never (the pool is stopping, or a burst worker found its queues empty)."""

from __future__ import annotations

import logging
import os
import signal
import time

from .children import Child
from .pool_metrics import PoolMetrics, restart_reason
from .pool_worker import RECYCLE_EXIT

logger = logging.getLogger("jobpool.supervisor")

# Crash-loop back-off: a worker that dies within STABLE_SECONDS of its start waits before it is
# replaced, twice as long each time, up to MAX_RESPAWN_DELAY.
STABLE_SECONDS = 5.0
FIRST_RESPAWN_DELAY = 0.5
MAX_RESPAWN_DELAY = 30.0


class Respawns:
    def __init__(self, *, burst: bool, metrics: PoolMetrics | None) -> None:
        self.burst = burst
        self.metrics = metrics
        self.at: dict[int, float] = {}  # slot -> when to start its next worker (monotonic)
        self.delay: dict[int, float] = {}  # slot -> the back-off its last worker got
        self.done_slots: set[int] = set()  # burst: slots whose worker found the queues empty

    def plan(self, child: Child, status: int, *, stopping: bool) -> None:
        """``child`` exited with ``status`` (``waitpid``'s): when its slot gets the next worker."""
        recycled = os.WIFEXITED(status) and os.WEXITSTATUS(status) == RECYCLE_EXIT
        clean = recycled or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        if stopping or (self.burst and clean and not recycled):
            if self.burst and clean:
                self.done_slots.add(child.slot)
            return
        if self.metrics is not None:
            self.metrics.restarted(restart_reason(status, child.killed_for is not None))
        delay = 0.0
        if (
            not clean
            and not _killed_from_outside(status)
            and time.monotonic() - child.started < STABLE_SECONDS
        ):
            delay = self.delay.get(child.slot, FIRST_RESPAWN_DELAY / 2) * 2
            delay = min(delay, MAX_RESPAWN_DELAY)
            logger.warning(
                "Worker %s died soon after it started; the next starts in %.1f s", child.name, delay
            )
        self.delay[child.slot] = delay
        self.at[child.slot] = time.monotonic() + delay

    def due(self) -> list[int]:
        """The slots whose next worker is due now (no longer planned)."""
        now = time.monotonic()
        slots = [slot for slot, when in self.at.items() if now >= when]
        for slot in slots:
            del self.at[slot]
        return slots


def _killed_from_outside(status: int) -> bool:
    """Whether a worker was killed by a signal someone sent it (an operator, the OOM killer, a
    test), rather than crashing on its own: such a death is no reason to back off."""
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
