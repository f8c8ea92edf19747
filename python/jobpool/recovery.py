"""Abandoned-job recovery: executions whose heartbeat lapsed (their worker died) are failed, or
retried, with AbandonedJobError, recorded exactly as RQ's StartedJobRegistry cleanup records
them. The work is one call into the Rust core (two round trips for any number of jobs)."""

from __future__ import annotations

from redis import Redis

from . import _native
from .redis_target import connect_core
from .results import encode_traceback
from .timeutils import utcnow


def abandoned_reason() -> str:
    """RQ's text for a job whose worker died."""
    return f"Moved to FailedJobRegistry, due to AbandonedJobError, at {utcnow()}"


def recover_abandoned(
    connection: Redis | _native.Core, queue_names: list[str]
) -> list[tuple[str, str, str, str]]:
    """Fails or retries the lapsed executions of ``queue_names``; returns (queue, job id,
    execution id, outcome) for each, the outcome being failed, retried, scheduled or cleared.
    ``connection`` may be a Rust core already connected (a worker's)."""
    exc_info, exc_string = encode_traceback(abandoned_reason())
    core = connection if isinstance(connection, _native.Core) else connect_core(connection)
    return core.recover_abandoned(queue_names, exc_info, exc_string)
