"""Registry maintenance for a pool's queues, as RQ 3.0's workers do it in theirs
(``rq.registry.clean_registries`` and ``rq.worker_registration.clean_worker_registry``):

- finished and failed registries: entries whose expiry (their score) has passed are dropped.
  Nothing else is deleted, as with RQ: the job hashes were given the same TTL when the entries
  were written, and have expired by themselves.
- ready registry (RQ 3.0's dependents between their parent's end and their push onto the queue):
  a job an RQ process left there when it died is pushed onto its queue (one with a rate limit waits
  for a slot, as RQ enqueues it); the entry of a job that is gone, or no longer
  ``ready_to_enqueue``, is dropped.
- worker registry: keys of workers whose hash is gone are dropped from the queue's and the global
  worker sets.
- rate limits (``rate_limit.clean_rate_limits``, as RQ's ``clean_registries`` ends): slots held by
  jobs that no longer need them are freed, waiting jobs promoted, and unused limits forgotten; one
  script run per limit in use, none when there is none.

The started registry is RQ's too, but its cleanup is abandoned-job recovery
(``recovery.recover_abandoned``), run by the caller. The deferred, canceled and scheduled
registries are left alone, as RQ leaves them: the first two are scored by arrival, not expiry,
and the scheduler moves due scheduled jobs.

The work is at most three round trips for any number of queues and entries: one lists (and
trims), one reads the ready jobs and checks the listed workers' hashes (skipped when there are
neither), and one writes, only when there is a job to push or an entry or key to drop; besides
redis-py's check, before a push, that the requeue script is loaded (and its load, the first time).
Rate limits add one round trip when some are in use (a script run each), none otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from . import keys
from .job_status import JobStatus
from .rate_limit import clean_rate_limits
from .redis_values import as_text, as_texts
from .requeue import requeue_from
from .timeutils import epoch_seconds

logger = logging.getLogger("jobpool.registry_cleanup")

READY_FIELDS = ("status", "enqueue_at_front", "enqueue_at_front_on_retry", "ended_at")


@dataclass
class Cleaned:
    """What ``clean_registries`` did."""

    expired: int = 0  # finished and failed entries dropped
    enqueued: list[str] = field(default_factory=list)  # ready jobs pushed onto their queues
    dropped_ready: int = 0  # ready entries of jobs gone or no longer ready_to_enqueue
    dropped_workers: int = 0  # worker keys dropped from the worker sets
    rate_limits: list[tuple[str, int, int, bool]] = field(default_factory=list)
    """(name, slots freed, jobs promoted, forgotten) of each rate limit in use."""


def clean_registries(connection: Redis, queue_names: list[str]) -> Cleaned:
    """Cleans the registries of ``queue_names`` (see the module's docstring); the caller holds
    their maintenance lock, so one pool at a time does it."""
    cleaned = Cleaned()
    now = epoch_seconds()
    with connection.pipeline(transaction=False) as pipe:
        for name in queue_names:
            pipe.zremrangebyscore(keys.registry("finished", name), 0, now)
            pipe.zremrangebyscore(keys.registry("failed", name), 0, now)
            pipe.zrange(keys.registry("ready", name), 0, -1)
            pipe.smembers(keys.queue_workers(name))
        pipe.smembers(keys.RATE_LIMIT_KEYS)
        replies = iter(pipe.execute())
    ready: list[tuple[str, str]] = []  # (queue, job id)
    workers: list[tuple[str, str]] = []  # (queue, worker key)
    for name in queue_names:
        cleaned.expired += int(next(replies)) + int(next(replies))
        ready += [(name, job_id) for job_id in as_texts(next(replies))]
        workers += [(name, key) for key in sorted(as_texts(next(replies)))]
    rate_limits = sorted(as_texts(next(replies)))
    if ready or workers:
        _settle_ready_and_workers(connection, ready, workers, cleaned)
    cleaned.rate_limits = clean_rate_limits(connection, rate_limits)
    return cleaned


def _settle_ready_and_workers(
    connection: Redis, ready: list[tuple[str, str]], workers: list[tuple[str, str]], cleaned: Cleaned
) -> None:
    """Reads the ready jobs and the workers' hashes in one round trip; then, in another, pushes
    or drops the ready jobs and drops the dead workers' keys."""
    with connection.pipeline(transaction=False) as pipe:
        for _, job_id in ready:
            pipe.hmget(keys.job(job_id), READY_FIELDS)
        for _, key in workers:
            pipe.exists(key)
        replies = iter(pipe.execute())
        jobs = [dict(zip(READY_FIELDS, next(replies), strict=True)) for _ in ready]
        gone = [(name, key) for name, key in workers if not next(replies)]

    to_push = [
        (name, job_id, _at_front(job))
        for (name, job_id), job in zip(ready, jobs, strict=True)
        if _text(job["status"]) == JobStatus.READY_TO_ENQUEUE
    ]
    to_drop = [
        (name, job_id)
        for (name, job_id), job in zip(ready, jobs, strict=True)
        if _text(job["status"]) != JobStatus.READY_TO_ENQUEUE
    ]
    if not (to_push or to_drop or gone):
        return
    with connection.pipeline(transaction=False) as pipe:
        for name, job_id, at_front in to_push:
            # The script pushes the job only if it takes it out of the registry, so a job that
            # the RQ process which left it there pushes meanwhile is not pushed twice.
            requeue_from(pipe, keys.registry("ready", name), job_id, name, at_front)
        for name, job_id in to_drop:
            pipe.zrem(keys.registry("ready", name), job_id)
        for name, key in gone:
            pipe.srem(keys.queue_workers(name), key)
            pipe.srem(keys.WORKERS, key)
        pushed = pipe.execute()[: len(to_push)]
    cleaned.enqueued = [job_id for (_, job_id, _), moved in zip(to_push, pushed, strict=True) if moved]
    if cleaned.enqueued:
        logger.warning("Enqueued jobs that RQ had left ready to enqueue: %s", " ".join(cleaned.enqueued))
    cleaned.dropped_ready = len(to_drop)
    cleaned.dropped_workers = len(gone)


def _at_front(job: dict[str, Any]) -> bool:
    """RQ's ``Job.should_enqueue_at_front``: the retry's at-front for a job that has run, else
    the job's own."""
    if _text(job["enqueue_at_front_on_retry"]) == "1" and job["ended_at"]:
        return True
    return _text(job["enqueue_at_front"]) == "1"


def _text(value: Any) -> str | None:
    return None if value is None else as_text(value)
