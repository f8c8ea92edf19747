"""Running one taken job in the worker process: decode it, call it under its timeout, run its
callbacks, and encode the outcome for the Rust core to record.

A job that returns a Retry (jobpool's or RQ's) is not a success: it runs again, or fails once
its Retry's max is reached, as RQ 3.0's worker records it (``retry.retry_again``). Callbacks
see the job's status as RQ's do: ``job.get_status(refresh=False)`` is finished in ``on_success``
and failed in ``on_failure`` (Redis still says started: the record comes after them).

Any failure, whatever its cause (a corrupt job hash, a function that cannot be imported, an
exception, a timeout, a failing callback, even SystemExit or KeyboardInterrupt raised by the
job), becomes a failed outcome with a readable reason: the worker records it and carries on, as
RQ's does. Only JobStopped, the worker's own stop, ends a job as stopped.

A job may also change what the worker process relies on: its signal handlers are put back after
every job, and a process the job forked that returns from it ends there (see ``run_job``).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module under signal: no stub
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from redis import Redis

from ._native import DEFAULT_JOB_TIMEOUT
from .callbacks import run_callback
from .job import Job, JobStatus
from .result_encoding import encode_return_value, encode_traceback, format_exception
from .retry import RetryAgain, retry_again, returned_retry
from .serializers import Serializer
from .timeouts import BaseDeathPenalty, JobTimeoutException, death_penalty
from .timeutils import utcnow

logger = logging.getLogger("jobpool.worker")

# RQ's exception handler: ``handler(job, exc_type, exc_value, traceback)``; an explicit falsy
# return (not None) stops the handlers after it.
ExceptionHandler = Callable[..., Any]


@dataclass(frozen=True)
class RunSettings:
    """What a worker's RQ options change in how its jobs run."""

    death_penalty_class: type[BaseDeathPenalty] | None = None  # None: jobpool's ``death_penalty``
    exception_handlers: tuple[ExceptionHandler, ...] = ()


DEFAULT_SETTINGS = RunSettings()


@dataclass
class Outcome:
    """What became of one execution, encoded for the core."""

    succeeded: bool
    return_value: bytes | None = None  # success or Retry: base64 of the serialized value, None for None
    reason: str = ""  # failure: the traceback text
    stopped: bool = False
    started_at: float = 0.0
    working_seconds: float = 0.0
    retry_returned: bool = False  # the job returned a Retry (``return_value`` holds it)
    again: RetryAgain | None = None  # how it runs again; None: its retries are used up
    job: Job | None = None  # the job, if it has webhooks to send once this outcome is recorded
    func_name: str | None = None  # the job's function, for its log line; None: its data was unread

    @property
    def traceback(self) -> tuple[bytes, bytes]:
        return encode_traceback(self.reason)


class JobStopped(BaseException):
    """Raised inside a job to stop it (a cold shutdown, or a stop-job command): the job ends as
    ``stopped``. A BaseException, so the job's own ``except Exception`` does not swallow it."""


class JobKilled(JobStopped):
    """Raised inside a job by a standalone worker's kill-horse command: the job ends as
    ``failed`` (and is retried if it has retries left), as a job does whose RQ work horse is
    killed, or whose pool worker is."""


def stopped_outcome(stop: JobStopped, started_at: float, working_seconds: float) -> Outcome:
    """The outcome of a job ended by ``stop``."""
    if isinstance(stop, JobKilled):
        return Outcome(
            False,
            reason=f"Work-horse terminated unexpectedly: {stop}\n",
            started_at=started_at,
            working_seconds=working_seconds,
        )
    return Outcome(
        False,
        reason=f"Job stopped by user: {stop}\n",
        stopped=True,
        started_at=started_at,
        working_seconds=working_seconds,
    )


def load_job(job_id: str, fields: dict[str, bytes], connection: Redis, serializer: Serializer) -> Job:
    """The job from the hash the core returned (raises DeserializationError if it is corrupt)."""
    job = Job(job_id, connection=connection, serializer=serializer)
    job.restore(fields)
    return job


