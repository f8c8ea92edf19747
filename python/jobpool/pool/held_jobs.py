"""The jobs the pool's workers took ahead and have not started, as the supervisor looks after
them: a hold kept too long (the job before it is slow, or the worker is stopped), or a dead
worker's, is taken back in the ledger and its jobs go back to the front of their queues, where an
idle worker takes them rather than they wait. See docs/architecture.md, "Holding jobs ahead"."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping

from .._native import Core, Ledger
from .children import Child, kill, nudge

logger = logging.getLogger("jobpool.supervisor")

# A job a worker took ahead goes back to its queue once it has been held this long (the job
# before it is slow, or the worker is stopped): an idle worker takes it rather than it waiting.
HOLD_BOUND_SECONDS = 0.1


class HeldJobs:
    def __init__(
        self,
        core: Core,
        ledger: Ledger,
        queue_names: list[str],
        children: Mapping[int, Child],
        idle_children: Callable[[], list[Child]],
    ) -> None:
        self.core = core
        self.ledger = ledger
        self.queue_names = queue_names
        self.children = children
        self.idle_children = idle_children
        self.reclaims: list[tuple[str, str]] = []  # (worker, execution id) to put back in Redis

    def take_back(self, child: Child) -> bool:
        """Takes from ``child`` the jobs it holds and has not started, if the ledger gives them
        to us (the worker did not start the next first); ``put_back`` puts them back in Redis."""
        held = self.ledger.held(child.slot)
        if held is None or not self.ledger.reclaim(child.slot, held[0]):
            return False
        self.put_back_later(child, held[1])
        return True

    def put_back_later(self, child: Child, execution_ids: list[str]) -> None:
        """Queues the jobs taken back from ``child`` for ``put_back``: each goes back to the front
        of its queue, the last first, so that they keep their order."""
        self.reclaims.extend((child.name, execution_id) for execution_id in reversed(execution_ids))

    def due_in(self) -> float | None:
        """Seconds until a held job is due to be taken back (0: now), None when none is held."""
        due: float | None = None
        now = time.time()
        for child in self.children.values():
            held = self.ledger.held(child.slot)
            if held is not None:
                left = max(held[2] + HOLD_BOUND_SECONDS - now, 0.0)
                due = left if due is None else min(due, left)
        return due

    def reclaim_slow(self) -> None:
        """Takes back every job held longer than the bound."""
        now = time.time()
        for child in self.children.values():
            held = self.ledger.held(child.slot)
            if held is not None and now - held[2] >= HOLD_BOUND_SECONDS and self.take_back(child):
                logger.debug("Worker %s: taking back the jobs it held for too long", child.name)
                kill(child.pid, signal.SIGUSR2)  # and write the records its batch held back

    def put_back(self) -> None:
        """Puts the jobs taken back from workers at the front of their queues (kept for a later
        call while Redis cannot be reached)."""
        while self.reclaims:
            worker, execution_id = self.reclaims[0]
            outcome, job_id, queue = self.core.reclaim(worker, self.queue_names, execution_id)
            if outcome == "released":
                logger.info("%s: %s, held too long by %s, is back in its queue", queue, job_id, worker)
                for child in self.idle_children()[:1]:
                    nudge(child)
            self.reclaims.pop(0)
