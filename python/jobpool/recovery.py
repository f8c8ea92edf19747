"""Abandoned-job recovery: executions whose heartbeat lapsed (their worker died) are failed, or
retried, with AbandonedJobError, recorded exactly as RQ's StartedJobRegistry cleanup records
them. The record is one call into the Rust core (two round trips for any number of jobs).

As RQ's cleanup does, each abandoned job's ``on_failure`` callback runs first, retried or not,
with ``(AbandonedJobError, AbandonedJobError(), None)``; the job it gets is as fetched (status
``started``), and a callback that raises is logged and changes nothing. Once the failures are
written, the ``failed`` webhooks of the jobs that failed (not those retried) are sent, as RQ's
cleanup sends them. Finding whether any lapsed job has a callback or webhooks costs one round
trip, a second only when some execution lapsed.
"""

from __future__ import annotations

import logging

from redis import Redis

from . import _native, keys
from .callbacks import run_callback
from .exceptions import AbandonedJobError
from .job import Job
from .job_status import JobStatus
from .redis_target import process_core
from .redis_values import as_text
from .result_encoding import encode_traceback
from .serializers import Serializer
from .timeutils import epoch_seconds, utcnow

logger = logging.getLogger("jobpool.recovery")

Lapsed = tuple[str, str, str]
"""A lapsed execution: (queue, job id, execution id)."""


def abandoned_reason() -> str:
    """RQ's text for a job whose worker died."""
    return f"Moved to FailedJobRegistry, due to AbandonedJobError, at {utcnow()}"


def lapsed_executions(
    connection: Redis, queue_names: list[str], lapsed_by: float | None = None
) -> list[Lapsed]:
    """The executions in the started registries of ``queue_names`` whose heartbeat has lapsed
    (or lapses by ``lapsed_by``, epoch seconds)."""
    cutoff = int(epoch_seconds() if lapsed_by is None else lapsed_by)
    with connection.pipeline(transaction=False) as pipe:
        for name in queue_names:
            pipe.zrangebyscore(keys.registry("started", name), "-inf", cutoff)
        listed = pipe.execute()
    lapsed = []
    for name, members in zip(queue_names, listed, strict=True):
        for member in members:
            job_id, _, execution_id = as_text(member).partition(":")  # RQ < 2.0: a bare job id
            lapsed.append((name, job_id, execution_id))
    return lapsed


def with_callbacks_or_webhooks(connection: Redis, lapsed: list[Lapsed]) -> list[str]:
    """The ids of the jobs of ``lapsed`` that recovery fails or retries and that have an
    ``on_failure`` callback or webhooks: still started, and not a job held ahead that never
    began (recovery puts those back in their queue)."""
    with connection.pipeline(transaction=False) as pipe:
        for _, job_id, _ in lapsed:
            pipe.hmget(keys.job(job_id), "status", "failure_callback_name", "webhooks", "jobpool_held")
        fields = pipe.execute()
    return [
        job_id
        for (_, job_id, execution_id), (status, callback, webhooks, held) in zip(lapsed, fields, strict=True)
        if status == JobStatus.STARTED.value.encode()
        and (callback or webhooks)
        and held != execution_id.encode()
    ]


def run_failure_callbacks(
    connection: Redis, job_ids: list[str], serializer: Serializer | None = None
) -> list[Job]:
    """Runs the ``on_failure`` callback of each abandoned job of ``job_ids``, as RQ's cleanup
    runs it; whatever goes wrong (a job gone or undecodable, a callback that raises or times
    out) is logged and the next one runs. Returns the jobs that have webhooks."""
    with_webhooks: list[Job] = []
    for job_id in job_ids:
        try:
            job = Job.fetch(job_id, connection=connection, serializer=serializer)
            if job.webhooks:
                with_webhooks.append(job)
            on_failure = job.get_callback("failure")
            if on_failure is not None:
                error = AbandonedJobError()
                run_callback(
                    on_failure.func, on_failure.timeout, job, connection, AbandonedJobError, error, None
                )
        except Exception:
            logger.exception("Abandoned job %s: its failure callback failed", job_id)
    return with_webhooks


def recover_abandoned(
    connection: Redis,
    queue_names: list[str],
    core: _native.Core | None = None,
    serializer: Serializer | None = None,
    run_callbacks: bool = True,
    lapsed_by: float | None = None,
) -> list[tuple[str, str, str, str]]:
    """Fails or retries the lapsed executions of ``queue_names``, after running their jobs'
    ``on_failure`` callbacks, and then sends the failed ones' webhooks (neither unless
    ``run_callbacks``: the caller runs no job code); returns (queue, job id, execution id,
    outcome) for each, the outcome being failed, retried, scheduled or cleared. ``core`` is the
    Rust core to record with (a worker's own; by default, the process's: ``process_core``),
    ``serializer`` the jobs' one. ``lapsed_by`` (epoch seconds) is RQ's
    ``StartedJobRegistry.cleanup(timestamp)``: executions whose heartbeat lapses by then count as
    lapsed (a time ahead fails running jobs, as RQ's does)."""
    lapsed = lapsed_executions(connection, queue_names, lapsed_by)
    if not lapsed:
        return []
    with_webhooks: list[Job] = []
    if run_callbacks:
        with_webhooks = run_failure_callbacks(
            connection, with_callbacks_or_webhooks(connection, lapsed), serializer
        )
    reason = abandoned_reason()
    exc_info, exc_string = encode_traceback(reason)
    recovered = (core or process_core(connection)).recover_abandoned(
        queue_names, exc_info, exc_string, lapsed_by
    )
    failed = {job_id for _, job_id, _, outcome in recovered if outcome == JobStatus.FAILED.value}
    for job in with_webhooks:
        if job.id in failed:
            job.send_webhooks(JobStatus.FAILED.value, exc_string=reason)
    return recovered
