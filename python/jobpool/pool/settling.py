"""Settling what a dead worker owned, within a second of its death: the records it kept in the
ledger are written, what it had not started (or whose record may be unwritten) goes back to its
queue, what it ran fails (or is retried) with the reason it died, and its registration ends. The
webhooks of the endings written here are sent from a process forked for them. Kept for later
while Redis cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import redis

from .. import worker_registration
from .._native import Core, Ending
from ..result_encoding import encode_traceback
from ..work_horse import death_reason
from ..worker import DEFAULT_RESULT_TTL
from . import settled_webhooks
from .children import Child
from .helper_process import fork_helper
from .tally import Tally

logger = logging.getLogger("jobpool.supervisor")

RedisCall = Callable[[str, Callable[[], object]], bool]
"""The supervisor's way to make a Redis call that may fail: (what it does, the call) -> whether
it went through (a failure is logged, once a while, and counted)."""


class Settling:
    def __init__(
        self,
        core: Core,
        connection: redis.Redis,
        queue_names: list[str],
        serializer: Any,
        tally: Tally,
        redis_call: RedisCall,
    ) -> None:
        self.core = core
        self.connection = connection
        self.queue_names = queue_names
        self.serializer = serializer
        self.tally = tally
        self.redis_call = redis_call
        self.unsettled: list[tuple[Child, int]] = []  # dead workers whose jobs are not settled yet
        self.webhook_pids: set[int] = set()  # processes sending dead workers' jobs' webhooks

    def died(self, child: Child, status: int) -> None:
        """``child`` was reaped with ``status`` (its last reports read): ``settle_dead`` settles it."""
        self.unsettled.append((child, status))

    def reaped(self, pid: int) -> None:
        self.webhook_pids.discard(pid)

    def settle_dead(self) -> None:
        """Settles what dead workers owned; kept for later while Redis cannot be reached."""
        while self.unsettled:
            child, status = self.unsettled[0]
            if not self.redis_call("settle a dead worker's jobs", partial(self._settle, child, status)):
                return
            self.unsettled.pop(0)

    def _settle(self, child: Child, status: int) -> None:
        """Records what a dead worker owned: first the jobs it ran whose records it kept in the
        ledger (their records are written now, once: a record already written is "stale"); then
        a job it had not started, or had run but whose record may not have been written, goes
        back to its queue (a record that was written makes this a no-op); a running one fails
        (or is retried, per its Retry) with the reason it died."""
        settled: list[settled_webhooks.Settled] = []  # the endings written now, for their webhooks
        if child.ended:
            step = self.core.step(child.name, child.ended, None, DEFAULT_RESULT_TTL, mark_started=True)
            for ending, recorded in zip(child.ended, step.outcomes if step else [], strict=False):
                logger.info(
                    "%s: recorded %s, which %s ran before it died (%s)",
                    ending.queue,
                    ending.job_id,
                    child.name,
                    recorded,
                )
                if recorded in ("finished", "failed"):
                    settled.append((ending.job_id, recorded, None))
                self.tally.ended(ending.queue, recorded, ending.working_seconds)
        for owned in child.reported.owned.values():
            if owned.state != "running":
                self.core.release(child.name, owned.job_id, owned.execution_id, owned.queue)
                continue
            reason = death_reason(
                status, child.killed_for is owned, "its worker was killed by the supervisor"
            )
            exc_info, exc_string = encode_traceback(reason)
            died = Ending(
                owned.job_id, owned.execution_id, owned.queue, None, 0.0, "failed", None, exc_info, exc_string
            )
            outcome = self.core.fail(child.name, died)
            logger.warning(
                "%s: worker %s died running %s (%s): %s",
                owned.queue,
                child.name,
                owned.job_id,
                outcome,
                reason.strip().rstrip(";"),
            )
            if outcome == "failed":
                settled.append((owned.job_id, "failed", reason))
            self.tally.recorded(owned.queue, outcome)
        worker_registration.register_death(self.connection, child.name, self.queue_names)
        if settled:  # once: a settle repeated finds its records written ("stale")
            self.redis_call("send a dead worker's jobs' webhooks", partial(self._send_webhooks, settled))

    def _send_webhooks(self, settled: list[settled_webhooks.Settled]) -> None:
        """Sends, from a process forked for it, the webhooks of the jobs of ``settled`` that
        have some (see ``settled_webhooks``)."""
        due = settled_webhooks.with_webhooks(self.connection, settled)
        if due:
            title = f"jobpool webhooks [{','.join(self.queue_names)}]"
            self.webhook_pids.add(
                fork_helper(title, lambda: settled_webhooks.send(self.connection, due, self.serializer))
            )
