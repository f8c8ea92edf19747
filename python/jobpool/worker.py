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
from .job_runner import JobStopped, Outcome, run_job, stopped_outcome
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
# While jobs take less than this, a pool worker works one step ahead (see Worker._loop).
PREFETCH_BELOW_SECONDS = 0.005

# (queue, job id, execution id, heartbeat ttl, job hash), as the core returns a taken job.
Taken = tuple[str, str, str, int, dict[str, bytes]]
# A job that ran, and how it ended, until its outcome is recorded.
Performed = tuple[Taken, Outcome]
# A take as the core's steps ask for it: (queues, worker, execution id, heartbeat ttl, whether
# it is a take ahead, held until it starts).
TakeRequest = tuple[list[str], str, str, int, bool]
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

    def _take_request(self, held: bool = False) -> TakeRequest:
        execution_id = os.urandom(16).hex()  # as RQ's uuid4().hex, for less
        return (self.queue_names, self.name, execution_id, self.heartbeat_ttl, held)

    def _take(self, wait: float | None) -> Taken | None:
        queues, name, execution_id, ttl, _ = self._take_request()
        return self._owned(self._retrying(lambda: self.core.take(queues, name, execution_id, ttl, wait)))

    def _step(
        self,
        performed: Performed,
        take: TakeRequest | None = None,
        started: Taken | None = None,
        running: bool = False,
        defer: bool = False,
    ) -> Taken | None:
        """Records ``performed`` and, with ``take``, takes the next job, in one round trip;
        ``started`` is a held job that starts now (marked so in the same trip), ``running``
        says a job runs meanwhile. With ``defer`` the step is only sent, and ``_collect``
        returns what it took."""
        (queue, job_id, execution_id, _, _), outcome = performed
        start = (started[1], started[2]) if started is not None else None
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
                    take,
                    defer,
                    start,
                    running,
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
                    take,
                    defer,
                    start,
                    running,
                )
            )
        if step is None:
            return None
        self._log_record(performed, step[0])
        self._freed(performed[0])
        return self._owned(step[1])

    def _send_ahead(self, recorded: Performed | None, take: TakeRequest, started: Taken | None) -> None:
        """Sends, without waiting for the reply, the record of ``recorded`` (if any) and a take
        ahead, as a job starts (``started``, when it was held)."""
        if recorded is not None:
            self._step(recorded, take, started, running=True, defer=True)
            return
        queues, name, execution_id, ttl, _ = take
        self._retrying(lambda: self.core.take(queues, name, execution_id, ttl, None, True, True))

    def _collect(self, recorded: Performed | None) -> Taken | None:
        """What the step sent ahead did: logs its record of ``recorded``, returns the job it took
        ahead (held: not owned until it starts)."""
        outcome, next_job = self._retrying(self.core.collect)
        if recorded is not None:
            self._log_record(recorded, outcome)
            self._freed(recorded[0])
        return next_job

    def _release(self, taken: Taken) -> None:
        """Puts back a job this worker took but never started (it is stopping, or its supervisor
        took it back: then this finds it gone, "stale")."""
        queue, job_id, execution_id, _, _ = taken
        outcome = self._retrying(
            lambda: self.core.fail(job_id, execution_id, queue, self.name, None, 0.0, "released", b"", b"")
        )
        self._freed(taken)
        if outcome is not None and outcome[0] == "released":
            logger.info("%s: released %s, which had not started", queue, job_id)

    def _log_record(self, performed: Performed, recorded: str | None) -> None:
        """The job's one line at INFO: what ran, how it ended and how long it took (its start is
        logged at DEBUG; a line per job costs a no-op job a few per cent)."""
        if logger.isEnabledFor(logging.INFO):
            (queue, job_id, _, _, fields), outcome = performed
            logger.info(
                "%s: %s (%s): %s in %.1f ms",
                queue,
                _description(fields),
                job_id,
                "Job OK" if outcome.succeeded else recorded,
                outcome.working_seconds * 1000,
            )

    def _beat_if_due(self) -> None:
        """Keeps the worker's registry entry alive, busy or idle (never while a step is in flight)."""
        if time.monotonic() - self._last_beat >= WORKER_HEARTBEAT_SECONDS:
            self._retrying(lambda: self.core.heartbeat([], [(self.name, self.worker_ttl + 60)]))
            self._last_beat = time.monotonic()

    # ---- what a supervisor is told of, and holding (nothing, for a worker on its own) -----------

    holds_ahead = False
    """Whether the worker takes its next job while one runs (a pool worker, whose supervisor
    takes a held job back when the running one is slow). A worker on its own never holds."""

    def _ready(self) -> None:
        """Registered, about to take its first job."""

    def _owned(self, taken: Taken | None) -> Taken | None:
        """``taken`` is now this worker's (returned as it is, for chaining)."""
        return taken

    def _hold(self, execution_id: str) -> None:
        """The worker is about to take ``execution_id`` ahead."""

    def _start_held(self, held: Taken) -> bool:
        """Whether the worker may start ``held`` (False: its supervisor took it back)."""
        return True

    def _drop_held(self) -> None:
        """The take ahead brought nothing, or the worker puts its held job back itself."""

    def _starting(self, taken: Taken) -> None:
        """``taken`` starts running."""

    def _check_stop(self, taken: Taken) -> None:
        """Raises JobStopped if ``taken`` was stopped before it began (nothing can stop a job
        of a worker on its own before it begins)."""

    def _freed(self, taken: Taken) -> None:
        """``taken``'s record is written (or it was put back): it is no longer this worker's."""

    def _perform(self, taken: Taken) -> Outcome:
        queue, job_id, _, _, fields = taken
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: %s (%s) starts", queue, _description(fields), job_id)
        started_at, clock = time.time(), time.perf_counter()
        try:
            self._in_job = True  # inside the try: a stop signal from here on is caught
            self._check_stop(taken)
            return run_job(job_id, fields, self.connection, self.serializer)
        except JobStopped as stop:  # before the job began, or as it ended: outside the job itself
            return stopped_outcome(stop, started_at, time.perf_counter() - clock)
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

        Recording a job and taking the next is one round trip. A pool worker whose jobs are quick
        (under PREFETCH_BELOW_SECONDS) also works one step ahead: as a job starts, the previous
        job's record and a take ahead go out together, and their reply is read once the job has
        run, so Redis and the network work while Python does. The job taken ahead is *held*
        until it starts; if the running job turns out slow, the supervisor takes the held one
        back (see ``ledger`` in the Rust core), and the worker never starts a job taken back."""
        jobs_done = 0
        current: Taken | None = None  # taken, to run now
        held = False  # current was taken ahead, and is held until it starts
        performed: Performed | None = None  # ran, not recorded yet
        quick = False
        idle_since = time.monotonic()
        self._last_beat = idle_since
        while True:
            may_take = not self._stop_requested and (max_jobs is None or jobs_done < max_jobs)
            if current is not None and held and (self._stop_requested or not self._start_held(current)):
                self._drop_held()
                self._release(current)
                current, held = None, False
            if current is None:
                if performed is not None:
                    take = self._take_request() if may_take else None
                    current, performed = self._step(performed, take), None
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
            elif held:
                self._owned(current)
            self._beat_if_due()
            ahead = self.holds_ahead and quick and may_take and (max_jobs is None or jobs_done + 1 < max_jobs)
            recorded, performed = performed, None
            started = current if held else None
            # The previous job's record goes out before this job is reported started: a worker
            # that dies in between leaves a record written and this job not begun, and its
            # supervisor settles both right (see Supervisor._settle).
            if ahead:
                take = self._take_request(held=True)
                self._hold(take[2])
                self._send_ahead(recorded, take, started)
            elif recorded is not None:
                self._step(recorded, None, started, running=True)
            self._starting(current)
            outcome = self._perform(current)
            jobs_done += 1
            performed = (current, outcome)
            current, held = None, False
            if ahead:
                current = self._collect(recorded)
                held = current is not None
                if current is None:
                    self._drop_held()
            quick = outcome.working_seconds < PREFETCH_BELOW_SECONDS
            idle_since = time.monotonic()


def _description(fields: dict[str, bytes]) -> str:
    return fields.get("description", b"").decode(errors="replace")