# The signals whose handlers the worker installs once per process (warm and cold shutdown, stop
# of the running job, a pool worker's stop-job): a job that replaces them must not leave the
# worker deaf to them.
WORKER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)
# The handlers are read with ``_signal.getsignal``, the C function ``signal.getsignal`` wraps: the
# wrapper tries to turn each handler into a ``signal.Handlers`` member, which cost a no-op job
# about 8% of its time (four signals, twice a job).


@contextmanager
def _worker_signal_handlers() -> Iterator[None]:
    """Puts back, when the block ends however it ends, the handlers the block's job replaced."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set, and so changed by a job, in the main thread
        return
    saved = [(signum, _signal.getsignal(signum)) for signum in WORKER_SIGNALS]
    try:
        yield
    finally:
        for signum, handler in saved:
            if handler is not None and _signal.getsignal(signum) != handler:
                signal.signal(signum, handler)


def _perform(job: Job, worker_pid: int) -> Any:
    """``job.perform()``; in a process the job forked that returns (or raises) from it, an
    immediate exit: that copy of the worker must record nothing and run no worker loop. Its
    buffered output is not flushed, since that buffer is a copy of the worker's."""
    try:
        value = job.perform()
    except BaseException as error:
        if os.getpid() != worker_pid:
            os._exit(_exit_status(error))
        raise
    if os.getpid() != worker_pid:
        os._exit(0)
    return value


def _exit_status(error: BaseException) -> int:
    """The status a process ending with ``error`` exits with, as the interpreter picks it."""
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else int(error.code is not None)
    return 1


def run_job(
    job_id: str,
    fields: dict[str, bytes],
    connection: Redis,
    serializer: Serializer,
    settings: RunSettings = DEFAULT_SETTINGS,
) -> Outcome:
    """Runs the job in this process and returns its outcome (never raises for a job's failure;
    JobStopped, the worker's stop, is a stopped outcome). The worker's signal handlers are as
    they were when it returns."""
    with _worker_signal_handlers():
        return _run(job_id, fields, connection, serializer, settings)


def _run(
    job_id: str, fields: dict[str, bytes], connection: Redis, serializer: Serializer, settings: RunSettings
) -> Outcome:
    started_at = time.time()
    clock = time.perf_counter()
    worker_pid = os.getpid()
    job: Job | None = None
    try:
        job = load_job(job_id, fields, connection, serializer)
        with _penalty(settings, job.timeout or DEFAULT_JOB_TIMEOUT, job_id):
            value = _perform(job, worker_pid)
        retry = returned_retry(value)
        if retry is not None:  # no callback runs, as with RQ
            return Outcome(
                False,
                return_value=encode_return_value(job.serializer, value),
                started_at=started_at,
                working_seconds=time.perf_counter() - clock,
                retry_returned=True,
                again=retry_again(retry, job.number_of_retries, job.enqueue_at_front_on_retry),
                job=_with_webhooks(job),
                func_name=_read_func_name(job),
            )
        on_success = job.get_callback("success")
        if on_success is not None:
            job._status = JobStatus.FINISHED
            run_callback(on_success.func, on_success.timeout, job, connection, value)
        encoded = encode_return_value(job.serializer, value)
        return Outcome(
            True,
            return_value=encoded,
            started_at=started_at,
            working_seconds=time.perf_counter() - clock,
            job=_with_webhooks(job),
            func_name=_read_func_name(job),
        )
    except JobStopped as stop:
        if job is not None and job.get_callback("stopped") and not isinstance(stop, JobKilled):
            _error_of_callback(job, connection, stop, stopped=True)
        outcome = stopped_outcome(stop, started_at, time.perf_counter() - clock)
        if job is not None and not outcome.stopped:  # killed: it fails, and its webhooks go
            outcome.job = _with_webhooks(job)
        return outcome
    except BaseException as error:  # as RQ's worker: SystemExit and KeyboardInterrupt too
        if job is not None and job.get_callback("failure"):
            job._status = JobStatus.FAILED
            error = _error_of_callback(job, connection, error) or error
        if settings.exception_handlers:
            failed = job or Job(job_id, connection=connection, serializer=serializer)
            call_exception_handlers(settings.exception_handlers, failed, error)
        return Outcome(
            False,
            reason=format_exception(error),
            started_at=started_at,
            working_seconds=time.perf_counter() - clock,
            job=None if job is None else _with_webhooks(job),
            func_name=None if job is None else _read_func_name(job),
        )


