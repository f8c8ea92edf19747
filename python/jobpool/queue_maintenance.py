"""RQ's queue upkeep API that a producer or dashboard calls: compacting a queue, enqueueing a
job's dependents, RQ's registry-cleaning lock and the server's version (``Queue``'s methods of
the same names call these)."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import ResponseError, WatchError

from . import keys
from .dependencies import release_dependents
from .job import Job
from .job_status import JobStatus
from .redis_values import as_text, as_texts

CLEANING_LOCK_SECONDS = 899
"""How long RQ's registry-cleaning lock is held (15 minutes less a second, as RQ's)."""

FALLBACK_SERVER_VERSION = (5, 0, 9)
"""RQ's answer when the server refuses INFO (fakeredis)."""


def acquire_cleaning_lock(connection: Redis, queue_name: str) -> bool:
    return bool(connection.set(keys.registry_cleaning(queue_name), 1, nx=True, ex=CLEANING_LOCK_SECONDS))


def redis_server_version(connection: Redis) -> tuple[int, int, int]:
    """(major, minor, patch) of the server, as RQ parses ``INFO server``'s redis_version."""
    try:
        info = connection.info("server")
    except ResponseError:
        return FALLBACK_SERVER_VERSION
    parts = [int(part) for part in str(info["redis_version"]).split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def compact(connection: Redis, queue_key: str) -> None:
    """Removes from the queue the ids whose job hash is gone. Unlike RQ's (which renames the
    list and pushes the live ids back, so that a worker finds it empty meanwhile and an enqueue
    meanwhile lands ahead of older jobs), only the dead ids are taken out, with LREM in a
    transaction that WATCHes their hashes: a job saved again under one of them meanwhile keeps
    its place, and the transaction is tried again."""
    with connection.pipeline() as pipe:
        while True:
            dead = _dead_job_ids(connection, as_texts(connection.lrange(queue_key, 0, -1)))
            if not dead:
                return
            try:
                pipe.watch(*(keys.job(job_id) for job_id in dead))
                dead = _dead_job_ids(connection, dead)  # any saved before the WATCH stay
                pipe.multi()
                for job_id in dead:
                    pipe.lrem(queue_key, 0, job_id)
                pipe.execute()
                return
            except WatchError:
                continue


def _dead_job_ids(connection: Redis, job_ids: list[str]) -> list[str]:
    """The distinct ids of ``job_ids`` that have no job hash, in one round trip."""
    distinct = list(dict.fromkeys(job_ids))
    with connection.pipeline(transaction=False) as pipe:
        for job_id in distinct:
            pipe.exists(keys.job(job_id))
        found = pipe.execute()
    return [job_id for job_id, exists in zip(distinct, found, strict=True) if not exists]


def enqueue_dependents(
    connection: Redis, job: Job, exclude_job_id: str | None = None, refresh_job_status: bool = True
) -> dict[str, list[str]]:
    """Enqueues the deferred dependents of ``job`` whose parents are all met, atomically (the
    script that enqueues dependents when a job finishes); returns their ids by queue name, as
    RQ's. RQ's rules: ``job`` itself counts as met (its caller is ending it) unless it is
    canceled or stopped (then none is released), or failed (then only the dependents that
    allow failures may be); another parent is met when finished (or failed, for a dependent that
    allows failures) or gone; ``exclude_job_id`` counts as met. NotImplementedError for an
    ``exclude_job_id`` other than ``job``'s own while ``job`` is not finished in Redis: the
    script counts one parent as met, not two."""
    status = job.get_status(refresh=refresh_job_status)
    if exclude_job_id == job.id:
        met_parent: str | None = job.id
    elif status in (JobStatus.CANCELED, JobStatus.STOPPED):
        return {}
    elif status == JobStatus.FAILED or connection.hget(job.key, "status") == b"finished":
        met_parent = exclude_job_id  # the script reads job's status in Redis
    elif exclude_job_id is None:
        met_parent = job.id
    else:
        raise NotImplementedError(
            f"enqueue_dependents(exclude_job_id={exclude_job_id!r}) needs job {job.id} finished first"
        )
    enqueued = as_texts(release_dependents(connection, job.id, met_parent=met_parent))
    with connection.pipeline(transaction=False) as pipe:
        for job_id in enqueued:
            pipe.hget(keys.job(job_id), "origin")
        origins = pipe.execute()
    by_queue: dict[str, list[str]] = {}
    for job_id, origin in zip(enqueued, origins, strict=True):
        by_queue.setdefault(as_text(origin), []).append(job_id)
    return by_queue
