"""The pool's heartbeat: one call every few seconds for every execution its workers own and
every worker (their ttls, and their registrations for ``rq info``), and, between beats, RQ's
per-execution records of the executions that started since (a pool's workers take without them).
A run that recovery gave back to its queue while the pool was stalled is stopped here."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import redis

from .. import keys, worker_registration
from .._native import Core, Ledger
from .children import Child, ask_to_stop
from .reports import Owned

logger = logging.getLogger("jobpool.supervisor")

HEARTBEAT_SECONDS = 5.0
# How long an execution lives without a heartbeat: a pool that vanishes whole has its jobs
# recovered by any other pool this long after its last beat.
HEARTBEAT_TTL = 30
# How often RQ's per-execution records (execution hash, executions index, the worker's
# executions set) are written for the executions that started since: a pool's workers take
# without them (most jobs end long before), so a job that runs longer than this has them.
RECORDS_SECONDS = 0.5
WORKER_TTL = 60


class Heartbeat:
    def __init__(
        self,
        core: Core,
        connection: redis.Redis,
        queue_names: list[str],
        ledger: Ledger,
        children: Mapping[int, Child],
    ) -> None:
        self.core = core
        self.connection = connection
        self.queue_names = queue_names
        self.ledger = ledger
        self.children = children
        self.last_beat = time.monotonic()  # the last heartbeat Redis took

    def lapsing(self) -> bool:
        """Whether the last beat Redis took is older than the interval (the pool stalled)."""
        return time.monotonic() - self.last_beat > HEARTBEAT_SECONDS

    def beat(self) -> None:
        owned_by = [
            (child, owned) for child in self.children.values() for owned in child.reported.owned.values()
        ]
        executions = _beats(owned_by)
        workers = [(child.name, WORKER_TTL) for child in self.children.values()]
        registrations = {
            child.name: worker_registration.for_heartbeat(
                self.queue_names, child.pid, bool(child.reported.owned)
            )
            for child in self.children.values()
            if child.reported.ready
        }
        gone = set(self.core.heartbeat(executions, workers, registrations))
        for _, owned in owned_by:
            owned.recorded = True
        self.last_beat = time.monotonic()
        self.stop_runs_taken_elsewhere(gone)

    def record_new_executions(self) -> None:
        """Writes RQ's records of the executions that started since the last pass (the workers
        took them without): what RQ's readers see of a job that runs (``get_executions()``,
        ``send_stop_execution_command``, a worker's current executions)."""
        new = [
            (child, owned)
            for child in self.children.values()
            for owned in child.reported.running()
            if not owned.recorded
        ]
        if new:
            self.core.heartbeat(_beats(new), [])
            for _, owned in new:
                owned.recorded = True

    def stop_runs_taken_elsewhere(self, gone: set[str]) -> None:
        """Stops each running job that recovery gave back to its queue (or to the scheduler)
        while this pool was stalled, and that may now run elsewhere: two runs must not overlap,
        and this one's record would be stale. ``gone``: the ``<job id>:<execution id>`` the beat
        found missing. An execution is also gone when its worker has just recorded it (before
        its next report says so), when recovery failed the job (no second run), or when the job
        was canceled or deleted (it runs on, as in RQ): those are left be."""
        for child in self.children.values():
            for owned in child.reported.running():
                if f"{owned.job_id}:{owned.execution_id}" not in gone:
                    continue
                status, worker = self.connection.hmget(keys.job(owned.job_id), ["status", "worker_name"])
                retried = status in (b"queued", b"scheduled") or (
                    status == b"started" and worker != child.name.encode()
                )
                if not retried:
                    continue
                logger.warning(
                    "%s: job %s was recovered elsewhere while this pool was stalled; stopping its run on %s",
                    owned.queue,
                    owned.job_id,
                    child.name,
                )
                ask_to_stop(self.ledger, child, owned.execution_id)


def _beats(owned_by: list[tuple[Child, Owned]]) -> list[tuple[str, str, str, int, str, float]]:
    return [
        (owned.job_id, owned.execution_id, owned.queue, HEARTBEAT_TTL, child.name, owned.started_at)
        for child, owned in owned_by
    ]