def stopped_job_callback(
    job_id: str, fields: dict[str, bytes], connection: Redis, serializer: Serializer
) -> None:
    """Runs the stopped callback of a job whose work horse was killed to stop it (RQ runs it in
    the worker then); one that raises, or a job that cannot be loaded, is logged."""
    try:
        job = load_job(job_id, fields, connection, serializer)
        on_stopped = job.get_callback("stopped")
        if on_stopped is not None:
            run_callback(on_stopped.func, on_stopped.timeout, job, connection)
    except Exception:
        logger.exception("The stopped callback of job %s raised", job_id)


def call_exception_handlers(handlers: tuple[ExceptionHandler, ...], job: Job, error: BaseException) -> None:
    """RQ's chain: each handler gets ``(job, type, value, traceback)``; one returning an explicit
    falsy value ends it. A handler that raises is logged and ends it; the job's failure stands."""
    for handler in handlers:
        try:
            carry_on = handler(job, type(error), error, error.__traceback__)
        except Exception:
            logger.exception("Exception handler %r raised for job %s", handler, job.id)
            return
        if carry_on is not None and not carry_on:
            return


def _penalty(settings: RunSettings, seconds: float, job_id: str) -> AbstractContextManager[Any]:
    if settings.death_penalty_class is None:
        return death_penalty(seconds)
    return settings.death_penalty_class(seconds, JobTimeoutException, job_id=job_id)


def taken_timeout(fields: dict[str, bytes]) -> int:
    """The timeout of a taken job, from its hash (-1: none), without loading the job."""
    raw = fields.get("timeout")
    try:
        return int(raw) if raw else DEFAULT_JOB_TIMEOUT
    except ValueError:
        return DEFAULT_JOB_TIMEOUT


def job_with_webhooks(
    job_id: str, fields: dict[str, bytes], connection: Redis, serializer: Serializer
) -> Job | None:
    """The job, for its webhooks, loaded again in the worker of a work horse that ran it (or
    died running it); None if it cannot be loaded."""
    try:
        return _with_webhooks(load_job(job_id, fields, connection, serializer))
    except Exception:
        logger.exception("Job %s: could not be loaded to send its webhooks", job_id)
        return None


def _read_func_name(job: Job) -> str | None:
    """The job's function's name, if its data was decoded (it may be what failed)."""
    name = job._func_name
    return name if isinstance(name, str) else None


def _with_webhooks(job: Job) -> Job | None:
    """``job``, its ``ended_at`` set to now (for its webhooks' payload, as RQ sets it as the job
    ends), if it has webhooks; else None."""
    if not job.webhooks:
        return None
    job.ended_at = utcnow()
    return job


def _error_of_callback(
    job: Job, connection: Redis, error: BaseException, stopped: bool = False
) -> BaseException | None:
    """Runs the failure (or stopped) callback; what it raised, if it did (as RQ, that replaces
    the job's own error as the reason the job failed)."""
    try:
        callback = job.get_callback("stopped" if stopped else "failure")
        if callback is None:
            return None
        if stopped:
            run_callback(callback.func, callback.timeout, job, connection)
        else:
            run_callback(
                callback.func, callback.timeout, job, connection, type(error), error, error.__traceback__
            )
    except BaseException as callback_error:  # as RQ: whatever it raises replaces the reason
        return callback_error
    return None
