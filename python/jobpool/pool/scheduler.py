"""The scheduler: due scheduled jobs (``enqueue_at``/``enqueue_in``, retries and repeats with an
interval) go onto their queues, or wait for a slot of their rate limit (``rate_limit``). One
script call for all of a pool's queues, under RQ's per-queue scheduler locks, so one scheduler
runs per queue whatever mix of RQ and jobpool pools there is.

A pool's scheduler also keeps RQ's scheduler hash, ``<prefix>:scheduler:<name>``, where
``Queue.scheduler_pid`` (RQ's and jobpool's) finds the process that schedules a queue."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from redis import Redis
from redis.exceptions import WatchError

from .. import keys, scripts
from ..timeutils import epoch_seconds, utcformat, utcnow

MOST_JOBS_PER_QUEUE = 1000
# How long RQ's scheduler hash outlives its last refresh: RQ's (its 1 s interval plus 60 s).
SCHEDULER_TTL = 61


def enqueue_due_jobs(connection: Redis, queue_names: list[str], scheduler_name: str) -> int:
    """Moves the jobs due now onto their queues; returns how many."""
    script_keys: list[str] = []
    for name in queue_names:
        script_keys += [
            keys.scheduler_lock(name),
            keys.registry("scheduled", name),
            keys.queue(name),
            keys.wakeup(name),
        ]
    now = utcnow()
    moved = scripts.run(
        "schedule",
        connection,
        keys=script_keys,
        args=[
            scheduler_name,
            epoch_seconds(now),
            utcformat(now),
            keys.job(scripts.ID_MARK),
            MOST_JOBS_PER_QUEUE,
            len(queue_names),
            keys.queue(scripts.ID_MARK),
            keys.wakeup(scripts.ID_MARK),
            *keys.rate_limit_templates(),
        ],
    )
    return int(moved)


def release_scheduler_locks(connection: Redis, queue_names: list[str], scheduler_name: str) -> None:
    """Gives up the scheduler locks this scheduler holds (a stopping pool's)."""
    for name in queue_names:
        lock = keys.scheduler_lock(name)
        with connection.pipeline() as pipe:
            try:
                pipe.watch(lock)
                if pipe.get(lock) == scheduler_name.encode():
                    pipe.multi()
                    pipe.delete(lock)
                    pipe.execute()
            except WatchError:
                pass  # taken over meanwhile: not ours to release


def register_scheduler(
    connection: Redis, scheduler_name: str, queue_names: list[str], created_at: datetime
) -> None:
    """Writes (refreshes) the scheduler's hash as RQ's scheduler writes it."""
    key = keys.scheduler(scheduler_name)
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(
            key,
            mapping={
                "name": scheduler_name,
                "hostname": socket.gethostname(),
                "pid": str(os.getpid()),
                "queues": ",".join(queue_names),
                "created_at": utcformat(created_at),
                "last_heartbeat": utcformat(utcnow()),
            },
        )
        pipe.expire(key, SCHEDULER_TTL)
        pipe.execute()


def unregister_scheduler(connection: Redis, scheduler_name: str) -> None:
    connection.delete(keys.scheduler(scheduler_name))
