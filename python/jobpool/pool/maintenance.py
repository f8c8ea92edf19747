"""The pool's maintenance, every few seconds: abandoned jobs recovered and the registries cleaned
on the queues whose maintenance lock this pool gets (one pool a queue at a time, however many
pools there are), and the groups cleaned, by one pool or RQ worker at a time, as RQ's workers
clean them."""

from __future__ import annotations

import logging
from typing import Any

import redis

from .. import keys
from .._native import Core
from ..group import MAINTENANCE_INTERVAL as GROUP_MAINTENANCE_INTERVAL
from ..group import Group
from ..recovery import lapsed_executions, recover_abandoned, with_callbacks_or_webhooks
from ..registry_cleanup import clean_registries
from .helper_process import fork_helper

logger = logging.getLogger("jobpool.supervisor")

MAINTENANCE_SECONDS = 10.0


class Maintenance:
    def __init__(
        self, connection: redis.Redis, core: Core, name: str, queue_names: list[str], serializer: Any
    ) -> None:
        self.connection = connection
        self.core = core
        self.name = name  # the pool's: its maintenance locks hold it
        self.queue_names = queue_names
        self.serializer = serializer
        self.recovery_pid: int | None = None  # a process recovering abandoned jobs with callbacks

    def run(self) -> None:
        """Recovers abandoned jobs, and cleans the registries, on the queues whose maintenance
        lock this pool gets (recovery is safe to repeat anyway). A lock under this pool's name is
        its own, left by the run before a kill. The groups are cleaned too, every
        GROUP_MAINTENANCE_INTERVAL."""
        with self.connection.pipeline(transaction=False) as pipe:
            for name in self.queue_names:
                lock = keys.maintenance_lock(name)
                pipe.set(lock, self.name, nx=True, ex=int(MAINTENANCE_SECONDS) - 1)
                pipe.get(lock)
            pipe.set(keys.CLEAN_GROUPS, 1, nx=True, ex=GROUP_MAINTENANCE_INTERVAL - 1)  # as RQ's workers
            *replies, groups_due = pipe.execute()
        holders = zip(self.queue_names, replies[0::2], replies[1::2], strict=True)
        mine = [name for name, locked, holder in holders if locked or holder == self.name.encode()]
        if mine:
            self._recover(mine)
            clean_registries(self.connection, mine)
        if groups_due:
            Group.clean_registries(self.connection)

    def reaped(self, pid: int) -> None:
        """The supervisor reaped ``pid``: if it was the recovery's process, the next
        maintenance may fork another."""
        if pid == self.recovery_pid:
            self.recovery_pid = None

    def _recover(self, queue_names: list[str]) -> None:
        """Fails or retries the lapsed executions of ``queue_names`` (their pool vanished).
        When some of their jobs have an ``on_failure`` callback, which runs first as in RQ, or
        webhooks, sent once the failures are written, a process forked for it does the recovery:
        the supervisor never runs job code, nor waits on an endpoint, either of which could hold
        up its heartbeats. One such process at a time."""
        if self.recovery_pid is not None:
            return  # it is still at it; the next maintenance looks again
        lapsed = lapsed_executions(self.connection, queue_names)
        if not lapsed:
            return
        if with_callbacks_or_webhooks(self.connection, lapsed):
            self.recovery_pid = fork_helper(
                f"jobpool recovery [{','.join(queue_names)}]",
                lambda: _log_recovered(
                    recover_abandoned(self.connection, queue_names, serializer=self.serializer)
                ),
            )
            return
        recovered = recover_abandoned(self.connection, queue_names, core=self.core, run_callbacks=False)
        _log_recovered(recovered)


def _log_recovered(recovered: list[tuple[str, str, str, str]]) -> None:
    for queue, job_id, _, outcome in recovered:
        logger.warning("%s: job %s was abandoned (its worker vanished): %s", queue, job_id, outcome)
