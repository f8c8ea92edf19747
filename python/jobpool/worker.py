"""Workers on their own: take, run, record, with the Rust core taking and recording jobs.

``Worker(queues, connection=...).work(burst=True)`` is RQ's API. As RQ's, ``Worker`` runs each
job in a forked work horse (a job that crashes its process fails alone: ``work_horse``), and
``SimpleWorker`` runs jobs in its own process, which is faster. Recording a job and taking the
next is one round trip. The supervised pool (``jobpool start``) runs SimpleWorker's loop in each
child: its supervisor gives it the isolation a work horse would.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, TypeVar
from uuid import uuid4

from redis import Redis
from redis.exceptions import RedisError

from . import job_log, log_lines, worker_registration
from ._native import Ending, StepResult, TakenJob, Takes
from .exceptions import RedisUnavailable
from .group import MAINTENANCE_INTERVAL as GROUP_MAINTENANCE_INTERVAL
from .group import clean_groups_if_due
from .job import Job
from .job_log import description_of as _description
from .job_runner import (
    DEFAULT_SETTINGS,
    ExceptionHandler,
    JobKilled,
    JobStopped,
    Outcome,
    RunSettings,
    job_with_webhooks,
    run_job,
    stopped_job_callback,
    stopped_outcome,
    taken_timeout,
)
from .queue import Queue
from .recovery import recover_abandoned
from .redis_target import connect_core
from .serializers import Serializer, resolve_serializer
from .timeouts import BaseDeathPenalty, UnixSignalDeathPenalty
from .webhook import WebhookSender
from .work_horse import run_in_horse
from .worker_commands import CommandListener
from .worker_hooks import Performed, WorkerHooks
from .worker_info import WorkerInfo, WorkerStatus

__all__ = ["BaseWorker", "Performed", "SimpleWorker", "Worker", "WorkerStatus"]

logger = logging.getLogger("jobpool.worker")

DEFAULT_RESULT_TTL = 500
DEFAULT_WORKER_TTL = 420
# The longest a take blocks when every queue is empty, so signals and heartbeats come through.
IDLE_WAIT_SECONDS = 1.0
# How often an idle worker refreshes its registry entry.
WORKER_HEARTBEAT_SECONDS = 15.0
# The longest back-off between attempts while Redis is unreachable.
MAX_BACKOFF_SECONDS = 60.0
# While jobs take less than this, a pool worker works ahead (see Worker._loop).
PREFETCH_BELOW_SECONDS = 0.005
# A batch taken ahead holds about this much work: as many jobs as recent ones take to fill it,
# within the worker's cap (--prefetch). Sub-millisecond jobs come in batches; 2 ms ones one at a time.
BATCH_SECONDS = 0.002

# The longest a stopping worker waits for the webhooks it has not sent yet.
WEBHOOKS_DRAIN_SECONDS = 30.0

T = TypeVar("T")


class BaseWorker(WorkerInfo):
    """The loop shared by ``Worker`` and ``SimpleWorker`` (and the pool's workers); how a job
    runs (``_execute``) is theirs."""

    # RQ's default, whose timer jobpool's ``death_penalty`` runs cheaper; a subclass that sets
    # another (as RQ's users do) has its jobs run under that one, as RQ runs them.
    death_penalty_class: type[BaseDeathPenalty] = UnixSignalDeathPenalty
    # A worker on its own recovers abandoned jobs as it starts, as RQ's do; in a pool, the
    # supervisor's maintenance does.
    recovers_at_start = True
    # A worker on its own listens for RQ's worker commands on its channel; a pool's supervisor
    # listens for its workers.
    hears_commands = True

    def __init__(
        self,
        queues: Iterable[Queue | str] | Queue | str,
        name: str | None = None,
        default_result_ttl: int = DEFAULT_RESULT_TTL,
        connection: Redis | None = None,
        worker_ttl: int | None = None,
        serializer: Serializer | str | None = None,
        heartbeat_ttl: int = 0,
        job_class: type[Job] | None = None,
        queue_class: type[Queue] | None = None,
        prepare_for_work: bool = True,
        exception_handlers: ExceptionHandler | Iterable[ExceptionHandler] | None = None,
        disable_default_exception_handler: bool = False,
        **rq_options: Any,
    ):
        """``heartbeat_ttl`` is how long an execution stays alive without a heartbeat; 0 (alone,
        where nothing heartbeats a busy worker) makes it the job's timeout plus 60 seconds, as
        RQ's SimpleWorker. ``prepare_for_work=False`` makes a worker to be read from the
        registry (``find_by_key``), as in RQ. ``exception_handlers`` are RQ's (see
        ``push_exc_handler``). ``disable_default_exception_handler`` is accepted, but a failed
        job always goes to the failed registry (see docs/migrating-from-rq.md). RQ's other
        options are accepted and ignored."""
        listed = [queues] if isinstance(queues, (Queue, str)) else list(queues)
        if not listed and prepare_for_work:
            raise ValueError("A worker needs at least one queue")
        first_queue = next((q for q in listed if isinstance(q, Queue)), None)
        if connection is None and first_queue is not None:
            connection = first_queue.connection
        if connection is None:
            raise TypeError("Worker needs a Redis connection (or Queue objects that have one)")
        self.connection = connection
        self.job_class = job_class or self.job_class
        self.queue_class = queue_class or self.queue_class
        self.serializer = resolve_serializer(serializer or (first_queue.serializer if first_queue else None))
        self.queues = [
            q
            if isinstance(q, Queue)
            else self.queue_class(q, connection=connection, serializer=self.serializer)
            for q in listed
        ]
        self._queue_names = self.queue_names()  # the takes' (a list made once, not once a job)
        self.name = name or uuid4().hex
        self.default_result_ttl = default_result_ttl
        self.worker_ttl = worker_ttl or DEFAULT_WORKER_TTL
        self.heartbeat_ttl = heartbeat_ttl
        self.core = connect_core(connection)
        self._stop_requested = False
        self._in_job = False
        self._last_beat = 0.0
        self._groups_cleaned_at = time.monotonic()
        self._unwritten: list[Performed] = []  # jobs that ran, their records not written yet
        self._may_write_during_job = False
        self._current: TakenJob | None = None  # taken, its record not written yet
        self.hooks: WorkerHooks = WorkerHooks()  # a pool's worker has its supervisor's
        self._stop_request: tuple[str, bool] | None = None  # (execution id, kill) from a command
        self.disable_default_exception_handler = disable_default_exception_handler
        self._exc_handlers: list[ExceptionHandler] = (
            []
            if exception_handlers is None
            else [exception_handlers]
            if callable(exception_handlers)
            else list(exception_handlers)
        )
        self._webhooks = WebhookSender()
        self._init_info(prepare_for_work)

    def __repr__(self) -> str:
        return f"Worker({self.name!r}, queues={self.queue_names()!r})"

    def push_exc_handler(self, handler: ExceptionHandler) -> None:
        """Adds ``handler(job, exc_type, exc_value, traceback)`` to those called, in order, in the
        process that ran a job that failed (after its failure callback, as RQ); one returning an
        explicit falsy value (not None) ends the chain."""
        self._exc_handlers.append(handler)

    def pop_exc_handler(self) -> ExceptionHandler:
        """Removes and returns the handler added last."""
        return self._exc_handlers.pop()

    def _run_settings(self) -> RunSettings:
        """How this worker's jobs run: its death penalty class and exception handlers."""
        penalty = self.death_penalty_class
        if penalty is UnixSignalDeathPenalty and not self._exc_handlers:
            return DEFAULT_SETTINGS
        return RunSettings(None if penalty is UnixSignalDeathPenalty else penalty, tuple(self._exc_handlers))

    # ---- signals ------------------------------------------------------------------------------

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """First request: finish the running job, then stop (warm). Second, while a job runs:
        stop the job (it is recorded as stopped) and exit (cold)."""
        if self._stop_requested and self._in_job:
            logger.warning("Worker %s: cold shutdown, stopping the running job", self.name)
            raise JobStopped("cold shutdown")
        self._stop_requested = True
        logger.info("Worker %s: warm shutdown requested", self.name)

    def stop_on_command(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """SIGUSR2 from the worker's command listener (a stop-job, stop-execution or kill-horse
        command): the running job ends as stopped, or as failed for a kill, if it is the
        execution the command named; a job that has ended meanwhile is left be."""
        request, current = self._stop_request, self._current
        if self._in_job and request is not None and current is not None:
            self._raise_if_requested(request, current)

    def _raise_if_requested(self, request: tuple[str, bool], taken: TakenJob) -> None:
        execution_id, kill = request
        if execution_id == taken.execution_id:
            self._stop_request = None
            raise JobKilled("kill-horse command") if kill else JobStopped("stop-job command")

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self.request_stop)
        if self.hears_commands:
            previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self.stop_on_command)
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

    def _takes(self, held: bool = False, count: int = 1) -> Takes:
        execution_ids = [_execution_id() for _ in range(count)]
        return Takes(self._queue_names, self.name, execution_ids, self.heartbeat_ttl, held, self._batches)

    def _take(self, wait: float | None) -> TakenJob | None:
        execution_id = _execution_id()
        return self._owned(
            self._retrying(
                lambda: self.core.take(
                    self._queue_names, self.name, execution_id, self.heartbeat_ttl, wait, self._batches
                )
            )
        )

    @property
    def _batches(self) -> bool:
        """Whether the worker works in batches: it may start a job before the last one's record
        is written, so it takes every job marked held and writes its start with its record
        (recovery then puts back, rather than fails, a job whose record it never wrote)."""
        return self.prefetch > 0

    def _step(
        self,
        recorded: list[Performed],
        takes: Takes | None,
        running: bool = False,
        defer: bool = False,
    ) -> list[TakenJob]:
        """Records the jobs of ``recorded`` (in the order they ran) and, with ``takes``, takes
        jobs, in one round trip; ``running`` says a job runs meanwhile. Returns the jobs taken;
        with ``defer`` the step is only sent, and ``_collect`` returns them."""
        endings = [ending_of(performed) for performed in recorded]
        step = self._retrying(
            lambda: self.core.step(
                self.name, endings, takes, self.default_result_ttl, running, defer, self._batches
            )
        )
        return [] if step is None else self._recorded(recorded, step)

    def _collect(self, recorded: list[Performed]) -> list[TakenJob]:
        """What the step sent ahead did: logs its records of ``recorded``, returns the jobs it took
        ahead (held: not owned until each starts)."""
        return self._recorded(recorded, self._retrying(self.core.collect))

    def _recorded(self, recorded: list[Performed], step: StepResult) -> list[TakenJob]:
        self.hooks.written(recorded)
        with log_lines.written_together():
            for performed, outcome in zip(recorded, step.outcomes, strict=True):
                self._log_record(performed, outcome)
                self._freed(performed[0])
                if performed[1].job is not None:
                    self._send_webhooks(performed[1], outcome)
        return step.taken

    def _send_webhooks(self, outcome: Outcome, recorded: str | None) -> None:
        """Hands the job's webhooks for how its ending was recorded (written: finished, or
        failed) to the sender thread; none for an ending not written now (a job deleted or
        canceled as it ran, a record a repeated step finds written)."""
        job = outcome.job
        if job is None:
            return
        if recorded == "finished":
            self._webhooks.send(job, "finished")
        elif recorded == "failed":
            self._webhooks.send(job, "failed", "" if outcome.retry_returned else outcome.reason)

    def _release(self, taken: TakenJob) -> None:
        """Puts back a job taken but never started, as the worker stops ("stale": taken back)."""
        outcome = self._retrying(
            lambda: self.core.release(self.name, taken.job_id, taken.execution_id, taken.queue)
        )
        self._freed(taken)
        if outcome == "released":
            logger.info("%s: released %s, which had not started", taken.queue, taken.job_id)

    def _log_record(self, performed: Performed, recorded: str | None) -> None:
        """The job's line at INFO: what ran, where, how it ended and how long it took (its start
        is logged at DEBUG). A success's line is written cheaply (a line per job costs a no-op
        job a few per cent); a job that did not succeed says why (``job_log``)."""
        taken, outcome = performed
        if not outcome.succeeded:
            job_log.log_unsuccessful(logger, self._log_record, self.name, taken, outcome, recorded)
        elif logger.isEnabledFor(logging.INFO):
            milliseconds = outcome.working_seconds * 1000
            log_lines.job_line(
                logger,
                self._log_record,
                (taken.job_id, taken.queue, outcome.func_name, recorded, milliseconds, self.name, None),
                "%s: %s (%s): Job OK in %.1f ms",
                taken.queue,
                _description(taken.fields),
                taken.job_id,
                milliseconds,
            )

    def _beat_if_due(self) -> None:
        """Keeps the worker's registry entry alive, busy or idle (never while a step is in flight),
        and cleans the groups when they are due."""
        if time.monotonic() - self._last_beat >= WORKER_HEARTBEAT_SECONDS:
            self._retrying(lambda: self.core.heartbeat([], [(self.name, self.worker_ttl + 60)]))
            self._last_beat = time.monotonic()
            if self._last_beat - self._groups_cleaned_at >= GROUP_MAINTENANCE_INTERVAL:
                self._clean_groups()

    def _clean_groups(self) -> None:
        """As RQ's worker maintenance: the groups' expired job ids and empty groups are dropped,
        by one worker (or pool) of a deployment at a time, every GROUP_MAINTENANCE_INTERVAL."""
        self._groups_cleaned_at = time.monotonic()
        try:
            clean_groups_if_due(self.connection)
        except RedisError as error:  # a later maintenance does it
            logger.warning("Worker %s: could not clean the groups: %s", self.name, error)

    # ---- what a worker's owner follows (see worker_hooks), and holding ---------------------------

    prefetch = 0
    """The most jobs the worker takes ahead while one runs (a pool worker's --prefetch, whose
    supervisor takes them back when the running one is slow). A worker on its own never holds."""

    def _owned(self, taken: TakenJob | None) -> TakenJob | None:
        """``taken`` is now this worker's (returned as it is, for chaining): the job a command
        can stop, until its record is written."""
        self._current = taken
        if taken is not None:
            self.hooks.owned(taken)
        return taken

    def _check_stop(self, taken: TakenJob) -> None:
        """Raises JobStopped (JobKilled) if a command stopped (killed) ``taken`` before it
        began, or its owner did."""
        if self._stop_request is not None:
            self._raise_if_requested(self._stop_request, taken)
        self.hooks.check_stop(taken)

    def _freed(self, taken: TakenJob) -> None:
        """``taken``'s record is written (or it was put back): it is no longer this worker's."""
        if self._current is taken:
            self._current = None
        self.hooks.freed(taken)

    def _perform(self, taken: TakenJob) -> Outcome:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: %s (%s) starts", taken.queue, _description(taken.fields), taken.job_id)
        started_at, clock = time.time(), time.perf_counter()
        try:
            self._in_job = True  # inside the try: a stop signal from here on is caught
            self._check_stop(taken)
            return self._execute(taken)
        except JobStopped as stop:  # before the job began, or as it ended: outside the job itself
            return stopped_outcome(stop, started_at, time.perf_counter() - clock)
        finally:
            self._in_job = False

    def _execute(self, taken: TakenJob) -> Outcome:
        """Runs ``taken``; JobStopped raised meanwhile (by a signal handler) stops it."""
        raise NotImplementedError

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
        self.ip_address = worker_registration.register_birth(
            self.connection,
            self.name,
            self._queue_names,
            self.worker_ttl + 60,
            replace=not self.recovers_at_start,
        )
        if self.recovers_at_start:
            # as RQ's workers clean up as they start (abandoned jobs' failure callbacks too)
            recover_abandoned(self.connection, self._queue_names, core=self.core, serializer=self.serializer)
            self._clean_groups()
        self.hooks.ready()
        previous_handlers = self._install_signal_handlers()
        listener: CommandListener | None = None
        try:
            if self.hears_commands:  # subscribed before the first take: no command goes unheard
                listener = CommandListener(self, threading.main_thread())
            jobs_done = self._loop(burst, max_jobs, max_idle_time)
        finally:
            self._webhooks.drain(WEBHOOKS_DRAIN_SECONDS)
            if listener is not None:
                listener.close()  # it signals no more: the handlers can go
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            worker_registration.register_death(self.connection, self.name, self._queue_names)
        return jobs_done > 0

    def _loop(self, burst: bool, max_jobs: int | None, max_idle_time: float | None) -> int:
        """Take, run, record; returns how many jobs ran.

        Recording jobs and taking the next is one round trip. A pool worker whose jobs are quick
        (under PREFETCH_BELOW_SECONDS) also works ahead: as the last job it holds starts, the
        records of the jobs before it and a take of the next batch go out together, and their
        reply is read once the job has run, so Redis and the network work while Python does.
        A batch is as large as the recent jobs are quick (``_batch_size``). The jobs taken ahead
        are *held* until each starts; if the running job turns out slow, the supervisor takes
        the rest back (see ``ledger`` in the Rust core), and the worker never starts a job taken
        back."""
        jobs_done = 0
        held: deque[TakenJob] = deque()  # taken ahead, to start in this order
        recent_seconds: float | None = None  # how long recent jobs ran (a moving average)
        idle_since = time.monotonic()
        self._last_beat = idle_since
        while True:
            may_take = not self._stop_requested and (max_jobs is None or jobs_done < max_jobs)
            current: TakenJob | None = None
            if held:
                if not self._stop_requested and self.hooks.start_held():
                    current = held.popleft()
                    self._owned(current)
                else:
                    self._put_back(held)
            if current is None:
                if self._unwritten:
                    taken = self._write(self._takes() if may_take else None)
                    current = self._owned(taken[0]) if taken else None
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
            ahead = 0 if held else self._batch_size(recent_seconds, jobs_done, max_jobs, may_take)
            # What ran before this job is recorded before it is reported started (or kept in the
            # ledger, in a batch): a worker that dies in between leaves those records written and
            # this job not begun, and its supervisor settles both right (see pool/settling.py).
            sent_ahead: list[Performed] = []
            if ahead:
                takes = self._takes(held=True, count=ahead)
                self.hooks.hold(takes.execution_ids)
                sent_ahead, self._unwritten = self._unwritten, []
                self._step(sent_ahead, takes, running=True, defer=True)
            elif not held and self._unwritten:
                self._write(None, running=True)  # this job may run long
            self.hooks.starting(current)
            self._may_write_during_job = not ahead  # no step in flight: see _write_during_job
            try:
                outcome = self._perform(current)
            finally:
                self._may_write_during_job = False
            jobs_done += 1
            self._unwritten.append((current, outcome))
            kept = self.hooks.keep_unrecorded(self._unwritten[-1])
            if ahead:
                taken = self._collect(sent_ahead)
                held.extend(taken)
                if len(taken) < ahead:
                    self.hooks.shrink_held(len(taken))
            if held and not kept:  # too big to keep until the batch's step: written now
                self._write(None, running=True)
            seconds = outcome.working_seconds
            recent_seconds = (
                seconds if recent_seconds is None else max(seconds, (recent_seconds + seconds) / 2)
            )
            idle_since = time.monotonic()

    def _write(self, takes: Takes | None, running: bool = False) -> list[TakenJob]:
        """Writes the records not written yet, with ``takes`` if given, in one round trip;
        returns the jobs taken."""
        unwritten, self._unwritten = self._unwritten, []
        return self._step(unwritten, takes, running=running)

    def _write_during_job(self) -> None:
        """Writes, while a job of a batch runs, the records the batch holds back for its next
        step: the job turned out slow (its supervisor says so as it takes back the jobs held
        behind it), and the jobs before it must not wait for it to end. Called from a
        signal handler inside the job: one attempt, and never an exception into the job."""
        if not (self._in_job and self._may_write_during_job and self._unwritten):
            return
        unwritten = self._unwritten
        endings = [ending_of(performed) for performed in unwritten]
        try:
            step = self.core.step(
                self.name, endings, None, self.default_result_ttl, True, False, self._batches
            )
        except Exception as error:  # the batch's step writes them later
            logger.warning("Worker %s: could not write finished jobs' records now: %s", self.name, error)
            return
        if step is not None:
            self._unwritten = []
            self._recorded(unwritten, step)

    def _batch_size(
        self, recent_seconds: float | None, jobs_done: int, max_jobs: int | None, may_take: bool
    ) -> int:
        """How many jobs to take ahead as the next job starts: none for a worker that never holds
        (alone) or is stopping, or while recent jobs are slow; else as many as fill
        BATCH_SECONDS at their pace, within ``prefetch`` and --max-jobs."""
        if not may_take or self.prefetch <= 0 or recent_seconds is None:
            return 0
        if recent_seconds >= PREFETCH_BELOW_SECONDS:
            return 0
        size = min(self.prefetch, max(1, int(BATCH_SECONDS / max(recent_seconds, 1e-6))))
        if max_jobs is not None:
            size = min(size, max_jobs - jobs_done - 1)
        return max(size, 0)

    def _put_back(self, held: deque[TakenJob]) -> None:
        """Puts back the jobs this worker holds and will not start, unless its supervisor took
        them back first (the ledger says which): then it puts them back itself."""
        if self.hooks.drop_held():
            while held:
                self._release(held.pop())  # each to the front of its queue: the last first
        held.clear()


