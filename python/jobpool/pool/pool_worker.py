"""A worker process of the pool: the Worker loop, telling its supervisor what it owns.

An idle pool worker makes no Redis calls: it waits on its nudge pipe until the supervisor, which
waits on the queues for the whole pool, tells it to look (``Worker._take``'s bounded wait).

Its hooks (``PoolHooks``) write to the report pipe each change of what it owns, in the lines of
``reports`` (``own``, ``start``, ``free``; with metrics on, or in a burst, ``MeteredPoolWorker``
also reports ``ended`` and ``redis-error``). The supervisor heartbeats what a worker owns,
hard-kills it past the running job's deadline, and settles what it owned if it dies.

A job taken ahead is not reported until the worker starts it: while it is held, it lives in the
pool's ledger (shared memory, see ``rust/ledger.rs``), where the supervisor can take it back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import psutil
import redis
from setproctitle import setproctitle

from .._native import MAX_HELD, Ledger, StepResult, TakenJob
from ..exceptions import RedisUnavailable
from ..job_runner import JobStopped, Outcome, taken_timeout
from ..work_horse import die_with_parent
from ..worker import SimpleWorker, T, ending_of
from ..worker_hooks import Performed, WorkerHooks
from .reports import Ended, Free, Own, Ready, RedisError, Report, Start, job_deadline

logger = logging.getLogger("jobpool.worker")

# A worker's exit status when it stops to be replaced (--max-jobs, --max-memory), not because
# its queues are empty or the pool is stopping.
RECYCLE_EXIT = 3
# How often a worker compares its memory with --max-memory.
MEMORY_CHECK_SECONDS = 1.0
# Why a job stopped by a stop-job command before it began ends so.
STOPPED_BEFORE_IT_BEGAN = "stop-job command, before the job began"


class PoolHooks(WorkerHooks):
    """A pool worker's hooks (see ``worker_hooks``): its report lines to its supervisor, and the
    ledger's slot where it holds jobs ahead and keeps the records it has not written yet."""

    def __init__(self, worker: PoolWorker, report_fd: int, ledger: Ledger, slot: int, title: str) -> None:
        self.worker = worker
        self.report_fd = report_fd
        self.ledger = ledger
        self.slot = slot
        self.title = title
        self.execution = ""  # the execution id of the job that runs (or last ran)
        self._unsent_reports: list[Report] = []
        self._kept: set[str] = set()  # execution ids of the records kept in the ledger's log

    def report(self, report: Report) -> None:
        """Queues a report for the supervisor; ``send_reports`` writes them at once. A worker of
        quick jobs so wakes its supervisor once a job (as the job starts), not once a report."""
        self._unsent_reports.append(report)

    def send_reports(self) -> None:
        """Writes the queued reports, before anything the supervisor must know of in time: a
        job starting (it may run long, or be stopped), the worker waiting idle or ending."""
        if self._unsent_reports:
            reports, self._unsent_reports = self._unsent_reports, []
            os.write(self.report_fd, "".join(f"{report.line()}\n" for report in reports).encode())

    def ready(self) -> None:
        """Connects the core now, not when the first nudge comes (one worker at a time), then
        says so."""
        self.worker._retrying(self.worker.core.connect)
        self.report(Ready())
        self.send_reports()

    def owned(self, taken: TakenJob) -> None:
        self.report(Own(taken.job_id, taken.execution_id, taken.queue))

    def stop_requested(self) -> bool:
        """Whether the supervisor asked to stop the execution that runs (or ran last)."""
        return self.ledger.stop_requested(self.slot, self.execution)

    def check_stop(self, taken: TakenJob) -> None:
        if self.ledger.stop_requested(self.slot, taken.execution_id):
            raise JobStopped(STOPPED_BEFORE_IT_BEGAN)

    def starting(self, taken: TakenJob) -> None:
        self.execution = taken.execution_id
        now = time.time()
        self.report(Start(taken.execution_id, job_deadline(taken_timeout(taken.fields), now), now))
        self.send_reports()
        setproctitle(f"{self.title} busy {taken.job_id}")

    def keep_unrecorded(self, performed: Performed) -> bool:
        """Keeps the record in the ledger's log of ended jobs until it is written: if this worker
        dies first, its supervisor writes it (the job is not run again, nor failed)."""
        if self.worker.prefetch == 0:
            return True  # it never starts a job before the last one's record is written
        if not self.ledger.note_ended(self.slot, ending_of(performed)):
            return False
        self._kept.add(performed[0].execution_id)
        return True

    def written(self, recorded: list[Performed]) -> None:
        kept = [taken.execution_id for taken, _ in recorded if taken.execution_id in self._kept]
        if kept:
            self.ledger.forget_ended(self.slot, len(kept))
            self._kept.difference_update(kept)

    def freed(self, taken: TakenJob) -> None:
        self.report(Free(taken.execution_id))

    def hold(self, execution_ids: list[str]) -> None:
        self.ledger.hold(self.slot, execution_ids)

    def shrink_held(self, taken: int) -> None:
        self.ledger.shrink_held(self.slot, taken)

    def start_held(self) -> bool:
        return self.ledger.start_held(self.slot)

    def drop_held(self) -> bool:
        return self.ledger.drop_held(self.slot)


