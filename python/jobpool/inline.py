"""Jobs run at enqueue, in the producer's process: a queue made with ``is_async=False``, as RQ's
synchronous queue runs them (its testing mode; django-rq's ``ASYNC: False``).

The enqueue script saves the job as for any queue, but does not put it on the queue. Then the job
runs here, and its outcome is written as RQ's ``Queue.run_sync`` writes it: started (worker name
``sync``), then finished with a successful result and a place in the finished registry until its
result_ttl, or failed with the traceback in a failed result and the failed registry until its
failure_ttl. As in RQ: no retry, no timeout (nothing may interrupt the caller's thread), no
execution records (no worker runs it), the callbacks run after the outcome is written and their
exceptions reach the caller, and the job's own exception does not; then the job's webhooks are
sent, in the caller's thread.

This is not the Rust core's path on purpose: a worker's record removes a started execution and
may retry the job, neither of which an inline run has.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from redis import Redis

from . import keys
from .job import Job
from .job_status import JobStatus
from .result_encoding import format_exception
from .results import Result
from .timeutils import epoch_seconds, utcformat, utcnow

if TYPE_CHECKING:
    from redis.client import Pipeline

WORKER_NAME = "sync"
"""The worker name RQ writes in the hash of a job it runs synchronously."""
DEFAULT_RESULT_TTL = 500
DEFAULT_FAILURE_TTL = 31_536_000  # a year, as RQ's


def run(connection: Redis, queue_name: str, job: Job) -> Job:
    """Runs ``job`` (saved, status queued, not on its queue) now, and records its outcome
    (RQ's ``Queue.run_sync``)."""
    started = utcnow()
    connection.hset(
        job.key,
        mapping={
            "status": JobStatus.STARTED.value,
            "started_at": utcformat(started),
            "last_heartbeat": utcformat(started),
            "worker_name": WORKER_NAME,
        },
    )
    job._status = JobStatus.STARTED
    try:
        value = perform_and_record(connection, queue_name, job)
    except Exception as error:  # as RQ's run_sync: the job's exception is recorded, not raised
        reason = format_exception(error)
        _record_failure(connection, queue_name, job, reason)
        callback = job.failure_callback
        if callback is not None:
            callback(job, connection, *sys.exc_info())
        job.send_webhooks(JobStatus.FAILED.value, exc_string=reason)
        return job
    callback = job.success_callback
    if callback is not None:
        callback(job, connection, value)
    job.send_webhooks(JobStatus.FINISHED.value)
    return job


def perform_and_record(connection: Redis, queue_name: str, job: Job) -> Any:
    """Calls the job and records its success (RQ's ``Queue.run_job``); its exception is raised
    and nothing is recorded. Returns what it returned."""
    value = job.perform()
    _record_success(connection, queue_name, job, value)
    return value


def _record_success(connection: Redis, queue_name: str, job: Job, value: Any) -> None:
    ttl = DEFAULT_RESULT_TTL if job.result_ttl is None else job.result_ttl
    ended = utcnow()
    pipe = connection.pipeline()
    pipe.hset(job.key, mapping={"status": JobStatus.FINISHED.value, "ended_at": utcformat(ended)})
    Result.create(job, Result.Type.SUCCESSFUL, ttl, return_value=value, pipeline=pipe)
    if ttl != 0:
        pipe.zadd(keys.registry("finished", queue_name), {job.id: _score(ended, ttl)})
    _keep_for(pipe, job, ttl)
    pipe.execute()
    job._status = JobStatus.FINISHED
    job.ended_at = ended


def _record_failure(connection: Redis, queue_name: str, job: Job, reason: str) -> None:
    ttl = DEFAULT_FAILURE_TTL if job.failure_ttl is None else job.failure_ttl
    ended = utcnow()
    pipe = connection.pipeline()
    pipe.hset(job.key, mapping={"status": JobStatus.FAILED.value, "ended_at": utcformat(ended)})
    # As RQ's: the result is kept for ever when the job sets no failure_ttl.
    Result.create_failure(job, job.failure_ttl, reason, pipeline=pipe)
    pipe.zadd(keys.registry("failed", queue_name), {job.id: _score(ended, ttl)})
    _keep_for(pipe, job, ttl)
    pipe.execute()
    job._status = JobStatus.FAILED
    job.ended_at = ended


def _keep_for(pipe: Pipeline, job: Job, ttl: int) -> None:
    """As RQ's ``Job.cleanup(ttl)``: 0 deletes the job, a positive ttl expires it and its
    dependency sets, -1 keeps it."""
    job_keys = (job.key, keys.job_dependents(job.id), keys.job_dependencies(job.id))
    if ttl == 0:
        pipe.delete(*job_keys, keys.results(job.id))
    elif ttl > 0:
        for key in job_keys:
            pipe.expire(key, ttl)


def _score(ended: Any, ttl: int) -> float:
    return float("inf") if ttl < 0 else epoch_seconds(ended) + ttl
