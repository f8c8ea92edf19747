"""The relay of RQ's worker commands to the pool's workers: the supervisor subscribes to each
live worker's command channel (``command_channels``) and turns ``stop-job`` / ``stop-execution``
into a stop request in the ledger and ``SIGUSR2`` (a job held ahead is recorded stopped here, and
taken back), ``kill-horse`` into ``SIGKILL`` and ``shutdown`` into ``SIGTERM``. See
docs/architecture.md, "Commands"."""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable, Mapping
from typing import Any

import redis

from .. import keys
from .._native import Core, Ending, Ledger
from ..command_channels import CommandChannels
from ..job_runner import JobStopped, stopped_outcome
from .children import Child, ask_to_stop, kill
from .held_jobs import HeldJobs
from .pool_worker import STOPPED_BEFORE_IT_BEGAN
from .tally import Tally

logger = logging.getLogger("jobpool.supervisor")

# An execution id as jobpool's workers write them (in `jobpool_held`, say): 32 hex digits.
EXECUTION_ID = re.compile(r"[0-9a-fA-F]{32}")


class CommandRelay:
    def __init__(
        self,
        connection: redis.Redis,
        core: Core,
        ledger: Ledger,
        children: Mapping[int, Child],
        read_reports: Callable[[Child], None],
        held: HeldJobs,
        tally: Tally,
    ) -> None:
        self.connection = connection
        self.core = core
        self.ledger = ledger
        self.children = children
        self.read_reports = read_reports  # reads what a worker has reported and not been read yet
        self.held = held
        self.tally = tally
        self.channels = CommandChannels(connection)

    def relay(self) -> None:
        """Applies the commands that arrived for the pool's workers. The subscription follows
        the live workers (a worker spawned is followed, one reaped is not, within a tick); a
        connection that fails, or goes silent, is replaced, with every live worker's channel."""
        try:
            self.channels.follow({child.name for child in self.children.values()})
            commands = self.channels.receive()
            self.channels.check()
        except redis.ConnectionError:
            self.channels.drop()
            raise
        for worker_name, command in commands:
            self.apply(worker_name, command)

    def apply(self, worker_name: str, command: dict[str, Any]) -> None:
        """Applies ``command`` (RQ's message, decoded) sent to the worker ``worker_name``."""
        child = next((c for c in self.children.values() if c.name == worker_name), None)
        if child is None:
            return
        kind = command.get("command")
        if kind in ("stop-job", "stop-execution"):
            self._stop_job(child, str(command.get("job_id")), command.get("execution_id"))
        elif kind == "kill-horse":
            kill(child.pid, signal.SIGKILL)
        elif kind == "shutdown":
            kill(child.pid, signal.SIGTERM)

    def _stop_job(self, child: Child, job_id: str, execution_id: str | None) -> None:
        """Stops ``job_id`` (its ``execution_id`` only, for stop-execution) if ``child`` runs it,
        is about to begin it, or holds it ahead: the job ends as ``stopped``. A job that has
        ended already, or is not this worker's, is left alone, as RQ's workers leave it."""
        if not (
            self._stop_owned(child, job_id, execution_id)
            or self._stop_held(child, job_id, execution_id)
            # It may have begun the job it held since the first look: its report of that
            # comes before its start clears the hold in Redis, so a second look finds it.
            or self._stop_owned(child, job_id, execution_id)
        ):
            logger.info("Worker %s is not running job %s: stop-job ignored", child.name, job_id)

    def _stop_owned(self, child: Child, job_id: str, execution_id: str | None) -> bool:
        """Asks ``child`` to stop the job if it has reported it taken or running."""
        self.read_reports(child)
        for owned in child.reported.owned.values():
            if (
                owned.job_id == job_id
                and owned.state != "ended"
                and execution_id in (None, owned.execution_id)
            ):
                ask_to_stop(self.ledger, child, owned.execution_id)
                return True
        return False

    def _stop_held(self, child: Child, job_id: str, execution_id: str | None) -> bool:
        """Records stopped the job ``child`` took ahead (it shows as started, held in the job
        hash): it never runs. The worker is asked to stop it too, in case it begins it
        meanwhile; then the hold is taken back, if it is still held, so that it does not."""
        fields = self.connection.hmget(keys.job(job_id), "jobpool_held", "worker_name", "origin")
        held_execution, worker, queue = (_lenient_text(value) for value in fields)
        if held_execution is None or queue is None or worker != child.name:
            return False
        if not EXECUTION_ID.fullmatch(held_execution) or execution_id not in (None, held_execution):
            return False
        ask_to_stop(self.ledger, child, held_execution)
        outcome = self._record_stopped_before_it_began(child, job_id, held_execution, queue)
        held = self.ledger.held(child.slot)
        if held is not None and held_execution in held[1] and self.ledger.reclaim(child.slot, held[0]):
            # It will not begin it now; the jobs held behind it go back to their queues.
            self.held.put_back_later(child, [other for other in held[1] if other != held_execution])
        if outcome == "stopped":
            logger.info("%s: job %s, held by %s, stopped before it began", queue, job_id, child.name)
        else:  # "stale": its worker put it back first (it is stopping), or it ended otherwise
            logger.warning(
                "%s: job %s, held by %s, could not be stopped (%s)", queue, job_id, child.name, outcome
            )
        return True

    def _record_stopped_before_it_began(
        self, child: Child, job_id: str, execution_id: str, queue: str
    ) -> str:
        exc_info, exc_string = stopped_outcome(JobStopped(STOPPED_BEFORE_IT_BEGAN), 0.0, 0.0).traceback
        stopped = Ending(job_id, execution_id, queue, None, 0.0, "stopped", None, exc_info, exc_string)
        # The worker runs another job: its state stays busy.
        outcome = self.core.fail(child.name, stopped, running=True)
        self.tally.recorded(queue, outcome)
        return outcome


def _lenient_text(value: bytes | str | None) -> str | None:
    """A text field of a hash other clients may write: undecodable bytes do not raise."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