class PoolWorker(SimpleWorker):
    recovers_at_start = False
    hears_commands = False  # its supervisor hears its commands, and signals it
    hooks: PoolHooks  # its reports, and its slot of the pool's ledger

    def __init__(
        self,
        *args: Any,
        report_fd: int,
        nudge_fd: int,
        title: str,
        ledger: Ledger,
        slot: int,
        prefetch: int = MAX_HELD,
        max_memory_mb: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.hooks = PoolHooks(self, report_fd, ledger, slot, title)
        self.prefetch = prefetch
        self.nudge_fd = nudge_fd
        self.max_memory_bytes = max_memory_mb * 2**20 if max_memory_mb else None
        self.jobs_done = 0
        self.too_big = False
        self._memory_checked = 0.0
        self._process = psutil.Process()

    def work(self, *args: Any, **kwargs: Any) -> bool:
        try:
            return super().work(*args, **kwargs)
        finally:
            self.hooks.send_reports()

    def _take(self, wait: float | None) -> TakenJob | None:
        """Takes a job; when idle (``wait``), only once the supervisor nudges, within ``wait``."""
        if wait is not None:
            self.hooks.send_reports()  # it is idle: the supervisor nudges it when a job comes
            readable, _, _ = select.select([self.nudge_fd], [], [], wait)
            if not readable:
                return None
            with contextlib.suppress(BlockingIOError):
                os.read(self.nudge_fd, 4096)
            if self._stop_requested:  # the supervisor nudges its idle workers when it stops them
                return None
        return super()._take(None)

    def _beat_if_due(self) -> None:
        """The supervisor heartbeats its workers' registry entries."""

    def _perform(self, taken: TakenJob) -> Outcome:
        outcome = super()._perform(taken)
        self.jobs_done += 1
        setproctitle(f"{self.hooks.title} idle")
        self._recycle_if_too_big()
        return outcome

    def _recycle_if_too_big(self) -> None:
        if self.max_memory_bytes is None or time.monotonic() - self._memory_checked < MEMORY_CHECK_SECONDS:
            return
        self._memory_checked = time.monotonic()
        rss = self._process.memory_info().rss
        if rss > self.max_memory_bytes:
            logger.info("Worker %s: %.0f MB above --max-memory, recycling", self.name, rss / 2**20)
            self.too_big = True
            self._stop_requested = True

    def stop_running_job(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """SIGUSR1 from the supervisor (a cold shutdown): the running job ends as stopped."""
        if self._in_job:
            raise JobStopped("stopped by its supervisor")

    def stop_requested_job(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """SIGUSR2 from the supervisor (a stop-job command): the running job ends as stopped if
        it is the execution the ledger names. A request for a job that has not begun yet is
        found by ``check_stop`` as it begins; one for a job that has ended is ignored.

        The supervisor also sends it when it takes back the jobs held behind a slow one: the
        records of the batch's jobs that ran before it are written now (``_write_during_job``)."""
        self._write_during_job()
        if self._in_job and self.hooks.stop_requested():
            raise JobStopped("stop-job command")


class MeteredPoolWorker(PoolWorker):
    """A pool worker whose supervisor serves metrics (``jobpool start --metrics-port``) or sums
    up a burst (``--burst``): it also reports how each job it ran was recorded, and how long it
    ran, and its failed Redis calls (see ``pool_metrics``, ``burst_summary``). A separate class,
    so that a pool with neither does no more."""

    def _recorded(self, recorded: list[Performed], step: StepResult) -> list[TakenJob]:
        for (taken, outcome), how in zip(recorded, step.outcomes, strict=True):
            self.hooks.report(Ended(taken.queue, how, outcome.working_seconds))
        return super()._recorded(recorded, step)

    def _retrying(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except RedisUnavailable:
            self.hooks.report(RedisError())
            self.hooks.send_reports()
            return super()._retrying(call)  # every core call is safe to repeat


def run_child(
    *,
    parent_pid: int,
    report_fd: int,
    nudge_fd: int,
    ledger: Ledger,
    slot: int,
    prefetch: int,
    url: str,
    queue_names: list[str],
    name: str,
    title: str,
    burst: bool,
    max_jobs: int | None,
    max_memory_mb: float | None,
    serializer: Any,
    heartbeat_ttl: int,
    metered: bool = False,
) -> None:
    """The body of a forked worker process; never returns."""
    status = 0
    try:
        die_with_parent(parent_pid)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        setproctitle(f"{title} idle")
        connection = redis.Redis.from_url(url)
        worker = (MeteredPoolWorker if metered else PoolWorker)(
            queue_names,
            name=name,
            connection=connection,
            serializer=serializer,
            heartbeat_ttl=heartbeat_ttl,
            report_fd=report_fd,
            nudge_fd=nudge_fd,
            title=title,
            ledger=ledger,
            slot=slot,
            prefetch=prefetch,
            max_memory_mb=max_memory_mb,
        )
        signal.signal(signal.SIGUSR1, worker.stop_running_job)
        signal.signal(signal.SIGUSR2, worker.stop_requested_job)
        worker.work(burst=burst, max_jobs=max_jobs)
        if worker.too_big or (max_jobs is not None and worker.jobs_done >= max_jobs):
            status = RECYCLE_EXIT
    except BaseException:
        logger.exception("Worker %s crashed", name)
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
