"""A worker in the supervisor's process table, and what the supervisor sends one: a nudge down
its pipe, a signal, a request to stop an execution. The supervisor's Redis duties (heartbeat,
command relay, settling, jobs held ahead) look at the table through these."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field

from .._native import Ending, Ledger
from .reports import Owned, Reported


@dataclass
class Child:
    slot: int
    pid: int
    name: str
    report_fd: int
    nudge_fd: int  # a byte here tells an idle worker to look for a job
    started: float
    reported: Reported = field(default_factory=Reported)  # whether it is ready, what it owns
    killed_for: Owned | None = None  # the job it was hard-killed for
    ended: list[Ending] = field(default_factory=list)  # once dead: the records it kept, unwritten

    @property
    def idle(self) -> bool:
        return self.reported.ready and not self.reported.owned


def nudge(child: Child) -> None:
    with contextlib.suppress(BlockingIOError, BrokenPipeError):  # full, or the worker just exited
        os.write(child.nudge_fd, b"1")


def kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def ask_to_stop(ledger: Ledger, child: Child, execution_id: str) -> None:
    """The worker stops ``execution_id`` now if it runs it, else as it begins it (see
    ``PoolWorker.stop_requested_job``); the ledger tells it which execution."""
    ledger.request_stop(child.slot, execution_id)
    kill(child.pid, signal.SIGUSR2)
