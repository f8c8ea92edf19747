"""Saving a job into its queue: one run of lua/enqueue.lua, which writes the job hash and puts
its id on the queue, or in the scheduled or deferred registry, atomically (with a rate limit, in
one transaction with the wait for a slot)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from . import keys, rate_limit, scripts
from .exceptions import DuplicateJobError
from .job import Job
from .job_status import JobStatus
from .timeutils import epoch_seconds, utcformat, utcnow


def save_and_place(
    connection: Redis,
    queue_name: str,
    job: Job,
    pipeline: Pipeline | None,
    at_front: bool = False,
    unique: bool = False,
    scheduled_at: int | None = None,
    inline: bool = False,
    own_pipeline: bool = False,
) -> Job:
    """Runs the enqueue script for ``job`` in queue ``queue_name`` (on ``pipeline`` if given);
    ``inline``: saved, but not put on the queue (its producer runs it). ``own_pipeline``: the
    pipeline is the caller's own (``enqueue_many``'s), which reads the statuses from its
    replies."""
    job._check_numbers()
    job.origin = queue_name
    queue_key = keys.queue(queue_name)
    now = utcnow()
    fields = job.to_dict()
    fields.pop("status", None)
    fields.pop("enqueued_at", None)
    parents = job.dependency_ids
    script_keys = [
        job.key,
        job.dependencies_key,
        keys.QUEUES,
        queue_key,
        keys.registry("deferred", queue_name),
        keys.registry("scheduled", queue_name),
        keys.wakeup(queue_name),
        *(keys.job(parent) for parent in parents),
        *(keys.job_dependents(parent) for parent in parents),
    ]
    waits = job.has_rate_limit and scheduled_at is None and not inline
    if waits and at_front:
        job.enqueue_at_front = True  # as RQ: kept on the job, for its promotion
        fields["enqueue_at_front"] = 1
    args: list[Any] = [
        job.id,
        queue_key,
        "inline" if inline else "rate_limited" if waits else "1" if at_front or job.enqueue_at_front else "0",
        "1" if unique else "0",
        "1" if job.allow_dependency_failures else "0",
        job.ttl or "",
        epoch_seconds(now),
        utcformat(now),
        "" if scheduled_at is None else scheduled_at,
        len(parents),
        *parents,
    ]
    for name, value in fields.items():
        args.extend((name, value))
    if pipeline is not None and pipeline.watching and not pipeline.explicit_transaction:
        pipeline.multi()  # as RQ: a caller's WATCHing pipeline gets the enqueue inside its transaction
    if waits:
        return _save_rate_limited(connection, job, script_keys, args, now)
    client = pipeline if pipeline is not None else connection
    status = scripts.run("enqueue", client, keys=script_keys, args=args)
    if pipeline is not None:
        if not own_pipeline:
            # The script runs at the caller's execute(): the status it will give, as RQ tells it now.
            job._status = _expected_status(job, scheduled_at, connection)
        return job
    if status == b"duplicate":
        raise DuplicateJobError(f"Job {job.id} already exists")
    job._status = JobStatus(status.decode())
    if job._status == JobStatus.QUEUED:
        job.enqueued_at = now
    return job


def _save_rate_limited(
    connection: Redis, job: Job, script_keys: list[str], args: list[Any], now: datetime
) -> Job:
    """Saves a job with a rate limit, as rate_limited (or deferred), and makes it wait for a
    slot of its limit, which it may get at once: one transaction, one round trip (RQ takes
    two). The job's status says where it ended: queued (promoted), rate_limited or deferred."""
    with connection.pipeline() as pipe:
        scripts.run("enqueue", pipe, keys=script_keys, args=args)
        rate_limit.acquire(pipe, job)
        status, promoted = pipe.execute()
    job._status = JobStatus(status.decode())
    if job.id.encode() in promoted:
        job._status = JobStatus.QUEUED
        job.enqueued_at = now
    return job


def _expected_status(job: Job, scheduled_at: int | None, connection: Redis) -> JobStatus:
    """The status the enqueue script gives ``job`` by the parents' statuses now (see
    lua/enqueue.lua: a parent is met when finished or gone, or failed if the job allows it)."""
    if scheduled_at is not None:
        return JobStatus.SCHEDULED
    for parent in job.dependency_ids:
        status = connection.hget(keys.job(parent), "status")
        met = (
            status is None or status == b"finished" or (status == b"failed" and job.allow_dependency_failures)
        )
        if not met:
            return JobStatus.DEFERRED
    return JobStatus.QUEUED


def in_rqs_order(jobs: list[Job]) -> list[Job]:
    """``enqueue_many``'s jobs (those without dependencies first) in the order RQ's returns
    them: those without dependencies, then those with that were deferred, then the rest."""
    independent = [job for job in jobs if not job.dependency_ids]
    dependent = [job for job in jobs if job.dependency_ids]
    deferred = [job for job in dependent if job.get_status(refresh=False) == JobStatus.DEFERRED]
    return independent + deferred + [job for job in dependent if job not in deferred]


def check_unique(job: Job, unique: bool) -> None:
    if unique and job._id is None:
        raise ValueError("unique=True needs an explicit job_id")
    if unique and job.dependency_ids:
        raise ValueError("unique=True is not supported with job dependencies")


def check_key_prefixes(job: Job, queue_prefix: str) -> None:
    """As RQ: a job with a rate limit needs the default job and queue key prefixes (its
    ``redis_job_namespace_prefix``, its queue's ``redis_queue_namespace_prefix``), which the
    rate-limit scripts build their keys from."""
    if job.has_rate_limit and (
        job.redis_job_namespace_prefix != keys.job("") or queue_prefix != keys.queue("")
    ):
        raise ValueError("rate_limit is not supported with custom job or queue key prefixes")
