"""The scheduler: due scheduled jobs (``enqueue_at``/``enqueue_in``, retries with an interval) go
onto their queues. One script call for all of a pool's queues, under RQ's per-queue scheduler
locks, so one scheduler runs per queue whatever mix of RQ and jobpool pools there is."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import WatchError

from . import keys, scripts
from .timeutils import epoch_seconds, utcformat, utcnow

MOST_JOBS_PER_QUEUE = 1000


def enqueue_due_jobs(connection: Redis, queue_names: list[str], scheduler_name: str) -> int:
    """Moves the jobs due now onto their queues; returns how many."""
    script_keys: list[str] = []
    for name in queue_names:
        script_keys += [
            keys.render("scheduler_lock", queue=name),
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
        ],
    )
    return int(moved)


def release_scheduler_locks(connection: Redis, queue_names: list[str], scheduler_name: str) -> None:
    """Gives up the scheduler locks this scheduler holds (a stopping pool's)."""
    for name in queue_names:
        lock = keys.render("scheduler_lock", queue=name)
        with connection.pipeline() as pipe:
            try:
                pipe.watch(lock)
                if pipe.get(lock) == scheduler_name.encode():
                    pipe.multi()
                    pipe.delete(lock)
                    pipe.execute()
            except WatchError:
                pass  # taken over meanwhile: not ours to release
