"""Running one taken job in the worker process: decode it, call it under its timeout, run its
callbacks, and encode the outcome for the Rust core to record.

Any failure, whatever its cause (a corrupt job hash, a function that cannot be imported, an
exception, a timeout, a failing callback), becomes a failed outcome with a readable reason:
the worker records it and carries on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from .callbacks import DEFAULT_CALLBACK_TIMEOUT
from .job import Job
from .results import encode_return_value, encode_traceback, format_exception
from .serializers import Serializer
from .timeouts import death_penalty

DEFAULT_JOB_TIMEOUT = 180


@dataclass
class Outcome:
    """What became of one execution, encoded for the core."""

    succeeded: bool
    return_value: bytes | None = None  # success: base64 of the serialized value, None for None
    reason: str = ""  # failure: the traceback text
    stopped: bool = False
    started_at: float = 0.0
    working_seconds: float = 0.0

    @property
    def traceback(self) -> tuple[bytes, bytes]:
        return encode_traceback(self.reason)


class JobStopped(BaseException):
    """Raised inside a job to stop it (a cold shutdown, or a stop-job command): the job ends as
    ``stopped``. A BaseException, so the job's own ``except Exception`` does not swallow it."""


def load_job(job_id: str, fields: dict[str, bytes], connection: Redis, serializer: Serializer) -> Job:
    """The job from the hash the core returned (raises DeserializationError if it is corrupt)."""
    job = Job(job_id, connection=connection, serializer=serializer)
    job.restore(fields)
    return job


def _run_callback(callback: Any, timeout: int | None, *args: Any) -> None:
    with death_penalty(timeout or DEFAULT_CALLBACK_TIMEOUT, what="Callback"):
        callback(*args)


def run_job(job_id: str, fields: dict[str, bytes], connection: Redis, serializer: Serializer) -> Outcome:
    """Runs the job in this process and returns its outcome (never raises for a job's failure)."""
    started_at = time.time()
    clock = time.perf_counter()
    job: Job | None = None
    try:
        job = load_job(job_id, fields, connection, serializer)
        with death_penalty(job.timeout or DEFAULT_JOB_TIMEOUT):
            value = job.perform()
        if job._success_callback_name:
            _run_callback(job.success_callback, job._success_callback_timeout, job, connection, value)
        encoded = encode_return_value(job.serializer, value)
        return Outcome(
            True, return_value=encoded, started_at=started_at, working_seconds=time.perf_counter() - clock
        )
    except JobStopped as stop:
        if job is not None and job._stopped_callback_name:
            _failure_reason_of_callback(job, connection, stop, stopped=True)
        return Outcome(
            False,
            reason=f"Job stopped by user: {stop}\n",
            stopped=True,
            started_at=started_at,
            working_seconds=time.perf_counter() - clock,
        )
    except Exception as error:
        reason = format_exception(error)
        if job is not None and job._failure_callback_name:
            reason = _failure_reason_of_callback(job, connection, error) or reason
        return Outcome(
            False, reason=reason, started_at=started_at, working_seconds=time.perf_counter() - clock
        )


def _failure_reason_of_callback(
    job: Job, connection: Redis, error: BaseException, stopped: bool = False
) -> str | None:
    """Runs the failure (or stopped) callback; if it raises, its traceback is the new reason."""
    try:
        if stopped:
            _run_callback(job.stopped_callback, job._stopped_callback_timeout, job, connection)
        else:
            _run_callback(
                job.failure_callback,
                job._failure_callback_timeout,
                job,
                connection,
                type(error),
                error,
                error.__traceback__,
            )
    except Exception as callback_error:
        return format_exception(callback_error)
    return None
