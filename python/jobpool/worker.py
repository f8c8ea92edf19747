"""Worker: drains queues in the calling process, with the Rust core taking and recording jobs.

``Worker(queues, connection=...).work(burst=True)`` is RQ's API (as its SimpleWorker: no fork
per job). Each job is one round trip to take (none when the previous finish handed it back)
and one to record. The supervised pool (``jobpool start``) runs this same loop in each child.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any
from uuid import uuid4

from redis import Redis

from . import worker_registration
from .exceptions import RedisUnavailable
from .job_runner import JobStopped, Outcome, run_job
from .queue import Queue
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

# (queue, job id, execution id, heartbeat ttl, job hash), as the core returns a taken job.
Taken = tuple[str, str, str, int, dict[str, bytes]]


class Worker:
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

    def __repr__(self) -> str:
        return f"Worker({self.name!r}, queues={self.queue_names!r})"

    @property
    def key(self) -> str:
        from . import keys

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

    # ---- the loop -------------------------------------------------------------------------------

    def _take(self, wait: float | None) -> Taken | None:
        return self.core.take(self.queue_names, self.name, uuid4().hex, self.heartbeat_ttl, wait)

    def _next_request(self) -> tuple[list[str], str, str, int]:
        return (self.queue_names, self.name, uuid4().hex, self.heartbeat_ttl)

    def _record(self, taken: Taken, outcome: Outcome, take_next: bool) -> Taken | None:
        """Records the outcome of ``taken``; returns the next job when asked for one and waiting."""
        queue, job_id, execution_id, _, _ = taken
        next_request = self._next_request() if take_next else None
        if outcome.succeeded:
            result, next_job = self.core.finish(
                job_id,
                execution_id,
                queue,
                self.name,
                outcome.started_at,
                outcome.working_seconds,
                outcome.return_value,
                self.default_result_ttl,
                next_request,
            )
        else:
            exc_info, exc_string = outcome.traceback
            result, next_job = self.core.fail(
                job_id,
                execution_id,
                queue,
                self.name,
                outcome.started_at,
                outcome.working_seconds,
                "stopped" if outcome.stopped else "failed",
                exc_info,
                exc_string,
                next_request,
            )
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s: %s (%s)", queue, "Job OK" if outcome.succeeded else result, job_id)
        return next_job

    def _perform(self, taken: Taken) -> Outcome:
        queue, job_id, _, _, fields = taken
        if logger.isEnabledFor(logging.INFO):
            description = fields.get("description", b"").decode(errors="replace")
            logger.info("%s: %s (%s)", queue, description, job_id)
        self._in_job = True
        try:
            return run_job(job_id, fields, self.connection, self.serializer)
        finally:
            self._in_job = False

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
        worker_registration.register_birth(self.connection, self.name, self.queue_names, self.worker_ttl + 60)
        previous_handlers = self._install_signal_handlers()
        jobs_done = 0
        try:
            jobs_done = self._loop(burst, max_jobs, max_idle_time)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            worker_registration.register_death(self.connection, self.name, self.queue_names)
        return jobs_done > 0

    def _loop(self, burst: bool, max_jobs: int | None, max_idle_time: float | None) -> int:
        jobs_done = 0
        taken: Taken | None = None
        performed: tuple[Taken, Outcome] | None = None  # run, but not recorded yet
        idle_since = last_beat = time.monotonic()
        backoff = 1.0
        while True:
            try:
                if performed is not None:
                    limit_reached = max_jobs is not None and jobs_done >= max_jobs
                    take_next = not (limit_reached or self._stop_requested)
                    taken = self._record(*performed, take_next=take_next)
                    performed = None
                    idle_since = time.monotonic()
                    if limit_reached:
                        break
                if taken is None:
                    if self._stop_requested:
                        break
                    taken = self._take(None if burst else IDLE_WAIT_SECONDS)
                    backoff = 1.0
                if taken is None:
                    if burst or (
                        max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time
                    ):
                        break
                    if time.monotonic() - last_beat >= WORKER_HEARTBEAT_SECONDS:
                        self.core.heartbeat([], [(self.name, self.worker_ttl + 60)])
                        last_beat = time.monotonic()
                    continue
                performed, taken = (taken, self._perform(taken)), None
                jobs_done += 1
            except RedisUnavailable as error:
                # Taking and recording are safe to repeat: nothing runs twice, nothing is recorded twice.
                logger.warning("Worker %s: %s; retrying in %.0f s", self.name, error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        return jobs_done
