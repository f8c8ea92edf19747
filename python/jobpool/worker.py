"""Worker: drains queues in the calling process, with the Rust core taking and recording jobs.

``Worker(queues, connection=...).work(burst=True)`` is RQ's API (as its SimpleWorker: no fork
per job). Recording a job and taking the next is one round trip. The supervised pool
(``jobpool start``) runs this same loop in each child.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, TypeVar
from uuid import uuid4

from redis import Redis

from . import keys, worker_registration
from .exceptions import RedisUnavailable
from .job_runner import DEFAULT_JOB_TIMEOUT, JobStopped, Outcome, run_job
from .queue import Queue
from .recovery import recover_abandoned
from .redis_target import connect_core
from .serializers import Serializer, resolve_serializer

logger = logging.getLogger("jobpool.worker")

DEFAULT_RESULT_TTL = 500
DEFAULT_WORKER_TTL = 420
# The longest a take blocks when every queue is empty, so signals and heartbeats come through.
IDLE_WAIT_SECONDS = 1.0
# How often an idle worker refreshes its registry entry.
WORKER_HEARTBEAT_SECONDS = 15.0
# The longest back-off between attempts while Redis is unreachable.
MAX_BACKOFF_SECONDS = 60.0
# While jobs take less than this, the worker works one step ahead (see Worker._loop).
PREFETCH_BELOW_SECONDS = 0.005

# (queue, job id, execution id, heartbeat ttl, job hash), as the core returns a taken job.
Taken = tuple[str, str, str, int, dict[str, bytes]]
# A job that ran, and how it ended, until its outcome is recorded.
Performed = tuple[Taken, Outcome]
# A take as the core's steps ask for it: (queues, worker, execution id, heartbeat ttl, seconds
# the job may be held before it starts).
TakeRequest = tuple[list[str], str, str, int, int]
T = TypeVar("T")


class Worker:
    # A worker on its own recovers abandoned jobs as it starts, as RQ's do; in a pool, the
    # supervisor's maintenance does.
    recovers_at_start = True

    def __init__(
        self,
        queues: Iterable[Queue | str] | Queue | str,
        name: str | None = None,
        default_result_ttl: int = DEFAULT_RESULT_TTL,
        connection: Redis | None = None,
        worker_ttl: int | None = None,
        serializer: Serializer | str | None = None,
        heartbeat_ttl: int = 0,
        **rq_options: Any,
    ):
        """``heartbeat_ttl`` is how long an execution stays alive without a heartbeat; 0 (alone,
        where nothing heartbeats a busy worker) makes it the job's timeout plus 60 seconds, as
        RQ's SimpleWorker. RQ's other options are accepted and ignored."""
        listed = [queues] if isinstance(queues, (Queue, str)) else list(queues)
        if not listed:
            raise ValueError("A worker needs at least one queue")
        first_queue = next((q for q in listed if isinstance(q, Queue)), None)
        if connection is None and first_queue is not None:
            connection = first_queue.connection
        if connection is None:
            raise TypeError("Worker needs a Redis connection (or Queue objects that have one)")
        self.connection = connection
        self.queue_names = [q.name if isinstance(q, Queue) else q for q in listed]
        self.serializer = resolve_serializer(serializer or (first_queue.serializer if first_queue else None))
        self.name = name or uuid4().hex
        self.default_result_ttl = default_result_ttl
        self.worker_ttl = worker_ttl or DEFAULT_WORKER_TTL
        self.heartbeat_ttl = heartbeat_ttl
        self.core = connect_core(connection)
        self._stop_requested = False
        self._in_job = False
        self._last_beat = 0.0

    def __repr__(self) -> str:
        return f"Worker({self.name!r}, queues={self.queue_names!r})"

    @property
    def key(self) -> str:
        return keys.worker(self.name)

    # ---- signals ------------------------------------------------------------------------------

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """First request: finish the running job, then stop (warm). Second, while a job runs:
        stop the job (it is recorded as stopped) and exit (cold)."""
        if self._stop_requested and self._in_job:
            logger.warning("Worker %s: cold shutdown, stopping the running job", self.name)
            raise JobStopped("cold shutdown")
        self._stop_requested = True
        logger.info("Worker %s: warm shutdown requested", self.name)

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self.request_stop)
        return previous

    # ---- calls into the core ---------------------------------------------------------------------

    def _retrying(self, call: Callable[[], T]) -> T:
        """``call()``, repeated with back-off while Redis is unreachable. Every core call is safe
        to repeat: nothing is taken twice, nothing is recorded twice."""
        backoff = 1.0
        while True:
            try:
                return call()
            except RedisUnavailable as error:
                logger.warning("Worker %s: %s; retrying in %.0f s", self.name, error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _take_request(self, hold_seconds: int = 0) -> TakeRequest:
        execution_id = os.urandom(16).hex()  # as RQ's uuid4().hex, for less
        return (self.queue_names, self.name, execution_id, self.heartbeat_ttl, hold_seconds)

    def _take(self, wait: float | None) -> Taken | None:
        queues, name, execution_id, ttl, _ = self._take_request()
        return self._owned(self._retrying(lambda: self.core.take(queues, name, execution_id, ttl, wait)))

    def _step(
        self, performed: Performed | None, take_next: bool, defer: bool, hold_seconds: int = 0
    ) -> Taken | None:
        """Records ``performed`` (if any) and, with ``take_next``, takes the next job, in one round
        trip. With ``defer`` the step is only sent, and ``_collect`` returns what it took, which
        may be held ``hold_seconds`` before it starts."""
        request = self._take_request(hold_seconds) if take_next else None
        if performed is None:
            if request is not None:
                queues, name, execution_id, ttl, hold = request
                self._retrying(lambda: self.core.take(queues, name, execution_id, ttl, None, defer, hold))
            return None
        (queue, job_id, execution_id, _, _), outcome = performed
        if outcome.succeeded:
            step = self._retrying(
                lambda: self.core.finish(
                    job_id,
                    execution_id,
                    queue,
                    self.name,
                    outcome.started_at,
                    outcome.working_seconds,
                    outcome.return_value,
                    self.default_result_ttl,
                    request,
                    defer,
                )
            )
        else:
            exc_info, exc_string = outcome.traceback
            failure = "stopped" if outcome.stopped else "failed"
            step = self._retrying(
                lambda: self.core.fail(
                    job_id,
                    execution_id,
                    queue,
                    self.name,
                    outcome.started_at,
                    outcome.working_seconds,
                    failure,
                    exc_info,
                    exc_string,
                    request,
                    defer,
                )
            )
        if step is None:
            return None
        self._log_record(performed, step[0])
        self._freed(performed[0])
        return self._owned(step[1])

    def _collect(self, recorded: Performed | None) -> Taken | None:
        """What the deferred step did: logs its record of ``recorded``, returns the job it took."""
        outcome, next_job = self._retrying(self.core.collect)
        if recorded is not None:
            self._log_record(recorded, outcome)
            self._freed(recorded[0])
        return self._owned(next_job)

    def _release(self, held: Taken) -> None:
        """Puts back a job this worker held but never started (it is stopping)."""
        queue, job_id, execution_id, _, _ = held
        self._retrying(
            lambda: self.core.fail(job_id, execution_id, queue, self.name, None, 0.0, "released", b"", b"")
        )
        self._freed(held)
        logger.info("%s: released %s, which had not started", queue, job_id)

    def _log_record(self, performed: Performed, recorded: str | None) -> None:
        if logger.isEnabledFor(logging.INFO):
            (queue, job_id, *_), outcome = performed
            logger.info("%s: %s (%s)", queue, "Job OK" if outcome.succeeded else recorded, job_id)

    def _beat_if_due(self) -> None:
        """Keeps the worker's registry entry alive, busy or idle (never while a step is in flight)."""
        if time.monotonic() - self._last_beat >= WORKER_HEARTBEAT_SECONDS:
            self._retrying(lambda: self.core.heartbeat([], [(self.name, self.worker_ttl + 60)]))
            self._last_beat = time.monotonic()

    # ---- what a supervisor is told of (nothing, for a worker on its own) -----------------------------

    def _ready(self) -> None:
        """Registered, about to take its first job."""

    def _owned(self, taken: Taken | None) -> Taken | None:
        """``taken`` is now this worker's (returned as it is, for chaining)."""
        return taken

    def _starting(self, taken: Taken) -> None:
        """``taken`` starts running."""

    def _freed(self, taken: Taken) -> None:
        """``taken``'s record is written (or it was put back): it is no longer this worker's."""

    def _perform(self, taken: Taken) -> Outcome:
        self._starting(taken)
        queue, job_id, _, _, fields = taken
        if logger.isEnabledFor(logging.INFO):
            description = fields.get("description", b"").decode(errors="replace")
            logger.info("%s: %s (%s)", queue, description, job_id)
        self._in_job = True
        try:
            return run_job(job_id, fields, self.connection, self.serializer)
        finally:
            self._in_job = False

    # ---- the loop -------------------------------------------------------------------------------

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        max_jobs: int | None = None,
        max_idle_time: float | None = None,
        **rq_options: Any,
    ) -> bool:
        """Runs jobs until stopped; with ``burst``, until every queue is empty. Returns whether
        it ran any job."""
        if logging_level:
            logging.basicConfig(level=logging_level)
        worker_registration.register_birth(
            self.connection,
            self.name,
            self.queue_names,
            self.worker_ttl + 60,
            replace=not self.recovers_at_start,
        )
        if self.recovers_at_start:
            recover_abandoned(self.core, self.queue_names)  # as RQ's workers clean up as they start
        self._ready()
        previous_handlers = self._install_signal_handlers()
        try:
            jobs_done = self._loop(burst, max_jobs, max_idle_time)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            worker_registration.register_death(self.connection, self.name, self.queue_names)
        return jobs_done > 0

    def _loop(self, burst: bool, max_jobs: int | None, max_idle_time: float | None) -> int:
        """Take, run, record; returns how many jobs ran.

        While jobs are quick (under PREFETCH_BELOW_SECONDS) the worker works one step ahead: as
        a job starts, the previous job's record and the next take go out together, and their
        reply is read once the job has run, so Redis and the network work while Python does.
        One job is then held (taken, marked started) while the one before it runs; after a slow
        job the worker goes back to one job at a time."""
        jobs_done = 0
        current: Taken | None = None  # taken, to run now
        held = False  # current was taken one step ahead, while the job before it ran
        performed: Performed | None = None  # ran, not recorded yet
        quick = False
        idle_since = time.monotonic()
        self._last_beat = idle_since
        while True:
            may_take = not self._stop_requested and (max_jobs is None or jobs_done < max_jobs)
            if current is not None and held and self._stop_requested:
                self._release(current)
                current = None
            if current is None:
                if performed is not None:
                    current, performed = self._step(performed, take_next=may_take, defer=False), None
                elif may_take:
                    current = self._take(None if burst else IDLE_WAIT_SECONDS)
                if current is None:
                    idle_too_long = (
                        max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time
                    )
                    if not may_take or burst or idle_too_long:
                        return jobs_done
                    self._beat_if_due()
                    continue
            self._beat_if_due()
            # The job taken ahead waits while this one runs: at most this job's timeout.
            hold_seconds = _timeout_of(current)
            ahead = (
                quick
                and may_take
                and hold_seconds is not None
                and (max_jobs is None or jobs_done + 1 < max_jobs)
            )
            recorded, performed = performed, None
            if ahead:
                self._step(recorded, take_next=True, defer=True, hold_seconds=hold_seconds or 0)
            elif recorded is not None:
                self._step(recorded, take_next=False, defer=False)
            outcome = self._perform(current)
            jobs_done += 1
            performed = (current, outcome)
            current = self._collect(recorded) if ahead else None
            held = current is not None
            quick = outcome.working_seconds < PREFETCH_BELOW_SECONDS
            idle_since = time.monotonic()


def _timeout_of(taken: Taken) -> int | None:
    """The longest the job may run, from its hash (as the worker applies it); None when it has
    no limit (or an unreadable one)."""
    raw = taken[4].get("timeout")
    try:
        timeout = int(raw) if raw else DEFAULT_JOB_TIMEOUT
    except ValueError:
        return None
    return timeout if timeout > 0 else None