class SimpleWorker(BaseWorker):
    """RQ's SimpleWorker: runs each job in its own process (no fork a job)."""

    def _execute(self, taken: TakenJob) -> Outcome:
        return run_job(taken.job_id, taken.fields, self.connection, self.serializer, self._run_settings())


class Worker(BaseWorker):
    """RQ's Worker: runs each job in a work horse forked for it, so a job that crashes or
    ``os._exit``s its process, or is killed (by the OOM killer, a kill-horse command, a stop-job
    command, or past its timeout), fails alone, and the worker goes on."""

    def _execute(self, taken: TakenJob) -> Outcome:
        settings = self._run_settings()
        timeout = taken_timeout(taken.fields)

        def in_horse() -> Outcome:
            outcome = run_job(taken.job_id, taken.fields, self.connection, self.serializer, settings)
            outcome.job = None  # it holds a connection: the worker loads it again if need be
            return outcome

        try:
            outcome = run_in_horse(in_horse, None if timeout < 0 else timeout, self._beat_if_due)
        except JobStopped as stop:  # its horse is gone: the stopped callback runs here, as RQ's
            if not isinstance(stop, JobKilled):
                stopped_job_callback(taken.job_id, taken.fields, self.connection, self.serializer)
            raise
        if not outcome.stopped and taken.fields.get("webhooks"):
            outcome.job = job_with_webhooks(taken.job_id, taken.fields, self.connection, self.serializer)
        return outcome


def _execution_id() -> str:
    return os.urandom(16).hex()  # as RQ's uuid4().hex, for less


def ending_of(performed: Performed) -> Ending:
    """How the core records a job that ran."""
    taken, outcome = performed
    execution = (taken.job_id, taken.execution_id, taken.queue, outcome.started_at, outcome.working_seconds)
    if outcome.retry_returned:
        again = outcome.again
        retry = (again.number_of_retries, again.interval, again.at_front) if again else None
        return Ending(
            *execution, "retry" if again else "max_retries_exceeded", outcome.return_value, retry=retry
        )
    if outcome.succeeded:
        return Ending(*execution, None, outcome.return_value)
    exc_info, exc_string = outcome.traceback
    return Ending(*execution, "stopped" if outcome.stopped else "failed", None, exc_info, exc_string)
