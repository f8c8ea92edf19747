"""The supervisor of ``jobpool start``: forks the worker processes and never runs a job itself.

Its loop (gunicorn's arbiter shape: signal handlers only record the signal) reaps and respawns
workers, reads what each one owns from its report pipe (see ``pool_worker``), heartbeats all of
it in one batch per interval, hard-kills a worker whose job overran, settles what a dead worker
owned within a second, relays worker commands from its workers' pub/sub channels, runs the scheduler,
the abandoned-job recovery and the registries' and groups' cleanup, and talks to systemd.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import psutil
import redis
from setproctitle import setproctitle

from .. import keys, worker_registration
from .._native import MAX_HELD, Ending, Ledger
from ..command_channels import CommandChannels
from ..exceptions import JobpoolError, SchedulerNotFound
from ..group import MAINTENANCE_INTERVAL as GROUP_MAINTENANCE_INTERVAL
from ..group import Group
from ..job_runner import JobStopped, stopped_outcome
from ..recovery import lapsed_executions, recover_abandoned, with_callbacks_or_webhooks
from ..redis_target import connect_core
from ..registry_cleanup import clean_registries
from ..result_encoding import encode_traceback
from ..timeutils import utcnow
from ..work_horse import death_reason, die_with_parent
from ..worker import DEFAULT_RESULT_TTL
from . import settled_webhooks
from .burst_summary import BurstSummary
from .pool_metrics import restart_reason
from .pool_worker import RECYCLE_EXIT, STOPPED_BEFORE_IT_BEGAN, run_child
from .scheduler import enqueue_due_jobs, register_scheduler, release_scheduler_locks, unregister_scheduler
from .systemd import Notifier

if TYPE_CHECKING:
    from ..cron import CronScheduler
    from .pool_metrics import PoolMetrics

logger = logging.getLogger("jobpool.supervisor")

HEARTBEAT_SECONDS = 5.0
# How long an execution lives without a heartbeat: a pool that vanishes whole has its jobs
# recovered by any other pool this long after its last beat.
HEARTBEAT_TTL = 30
# How often RQ's per-execution records (execution hash, executions index, the worker's
# executions set) are written for the executions that started since: a pool's workers take
# without them (most jobs end long before), so a job that runs longer than this has them.
RECORDS_SECONDS = 0.5
WORKER_TTL = 60
HARD_KILL_GRACE_SECONDS = 5.0
SCHEDULER_SECONDS = 1.0
MAINTENANCE_SECONDS = 10.0
STATUS_SECONDS = 5.0
COMPLAIN_SECONDS = 30.0
# How long a stopping pool keeps trying to record what its dead workers ran, when Redis is down.
SETTLE_GRACE_SECONDS = 15.0
TICK_SECONDS = 0.1
# How often an idle pool looks for jobs pushed without a wake-up marker (by plain RQ clients).
LOOK_SECONDS = 1.0
# The supervisor's wait on the wake-up lists when workers are idle (it also paces its loop then).
IDLE_WAIT_SECONDS = 0.25
# A job a worker took ahead goes back to its queue once it has been held this long (the job
# before it is slow, or the worker is stopped): an idle worker takes it rather than it waiting.
HOLD_BOUND_SECONDS = 0.1
# The least time between two reads of the workers' reports while they are busy: a pool of quick
# jobs wakes its supervisor this often, not once a job. What waits meanwhile (a worker seen idle
# late, a new job's deadline known late) waits no longer than this.
REPORTS_EVERY_SECONDS = 0.002
# Crash-loop back-off: a worker that dies within STABLE_SECONDS of its start waits before it is
# replaced, twice as long each time, up to MAX_RESPAWN_DELAY.
STABLE_SECONDS = 5.0
FIRST_RESPAWN_DELAY = 0.5
MAX_RESPAWN_DELAY = 30.0
# An execution id as jobpool's workers write them (in `jobpool_held`, say): 32 hex digits.
EXECUTION_ID = re.compile(r"[0-9a-fA-F]{32}")


class _WaitCut(Exception):
    """Raised by the SIGCHLD handler into the supervisor's wait on Redis, so that a dead worker is
    reaped, and its jobs settled, at once rather than when the wait times out. A wake-up marker
    that the cut wait had popped is lost; it was only a hint, and the once-a-second look finds the
    job it announced."""


@dataclass
class Owned:
    """An execution a worker owns: taken, then running, then ended (its record in flight) until
    the worker says it is recorded. A job taken ahead is not here until it starts: it is held
    in the ledger."""

    job_id: str
    execution_id: str
    queue: str
    state: str = "taken"  # "taken", "running" or "ended"
    deadline: float = 0.0  # while running: the epoch its timeout ends, 0 for none
    started_at: float = field(default_factory=time.time)  # the epoch it started (or was taken)
    recorded: bool = False  # whether a heartbeat has written RQ's records of it


@dataclass
class Child:
    slot: int
    pid: int
    name: str
    report_fd: int
    nudge_fd: int  # a byte here tells an idle worker to look for a job
    started: float
    buffer: bytes = b""
    ready: bool = False
    owned: dict[str, Owned] = field(default_factory=dict)
    killed_for: Owned | None = None  # the job it was hard-killed for
    ended: list[Ending] = field(default_factory=list)  # once dead: the records it kept, unwritten


class Supervisor:
    def __init__(
        self,
        url: str,
        queue_names: list[str],
        size: int,
        *,
        name: str,
        burst: bool = False,
        max_jobs: int | None = None,
        max_memory_mb: float | None = None,
        serializer: Any = None,
        scheduler: bool = True,
        notifier: Notifier | None = None,
        prefetch: int = MAX_HELD,
        cron: CronScheduler | None = None,
        metrics: PoolMetrics | None = None,
    ):
        self.url = url
        self.queue_names = queue_names
        self.size = size
        self.name = name
        self.burst = burst
        self.max_jobs = max_jobs
        self.max_memory_mb = max_memory_mb
        self.serializer = serializer
        self.scheduler = scheduler
        self.created_at = utcnow()  # as RQ's scheduler hash says when its scheduler began
        self.notifier = notifier or Notifier()
        self.prefetch = prefetch
        self.cron = cron  # enqueues its cron jobs (if it holds their lock) from the loop
        self.cron_due_at = 0.0  # the epoch of its next round
        self.metrics = metrics  # counts and serves what the pool does (--metrics-port)
        self.summary = BurstSummary() if burst else None  # logged as a burst pool ends
        self.ledger = Ledger(size)  # before any fork: shared with every worker
        self.reclaims: list[tuple[str, str]] = []  # (worker, execution id) to put back in Redis
        self.connection = redis.Redis.from_url(url)
        self.waiter = redis.Redis.from_url(url, socket_timeout=IDLE_WAIT_SECONDS + 5)
        self.nudged = 0
        self.redis_reachable = True
        self.core = connect_core(url)
        self.children: dict[int, Child] = {}
        self.generation = 0
        self.respawn_at: dict[int, float] = {}  # slot -> when to start its next worker
        self.respawn_delay: dict[int, float] = {}
        self.done_slots: set[int] = set()  # burst: slots whose worker found the queues empty
        self.retiring: list[int] = []  # SIGHUP: pids still to replace, one at a time
        self.signals: list[int] = []
        self.cut_wait_on_sigchld = False  # true only while blocked in the BLPOP of _wait_for_work
        self.stopping = False
        self.cold = False  # a second stop signal came: running jobs are being stopped
        self.stopped_at = 0.0
        self.last_beat = time.monotonic()  # the last heartbeat Redis took
        self.reports_read_at = 0.0  # when the workers' reports were last read (monotonic)
        self.stopped_children: set[int] = set()  # pids of workers found stopped (SIGSTOP) while idle
        self.announced_ready = False
        self.due: dict[str, float] = {}
        self.command_channels = CommandChannels(self.connection)
        self.unsettled: list[tuple[Child, int]] = []  # dead workers whose jobs are not settled yet
        self.recovery_pid: int | None = None  # a process recovering abandoned jobs with callbacks
        self.helper_pids: set[int] = set()  # processes sending dead workers' jobs' webhooks

    # ---- signals -------------------------------------------------------------------------------

    def _record_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)
        if signum == signal.SIGCHLD and self.cut_wait_on_sigchld:
            self.cut_wait_on_sigchld = False  # once per wait
            raise _WaitCut

    def _install_signals(self) -> int:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        signal.set_wakeup_fd(write_fd)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, self._record_signal)
        return read_fd

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                if not self.stopping:
                    self._begin_shutdown()
                elif not self.cold:
                    # SIGUSR1, not a second SIGTERM, which could merge with the first if the
                    # worker had not handled it yet.
                    logger.warning("Second signal: cold shutdown, stopping the running jobs")
                    self.cold = True
                    self._signal_children(signal.SIGUSR1)
                else:
                    # A job may ignore or swallow SIGUSR1 while it runs: this one always works.
                    logger.warning("Third signal: killing the workers; their running jobs fail")
                    self._signal_children(signal.SIGKILL)
            elif signum == signal.SIGHUP and not self.stopping:
                logger.info("SIGHUP: replacing the workers one by one")
                self.retiring = list(self.children)

    def _begin_shutdown(self) -> None:
        logger.info("Warm shutdown: no new jobs; running jobs finish")
        self.stopping = True
        self.stopped_at = time.monotonic()
        self.respawn_at.clear()  # a slot waiting out its back-off stays empty
        self.notifier.stopping("stopping: running jobs finish")
        self._end_cron()
        self._signal_children(signal.SIGTERM)
        for child in self._idle_children():  # wakes them from their wait for a nudge, to exit now
            _nudge(child)

    def _signal_children(self, signum: int) -> None:
        for pid in self.children:
            _kill(pid, signum)

    # ---- workers ------------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        self.generation += 1
        name = f"{self.name}.{slot}.{self.generation}"
        title = f"jobpool worker {slot + 1}/{self.size}"
        read_fd, write_fd = os.pipe()
        nudge_read, nudge_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            os.close(nudge_write)
            for sibling in self.children.values():  # the other workers' pipes are not this one's
                os.close(sibling.report_fd)
                os.close(sibling.nudge_fd)
            os.setpgid(0, 0)  # the terminal's Ctrl-C reaches the supervisor alone, which relays it
            signal.set_wakeup_fd(-1)
            run_child(
                parent_pid=os.getppid(),
                report_fd=write_fd,
                nudge_fd=nudge_read,
                ledger=self.ledger,
                slot=slot,
                prefetch=self.prefetch,
                url=self.url,
                queue_names=self.queue_names,
                name=name,
                title=title,
                burst=self.burst,
                max_jobs=self.max_jobs,
                max_memory_mb=self.max_memory_mb,
                serializer=self.serializer,
                heartbeat_ttl=HEARTBEAT_TTL,
                metered=self.metrics is not None or self.summary is not None,
            )
        os.close(write_fd)
        os.close(nudge_read)
        os.set_blocking(read_fd, False)
        os.set_blocking(nudge_write, False)
        self.children[pid] = Child(slot, pid, name, read_fd, nudge_write, time.monotonic())

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # what its jobs forked and left behind
            child = self.children.pop(pid, None)
            self.stopped_children.discard(pid)
            if pid == self.recovery_pid:
                self.recovery_pid = None
            self.helper_pids.discard(pid)
            if child is not None:
                self._take_back_hold(child)
                child.ended = self.ledger.ended(child.slot)
                self.ledger.clear(child.slot)
                self._read_reports(child)
                os.close(child.report_fd)
                os.close(child.nudge_fd)
                self.unsettled.append((child, status))
                self._plan_respawn(child, status)

    def _settle_dead(self) -> None:
        """Settles what dead workers owned; kept for later while Redis cannot be reached."""
        while self.unsettled:
            child, status = self.unsettled[0]
            if not self._redis_call("settle a dead worker's jobs", partial(self._settle, child, status)):
                return
            self.unsettled.pop(0)

    def _settle(self, child: Child, status: int) -> None:
        """Records what a dead worker owned: first the jobs it ran whose records it kept in the
        ledger (their records are written now, once: a record already written is "stale"); then
        a job it had not started, or had run but whose record may not have been written, goes
        back to its queue (a record that was written makes this a no-op); a running one fails
        (or is retried, per its Retry) with the reason it died."""
        settled: list[settled_webhooks.Settled] = []  # the endings written now, for their webhooks
        if child.ended:
            step = self.core.step(child.name, child.ended, None, DEFAULT_RESULT_TTL, mark_started=True)
            for ending, recorded in zip(child.ended, step.outcomes if step else [], strict=False):
                logger.info(
                    "%s: recorded %s, which %s ran before it died (%s)",
                    ending.queue,
                    ending.job_id,
                    child.name,
                    recorded,
                )
                if recorded in ("finished", "failed"):
                    settled.append((ending.job_id, recorded, None))
                self._count_ended(ending.queue, recorded, ending.working_seconds)
        for owned in child.owned.values():
            if owned.state != "running":
                self.core.release(child.name, owned.job_id, owned.execution_id, owned.queue)
                continue
            reason = death_reason(
                status, child.killed_for is owned, "its worker was killed by the supervisor"
            )
            exc_info, exc_string = encode_traceback(reason)
            died = Ending(
                owned.job_id, owned.execution_id, owned.queue, None, 0.0, "failed", None, exc_info, exc_string
            )
            outcome = self.core.fail(child.name, died)
            logger.warning(
                "%s: worker %s died running %s (%s): %s",
                owned.queue,
                child.name,
                owned.job_id,
                outcome,
                reason.strip().rstrip(";"),
            )
            if outcome == "failed":
                settled.append((owned.job_id, "failed", reason))
            self._count_recorded(owned.queue, outcome)
        worker_registration.register_death(self.connection, child.name, self.queue_names)
        if settled:  # once: a settle repeated finds its records written ("stale")
            self._redis_call("send a dead worker's jobs' webhooks", partial(self._send_webhooks, settled))

    def _send_webhooks(self, settled: list[settled_webhooks.Settled]) -> None:
        """Sends, from a process forked for it, the webhooks of the jobs of ``settled`` that
        have some (see ``settled_webhooks``)."""
        due = settled_webhooks.with_webhooks(self.connection, settled)
        if due:
            title = f"jobpool webhooks [{','.join(self.queue_names)}]"
            self.helper_pids.add(
                self._fork_helper(title, lambda: settled_webhooks.send(self.connection, due, self.serializer))
            )

    def _plan_respawn(self, child: Child, status: int) -> None:
        recycled = os.WIFEXITED(status) and os.WEXITSTATUS(status) == RECYCLE_EXIT
        clean = recycled or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        if self.stopping or (self.burst and clean and not recycled):
            if self.burst and clean:
                self.done_slots.add(child.slot)
            return
        if self.metrics is not None:
            self.metrics.restarted(restart_reason(status, child.killed_for is not None))
        delay = 0.0
        if (
            not clean
            and not _killed_from_outside(status)
            and time.monotonic() - child.started < STABLE_SECONDS
        ):
            delay = self.respawn_delay.get(child.slot, FIRST_RESPAWN_DELAY / 2) * 2
            delay = min(delay, MAX_RESPAWN_DELAY)
            logger.warning(
                "Worker %s died soon after it started; the next starts in %.1f s", child.name, delay
            )
        self.respawn_delay[child.slot] = delay
        self.respawn_at[child.slot] = time.monotonic() + delay

    def _respawn_due(self) -> None:
        for slot, when in list(self.respawn_at.items()):
            if time.monotonic() >= when:
                del self.respawn_at[slot]
                self._spawn(slot)

    def _retire_next(self) -> None:
        """SIGHUP: warm-stops the next old worker once the pool is whole again."""
        if not self.retiring or self.respawn_at or len(self.children) < self.size:
            return
        if not all(child.ready for child in self.children.values()):
            return
        pid = self.retiring.pop(0)
        if pid in self.children:
            _kill(pid, signal.SIGTERM)

    # ---- what workers own -------------------------------------------------------------------------

    def _read_reports(self, child: Child) -> None:
        while True:
            try:
                data = os.read(child.report_fd, 65536)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno == errno.EBADF:
                    return
                raise
            if not data:
                return
            child.buffer += data
            *lines, child.buffer = child.buffer.split(b"\n")
            for line in lines:
                self._apply_report(child, line.decode().split())

    def _apply_report(self, child: Child, words: list[str]) -> None:
        match words:
            case ["ready"]:
                child.ready = True
            case ["own", job_id, execution_id, queue]:
                child.owned[execution_id] = Owned(job_id, execution_id, queue)
            case ["start", execution_id, deadline, started_at]:
                for owned in child.owned.values():  # a worker runs one job at a time
                    if owned.state == "running":
                        owned.state = "ended"
                if execution_id in child.owned:
                    child.owned[execution_id].state = "running"
                    child.owned[execution_id].deadline = float(deadline)
                    child.owned[execution_id].started_at = float(started_at)
                    if self.metrics is not None:
                        self.metrics.started(child.owned[execution_id].queue)
            case ["free", execution_id]:
                child.owned.pop(execution_id, None)
            case ["ended", queue, recorded, microseconds]:
                self._count_ended(queue, recorded, int(microseconds) / 1e6)
            case ["redis-error"]:
                if self.metrics is not None:
                    self.metrics.redis_error("worker", "take or record jobs")
            case _:
                logger.warning("Worker %s sent an unreadable report: %r", child.name, words)

    # ---- jobs held ahead -----------------------------------------------------------------------------

    def _take_back_hold(self, child: Child) -> bool:
        """Takes from ``child`` the jobs it holds and has not started, if the ledger gives them
        to us (the worker did not start the next first); ``_put_back_reclaimed`` puts them back
        in Redis."""
        held = self.ledger.held(child.slot)
        if held is None or not self.ledger.reclaim(child.slot, held[0]):
            return False
        self._put_back_later(child, held[1])
        return True

    def _put_back_later(self, child: Child, execution_ids: list[str]) -> None:
        """Queues the jobs taken back from ``child`` for ``_put_back_reclaimed``: each goes back
        to the front of its queue, the last first, so that they keep their order."""
        self.reclaims.extend((child.name, execution_id) for execution_id in reversed(execution_ids))

    def _holds_due_in(self) -> float | None:
        """Seconds until a held job is due to be taken back (0: now), None when none is held."""
        due: float | None = None
        now = time.time()
        for child in self.children.values():
            held = self.ledger.held(child.slot)
            if held is not None:
                left = max(held[2] + HOLD_BOUND_SECONDS - now, 0.0)
                due = left if due is None else min(due, left)
        return due

    def _reclaim_slow_holds(self) -> None:
        """Takes back every job held longer than the bound."""
        now = time.time()
        for child in self.children.values():
            held = self.ledger.held(child.slot)
            if held is not None and now - held[2] >= HOLD_BOUND_SECONDS and self._take_back_hold(child):
                logger.debug("Worker %s: taking back the jobs it held for too long", child.name)
                _kill(child.pid, signal.SIGUSR2)  # and write the records its batch held back

    def _put_back_reclaimed(self) -> None:
        """Puts the jobs taken back from workers at the front of their queues (kept for a later
        tick while Redis cannot be reached)."""
        while self.reclaims:
            worker, execution_id = self.reclaims[0]
            outcome, job_id, queue = self.core.reclaim(worker, self.queue_names, execution_id)
            if outcome == "released":
                logger.info("%s: %s, held too long by %s, is back in its queue", queue, job_id, worker)
                for child in self._idle_children()[:1]:
                    _nudge(child)
            self.reclaims.pop(0)

    def _maintain(self) -> None:
        """Recovers abandoned jobs on the queues whose maintenance lock this pool gets (one pool a
        queue at a time, however many pools there are; recovery is safe to repeat anyway). A lock
        under this pool's name is its own, left by the run before a kill. The groups are cleaned
        too, by one pool (or RQ worker) at a time every GROUP_MAINTENANCE_INTERVAL, as RQ's
        workers clean them."""
        with self.connection.pipeline(transaction=False) as pipe:
            for name in self.queue_names:
                lock = keys.maintenance_lock(name)
                pipe.set(lock, self.name, nx=True, ex=int(MAINTENANCE_SECONDS) - 1)
                pipe.get(lock)
            pipe.set(keys.CLEAN_GROUPS, 1, nx=True, ex=GROUP_MAINTENANCE_INTERVAL - 1)  # as RQ's workers
            *replies, groups_due = pipe.execute()
        holders = zip(self.queue_names, replies[0::2], replies[1::2], strict=True)
        mine = [name for name, locked, holder in holders if locked or holder == self.name.encode()]
        if mine:
            self._recover(mine)
            clean_registries(self.connection, mine)
        if groups_due:
            Group.clean_registries(self.connection)

    def _recover(self, queue_names: list[str]) -> None:
        """Fails or retries the lapsed executions of ``queue_names`` (their pool vanished).
        When some of their jobs have an ``on_failure`` callback, which runs first as in RQ, or
        webhooks, sent once the failures are written, a process forked for it does the recovery:
        the supervisor never runs job code, nor waits on an endpoint, either of which could hold
        up its heartbeats. One such process at a time."""
        if self.recovery_pid is not None:
            return  # it is still at it; the next maintenance looks again
        lapsed = lapsed_executions(self.connection, queue_names)
        if not lapsed:
            return
        if with_callbacks_or_webhooks(self.connection, lapsed):
            self.recovery_pid = self._fork_recovery(queue_names)
            return
        recovered = recover_abandoned(self.connection, queue_names, core=self.core, run_callbacks=False)
        _log_recovered(recovered)

    def _fork_recovery(self, queue_names: list[str]) -> int:
        """Forks a process that recovers abandoned jobs, running their failure callbacks and
        sending their webhooks, and exits."""
        return self._fork_helper(
            f"jobpool recovery [{','.join(queue_names)}]",
            lambda: _log_recovered(
                recover_abandoned(self.connection, queue_names, serializer=self.serializer)
            ),
        )

    def _fork_helper(self, title: str, body: Callable[[], object]) -> int:
        """Forks a process that runs ``body`` and exits; it dies with the supervisor, like a
        worker. redis-py opens new connections in a forked process; the core does without its
        own."""
        parent_pid = os.getpid()
        pid = os.fork()
        if pid != 0:
            return pid
        status = 0
        try:
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            die_with_parent(parent_pid)
            setproctitle(title)
            body()
        except BaseException:
            logger.exception("%s failed", title)
            status = 1
        finally:
            logging.shutdown()
            os._exit(status)

    def _beats(self, owned_by: list[tuple[Child, Owned]]) -> list[tuple[str, str, str, int, str, float]]:
        return [
            (owned.job_id, owned.execution_id, owned.queue, HEARTBEAT_TTL, child.name, owned.started_at)
            for child, owned in owned_by
        ]

    def _record_new_executions(self) -> None:
        """Writes RQ's records of the executions that started since the last pass (the workers
        took them without): what RQ's readers see of a job that runs (``get_executions()``,
        ``send_stop_execution_command``, a worker's current executions)."""
        new = [
            (child, owned)
            for child in self.children.values()
            for owned in child.owned.values()
            if owned.state == "running" and not owned.recorded
        ]
        if new:
            self.core.heartbeat(self._beats(new), [])
            for _, owned in new:
                owned.recorded = True

    def _heartbeat(self) -> None:
        owned_by = [(child, owned) for child in self.children.values() for owned in child.owned.values()]
        executions = self._beats(owned_by)
        workers = [(child.name, WORKER_TTL) for child in self.children.values()]
        registrations = {
            child.name: worker_registration.for_heartbeat(self.queue_names, child.pid, bool(child.owned))
            for child in self.children.values()
            if child.ready
        }
        gone = set(self.core.heartbeat(executions, workers, registrations))
        for _, owned in owned_by:
            owned.recorded = True
        self.last_beat = time.monotonic()
        self._stop_runs_taken_elsewhere(gone)

    def _stop_runs_taken_elsewhere(self, gone: set[str]) -> None:
        """Stops each running job that recovery gave back to its queue (or to the scheduler)
        while this pool was stalled, and that may now run elsewhere: two runs must not overlap,
        and this one's record would be stale. An execution is also gone when its worker has just
        recorded it (before its next report says so), when recovery failed the job (no second
        run), or when the job was canceled or deleted (it runs on, as in RQ): those are left be."""
        for child in self.children.values():
            for owned in child.owned.values():
                if owned.state != "running" or f"{owned.job_id}:{owned.execution_id}" not in gone:
                    continue
                status, worker = self.connection.hmget(keys.job(owned.job_id), ["status", "worker_name"])
                retried = status in (b"queued", b"scheduled") or (
                    status == b"started" and worker != child.name.encode()
                )
                if not retried:
                    continue
                logger.warning(
                    "%s: job %s was recovered elsewhere while this pool was stalled; stopping its run on %s",
                    owned.queue,
                    owned.job_id,
                    child.name,
                )
                self._ask_to_stop(child, owned.execution_id)

    def _maintain_after_a_beat(self) -> None:
        """Maintenance, but never on a stale view of this pool's own jobs: after a stall (the
        supervisor stopped, Redis refusing writes), this pool's executions may have lapsed, and
        recovering them would fail jobs that still run. A heartbeat must get through first."""
        if time.monotonic() - self.last_beat > HEARTBEAT_SECONDS:
            self._heartbeat()
        self._maintain()

    def _enforce_deadlines(self) -> None:
        now = time.time()
        for child in self.children.values():
            for owned in child.owned.values():
                if (
                    owned.state == "running"
                    and owned.deadline
                    and now > owned.deadline + HARD_KILL_GRACE_SECONDS
                    and child.killed_for is None
                ):
                    logger.warning(
                        "%s: job %s overran its timeout without returning to Python; killing %s",
                        owned.queue,
                        owned.job_id,
                        child.name,
                    )
                    child.killed_for = owned
                    _kill(child.pid, signal.SIGKILL)

    # ---- commands -----------------------------------------------------------------------------------

    def _relay_commands(self) -> None:
        """Applies the commands that arrived for the pool's workers. The subscription follows
        the live workers (a worker spawned is followed, one reaped is not, within a tick); a
        connection that fails, or goes silent, is replaced, with every live worker's channel."""
        try:
            self.command_channels.follow({child.name for child in self.children.values()})
            commands = self.command_channels.receive()
            self.command_channels.check()
        except redis.ConnectionError:
            self.command_channels.drop()
            raise
        for worker_name, command in commands:
            self._apply_command(worker_name, command)

    def _apply_command(self, worker_name: str, command: dict[str, Any]) -> None:
        child = next((c for c in self.children.values() if c.name == worker_name), None)
        if child is None:
            return
        kind = command.get("command")
        if kind in ("stop-job", "stop-execution"):
            self._stop_job(child, str(command.get("job_id")), command.get("execution_id"))
        elif kind == "kill-horse":
            _kill(child.pid, signal.SIGKILL)
        elif kind == "shutdown":
            _kill(child.pid, signal.SIGTERM)

    def _stop_job(self, child: Child, job_id: str, execution_id: str | None) -> None:
        """Stops ``job_id`` (its ``execution_id`` only, for stop-execution) if ``child`` runs it,
        is about to begin it, or holds it ahead: the job ends as ``stopped``. A job that has
        ended already, or is not this worker's, is left alone, as RQ's workers leave it."""
        if not (
            self._stop_owned(child, job_id, execution_id)
            or self._stop_held(child, job_id, execution_id)
            # It may have begun the job it held since the first look: its report of that
            # comes before its start clears the hold in Redis, so a second look finds it.
            or self._stop_owned(child, job_id, execution_id)
        ):
            logger.info("Worker %s is not running job %s: stop-job ignored", child.name, job_id)

    def _stop_owned(self, child: Child, job_id: str, execution_id: str | None) -> bool:
        """Asks ``child`` to stop the job if it has reported it taken or running."""
        self._read_reports(child)
        for owned in child.owned.values():
            if (
                owned.job_id == job_id
                and owned.state != "ended"
                and execution_id in (None, owned.execution_id)
            ):
                self._ask_to_stop(child, owned.execution_id)
                return True
        return False

    def _stop_held(self, child: Child, job_id: str, execution_id: str | None) -> bool:
        """Records stopped the job ``child`` took ahead (it shows as started, held in the job
        hash): it never runs. The worker is asked to stop it too, in case it begins it
        meanwhile; then the hold is taken back, if it is still held, so that it does not."""
        fields = self.connection.hmget(keys.job(job_id), "jobpool_held", "worker_name", "origin")
        held_execution, worker, queue = (_lenient_text(value) for value in fields)
        if held_execution is None or queue is None or worker != child.name:
            return False
        if not EXECUTION_ID.fullmatch(held_execution) or execution_id not in (None, held_execution):
            return False
        self._ask_to_stop(child, held_execution)
        outcome = self._record_stopped_before_it_began(child, job_id, held_execution, queue)
        held = self.ledger.held(child.slot)
        if held is not None and held_execution in held[1] and self.ledger.reclaim(child.slot, held[0]):
            # It will not begin it now; the jobs held behind it go back to their queues.
            self._put_back_later(child, [other for other in held[1] if other != held_execution])
        if outcome == "stopped":
            logger.info("%s: job %s, held by %s, stopped before it began", queue, job_id, child.name)
        else:  # "stale": its worker put it back first (it is stopping), or it ended otherwise
            logger.warning(
                "%s: job %s, held by %s, could not be stopped (%s)", queue, job_id, child.name, outcome
            )
        return True

    def _record_stopped_before_it_began(
        self, child: Child, job_id: str, execution_id: str, queue: str
    ) -> str:
        exc_info, exc_string = stopped_outcome(JobStopped(STOPPED_BEFORE_IT_BEGAN), 0.0, 0.0).traceback
        stopped = Ending(job_id, execution_id, queue, None, 0.0, "stopped", None, exc_info, exc_string)
        # The worker runs another job: its state stays busy.
        outcome = self.core.fail(child.name, stopped, running=True)
        self._count_recorded(queue, outcome)
        return outcome

    def _count_ended(self, queue: str, recorded: str, seconds: float) -> None:
        """A job a worker ran ``seconds``, recorded as ``recorded``: for the metrics and the
        burst's summary, whichever are on."""
        if self.metrics is not None:
            self.metrics.ended(queue, recorded, seconds)
        if self.summary is not None:
            self.summary.recorded(recorded)

    def _count_recorded(self, queue: str, recorded: str) -> None:
        """A job the supervisor recorded itself (a dead worker's; one stopped before it began)."""
        if self.metrics is not None:
            self.metrics.recorded(queue, recorded)
        if self.summary is not None:
            self.summary.recorded(recorded)

    def _ask_to_stop(self, child: Child, execution_id: str) -> None:
        """The worker stops ``execution_id`` now if it runs it, else as it begins it (see
        ``PoolWorker.stop_requested_job``); the ledger tells it which execution."""
        self.ledger.request_stop(child.slot, execution_id)
        _kill(child.pid, signal.SIGUSR2)

    # ---- the loop ------------------------------------------------------------------------------------

    def _every(self, what: str, seconds: float) -> bool:
        now = time.monotonic()
        if now >= self.due.get(what, 0.0):
            self.due[what] = now + seconds
            return True
        return False

    def _status_line(self) -> str:
        busy = sum(1 for c in self.children.values() if any(o.state == "running" for o in c.owned.values()))
        stopped = f", {len(self.stopped_children)} stopped" if self.stopped_children else ""
        return f"{len(self.children)} workers, {busy} busy{stopped}, queues {','.join(self.queue_names)}"

    def _workers_by_state(self) -> dict[str, int]:
        """How many workers are starting, idle, busy or suspended (for the metrics; called from
        their server's thread, so it reads a copy of the children)."""
        stopped = set(self.stopped_children)
        by_state = dict.fromkeys(("starting", "idle", "busy", "suspended"), 0)
        for child in list(self.children.values()):
            if child.pid in stopped:
                by_state["suspended"] += 1
            elif not child.ready:
                by_state["starting"] += 1
            else:
                by_state["busy" if child.owned else "idle"] += 1
        return by_state

    def _idle_children(self) -> list[Child]:
        return [child for child in self.children.values() if child.ready and not child.owned]

    def _nudge_an_idle_worker(self, idle: list[Child]) -> None:
        """Nudges the next idle worker in turn that is not stopped (SIGSTOP, a debugger, a
        freezer): a stopped worker would sit on the nudge, and its job on the queue."""
        for _ in range(len(idle)):
            self.nudged = (self.nudged + 1) % len(idle)
            child = idle[self.nudged]
            if not self._is_stopped(child):
                _nudge(child)
                return

    def _is_stopped(self, child: Child) -> bool:
        """Whether ``child`` is stopped; says so (once each time, in the log and in RQ's worker
        hash as ``suspended``) when that changes."""
        try:
            stopped = psutil.Process(child.pid).status() in (
                psutil.STATUS_STOPPED,
                psutil.STATUS_TRACING_STOP,
            )
        except psutil.Error:
            return False
        if stopped != (child.pid in self.stopped_children):
            if stopped:
                self.stopped_children.add(child.pid)
                logger.warning("Worker %s is stopped (SIGSTOP?); jobs go to the other workers", child.name)
            else:
                self.stopped_children.discard(child.pid)
                logger.info("Worker %s runs again", child.name)
            self._redis_call(
                "record a worker's state",
                partial(
                    self.connection.hset, keys.worker(child.name), "state", "suspended" if stopped else "idle"
                ),
            )
        return stopped

    def _wait_for_work(self) -> None:
        """Waits on the queues' wake-up lists for the whole pool (one blocking call, whatever
        the pool's size) and nudges an idle worker when a job arrives; once a second, nudges
        one anyway, to find jobs pushed without a marker (by plain RQ clients)."""
        idle = self._idle_children()
        if not idle or self.stopping:
            return
        wakeups = [keys.wakeup(name) for name in self.queue_names]
        try:
            # redis-py drops the connection when an exception cuts a command short: no reply is left
            # behind on it for the next call to read.
            self.cut_wait_on_sigchld = True
            due = self._holds_due_in()
            wait = IDLE_WAIT_SECONDS if due is None else min(max(due, 0.01), IDLE_WAIT_SECONDS)
            woken = self.waiter.blpop(wakeups, timeout=wait)
        except _WaitCut:
            return
        finally:
            self.cut_wait_on_sigchld = False
        if woken is not None or self._every("look", LOOK_SECONDS):
            self._nudge_an_idle_worker(idle)

    def _tick(self, wakeup_fd: int) -> None:
        # Reports are read at most every REPORTS_EVERY_SECONDS: until then only a signal wakes
        # the loop, and the reports that come meanwhile are read together.
        since_reports = time.monotonic() - self.reports_read_at
        readable = (
            {}
            if since_reports < REPORTS_EVERY_SECONDS
            else {child.report_fd: child for child in self.children.values()}
        )
        poller = select.poll()
        for fd in (*readable, wakeup_fd):
            poller.register(fd, select.POLLIN)
        # While Redis cannot be reached, the wait on it fails at once: the poll paces the loop then.
        waiting_on_redis = bool(self._idle_children()) and not self.stopping and self.redis_reachable
        tick = min(TICK_SECONDS, self._holds_due_in() or TICK_SECONDS)
        if not readable:
            tick = min(tick, REPORTS_EVERY_SECONDS - since_reports)
        for fd, _ in poller.poll(0 if waiting_on_redis else tick * 1000):
            if fd == wakeup_fd:
                _drain(wakeup_fd)
            else:
                self._read_reports(readable[fd])
                self.reports_read_at = time.monotonic()
        self._reclaim_slow_holds()
        self._redis_call("put back held jobs", self._put_back_reclaimed)
        self.redis_reachable = self._redis_call("wait for jobs", self._wait_for_work)
        self._handle_signals()
        self._reap()
        self._settle_dead()
        self._respawn_due()
        self._retire_next()
        self._enforce_deadlines()
        self._redis_call("relay worker commands", self._relay_commands)
        if self._every("heartbeat", HEARTBEAT_SECONDS):
            self._redis_call("heartbeat", self._heartbeat)
        elif self._every("records", RECORDS_SECONDS):
            self._redis_call("record executions", self._record_new_executions)
        if self.scheduler and not self.stopping and self._every("scheduler", SCHEDULER_SECONDS):
            self._redis_call("schedule", self._schedule)
        if self.cron is not None and not self.stopping and time.time() >= self.cron_due_at:
            self.cron_due_at = time.time() + 1.0  # while Redis fails, a round a second
            self._redis_call("enqueue cron jobs", self._run_cron)
        if not self.stopping and self._every("maintenance", MAINTENANCE_SECONDS):
            self._redis_call("recover abandoned jobs", self._maintain_after_a_beat)
        if (
            not self.announced_ready
            and len(self.children) == self.size
            and all(c.ready for c in self.children.values())
        ):
            self.announced_ready = True
            self.notifier.ready(self._status_line())
            logger.info("jobpool supervisor ready: %s", self._status_line())
        if self._every("status", STATUS_SECONDS):
            self.notifier.status(self._status_line())
            setproctitle(f"jobpool supervisor [{','.join(self.queue_names)}] {len(self.children)} workers")
        if self.notifier.watchdog_interval and self._every("watchdog", self.notifier.watchdog_interval):
            self.notifier.watchdog()

    def _redis_call(self, what: str, call: Callable[[], object]) -> bool:
        """Runs ``call``; when Redis fails, logs it (once a while) and carries on: the pool and its
        workers outlive an outage, and the work is done again on a later tick."""
        try:
            call()
            return True
        except (redis.RedisError, JobpoolError, OSError) as error:
            if self.metrics is not None:
                self.metrics.redis_error("supervisor", what)
            if self._every(f"complain:{what}", COMPLAIN_SECONDS):
                logger.warning("Cannot %s now: %s", what, error)
            return False

    def _schedule(self) -> None:
        # RQ's scheduler hash lives 61 s past its refresh: refreshed at the heartbeat's pace, not
        # every scheduler tick (an idle pool's Redis load is a figure of its own).
        if self._every("scheduler hash", HEARTBEAT_SECONDS):
            register_scheduler(self.connection, self.name, self.queue_names, self.created_at)
        enqueue_due_jobs(self.connection, self.queue_names, self.name)

    def _run_cron(self) -> None:
        if self.cron is not None:
            self.cron_due_at = time.time() + self.cron.run_due()

    def _end_cron(self) -> None:
        """Gives up the cron lock, so that another pool's scheduler takes over at once (this
        pool's workers may run for long yet), and leaves RQ's registry of cron schedulers."""
        if self.cron is None:
            return
        cron, self.cron = self.cron, None

        def end() -> None:
            with contextlib.suppress(SchedulerNotFound):  # its heartbeats lapsed: it is gone already
                cron.register_death()

        self._redis_call("end the cron scheduler (its lock lapses by itself)", end)

    def _release_scheduler_locks(self) -> None:
        """Lets another scheduler take this pool's queues at once, rather than in 61 s."""
        if self.scheduler:
            release_scheduler_locks(self.connection, self.queue_names, self.name)
            unregister_scheduler(self.connection, self.name)

    def _finished(self) -> bool:
        if self.children or self.respawn_at:
            return False
        if self.helper_pids and not (
            self.stopping and time.monotonic() - self.stopped_at > SETTLE_GRACE_SECONDS
        ):
            return False  # a dead worker's jobs' webhooks are being sent
        if self.unsettled or self.reclaims:
            if not self.stopping or time.monotonic() - self.stopped_at <= SETTLE_GRACE_SECONDS:
                return False
            logger.error(
                "Cannot reach Redis to record what dead workers ran; their jobs will be recovered as "
                "abandoned once their heartbeats lapse"
            )
            return True
        return self.stopping or (self.burst and len(self.done_slots) >= self.size)

    def run(self) -> int:
        """Runs the pool until it is shut down (or, with burst, until the queues are empty)."""
        setproctitle(f"jobpool supervisor [{','.join(self.queue_names)}] {self.size} workers")
        wakeup_fd = self._install_signals()
        if self.metrics is not None:  # before the first fork: its workers close the socket
            self.metrics.serve(self._workers_by_state)
        if self.burst:  # abandoned jobs go back to their queues before the workers find them empty
            self._every("maintenance", MAINTENANCE_SECONDS)
            self._redis_call("recover abandoned jobs", self._maintain)
        if self.cron is not None:
            self._redis_call("register the cron scheduler", self.cron.register_birth)
        for slot in range(self.size):
            self._spawn(slot)
        while not self._finished():
            self._tick(wakeup_fd)
        self._end_cron()
        self._redis_call("release the scheduler locks", self._release_scheduler_locks)
        self.notifier.stopping("stopped")
        logger.info("jobpool supervisor: all workers have stopped")
        if self.summary is not None:
            self.summary.log()
        return 0


def _log_recovered(recovered: list[tuple[str, str, str, str]]) -> None:
    for queue, job_id, _, outcome in recovered:
        logger.warning("%s: job %s was abandoned (its worker vanished): %s", queue, job_id, outcome)


def _nudge(child: Child) -> None:
    with contextlib.suppress(BlockingIOError, BrokenPipeError):  # full, or the worker just exited
        os.write(child.nudge_fd, b"1")


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _lenient_text(value: bytes | str | None) -> str | None:
    """A text field of a hash other clients may write: undecodable bytes do not raise."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _killed_from_outside(status: int) -> bool:
    """Whether a worker was killed by a signal someone sent it (an operator, the OOM killer, a
    test), rather than crashing on its own: such a death is no reason to back off."""
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
