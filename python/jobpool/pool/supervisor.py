"""The supervisor of ``jobpool start``: forks the worker processes and never runs a job itself.

Its loop (gunicorn's arbiter shape: signal handlers only record the signal) keeps the process
table: it forks, reaps and respawns workers (``respawns``), reads what each one owns from its
report pipe (``reports``), hard-kills a worker whose job overran, nudges idle workers when its one
wait on Redis (``wakeup_wait``) finds a job, handles its signals and talks to systemd. Its Redis
duties are objects of their own, each given what it needs: the heartbeat (``heartbeat``), jobs
held ahead (``held_jobs``), the command relay (``command_relay``), settling a dead worker's jobs
(``settling``) and maintenance (``maintenance``); the loop runs them, and the scheduler and cron,
through ``_redis_call``, which outlives a Redis outage.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil
import redis
from setproctitle import setproctitle

from .. import keys
from .._native import MAX_HELD, Ledger
from ..exceptions import JobpoolError, SchedulerNotFound
from ..redis_target import connect_core
from ..timeutils import utcnow
from .burst_summary import BurstSummary
from .children import Child, kill, nudge
from .command_relay import CommandRelay
from .heartbeat import HEARTBEAT_SECONDS, HEARTBEAT_TTL, RECORDS_SECONDS, Heartbeat
from .held_jobs import HeldJobs
from .maintenance import MAINTENANCE_SECONDS, Maintenance
from .pool_worker import run_child
from .reports import Ended, RedisError, Start, Unreadable, read_report
from .respawns import Respawns
from .scheduler import enqueue_due_jobs, register_scheduler, release_scheduler_locks, unregister_scheduler
from .settling import Settling
from .systemd import Notifier
from .tally import Tally
from .wakeup_wait import IDLE_WAIT_SECONDS, WaitCut, WakeupWait

if TYPE_CHECKING:
    from ..cron import CronScheduler
    from .pool_metrics import PoolMetrics

logger = logging.getLogger("jobpool.supervisor")

SCHEDULER_SECONDS = 1.0
STATUS_SECONDS = 5.0
COMPLAIN_SECONDS = 30.0
# How long a stopping pool keeps trying to record what its dead workers ran, when Redis is down.
SETTLE_GRACE_SECONDS = 15.0
TICK_SECONDS = 0.1
# How often an idle pool looks for jobs pushed without a wake-up marker (by plain RQ clients).
LOOK_SECONDS = 1.0
# The least time between two reads of the workers' reports while they are busy: a pool of quick
# jobs wakes its supervisor this often, not once a job. What waits meanwhile (a worker seen idle
# late, a new job's deadline known late) waits no longer than this.
REPORTS_EVERY_SECONDS = 0.002


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
        self.tally = Tally(metrics, self.summary)
        self.ledger = Ledger(size)  # before any fork: shared with every worker
        self.connection = redis.Redis.from_url(url)
        self.wakeups = WakeupWait(url, queue_names)
        self.nudged = 0
        self.redis_reachable = True
        self.core = connect_core(url)
        self.children: dict[int, Child] = {}  # the process table, by pid
        self.generation = 0
        self.respawns = Respawns(burst=burst, metrics=metrics)
        self.retiring: list[int] = []  # SIGHUP: pids still to replace, one at a time
        self.signals: list[int] = []
        self.stopping = False
        self.cold = False  # a second stop signal came: running jobs are being stopped
        self.stopped_at = 0.0
        self.reports_read_at = 0.0  # when the workers' reports were last read (monotonic)
        self.stopped_children: set[int] = set()  # pids of workers found stopped (SIGSTOP) while idle
        self.announced_ready = False
        self.due: dict[str, float] = {}
        # Its Redis duties, each given what it needs.
        self.held = HeldJobs(self.core, self.ledger, queue_names, self.children, self._idle_children)
        self.heartbeat = Heartbeat(self.core, self.connection, queue_names, self.ledger, self.children)
        self.relay = CommandRelay(
            self.connection, self.core, self.ledger, self.children, self._read_reports, self.held, self.tally
        )
        self.settling = Settling(
            self.core, self.connection, queue_names, serializer, self.tally, self._redis_call
        )
        self.maintenance = Maintenance(self.connection, self.core, name, queue_names, serializer)

    # ---- signals -------------------------------------------------------------------------------

    def _record_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)
        if signum == signal.SIGCHLD:
            self.wakeups.cut()

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
        self.respawns.at.clear()  # a slot waiting out its back-off stays empty
        self.notifier.stopping("stopping: running jobs finish")
        self._end_cron()
        self._signal_children(signal.SIGTERM)
        for child in self._idle_children():  # wakes them from their wait for a nudge, to exit now
            nudge(child)

    def _signal_children(self, signum: int) -> None:
        for pid in self.children:
            kill(pid, signum)

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
            self.maintenance.reaped(pid)
            self.settling.reaped(pid)
            if child is not None:
                self.held.take_back(child)
                child.ended = self.ledger.ended(child.slot)
                self.ledger.clear(child.slot)
                self._read_reports(child)
                os.close(child.report_fd)
                os.close(child.nudge_fd)
                self.settling.died(child, status)
                self.respawns.plan(child, status, stopping=self.stopping)

    def _respawn_due(self) -> None:
        for slot in self.respawns.due():
            self._spawn(slot)

    def _retire_next(self) -> None:
        """SIGHUP: warm-stops the next old worker once the pool is whole again."""
        if not self.retiring or self.respawns.at or len(self.children) < self.size:
            return
        if not all(child.reported.ready for child in self.children.values()):
            return
        pid = self.retiring.pop(0)
        if pid in self.children:
            kill(pid, signal.SIGTERM)

    def _read_reports(self, child: Child) -> None:
        """Reads what ``child`` has reported since the last read (see ``reports``)."""
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
            for line in child.reported.lines(data):
                report = read_report(line)
                started = child.reported.apply(report)
                match report:
                    case Start() if started is not None and self.metrics is not None:
                        self.metrics.started(started.queue)
                    case Ended(queue, recorded, seconds):
                        self.tally.ended(queue, recorded, seconds)
                    case RedisError() if self.metrics is not None:
                        self.metrics.redis_error("worker", "take or record jobs")
                    case Unreadable(words):
                        logger.warning("Worker %s sent an unreadable report: %r", child.name, list(words))

    def _enforce_deadlines(self) -> None:
        now = time.time()
        for child in self.children.values():
            for owned in child.reported.owned.values():
                if owned.overran(now) and child.killed_for is None:
                    logger.warning(
                        "%s: job %s overran its timeout without returning to Python; killing %s",
                        owned.queue,
                        owned.job_id,
                        child.name,
                    )
                    child.killed_for = owned
                    kill(child.pid, signal.SIGKILL)

    # ---- the loop ------------------------------------------------------------------------------------

    def _every(self, what: str, seconds: float) -> bool:
        now = time.monotonic()
        if now >= self.due.get(what, 0.0):
            self.due[what] = now + seconds
            return True
        return False

    def status_line(self) -> str:
        """What the pool says of itself to systemd and as it is ready."""
        busy = sum(1 for child in self.children.values() if child.reported.running())
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
            elif not child.reported.ready:
                by_state["starting"] += 1
            else:
                by_state["busy" if child.reported.owned else "idle"] += 1
        return by_state

    def _idle_children(self) -> list[Child]:
        return [child for child in self.children.values() if child.idle]

    def _nudge_an_idle_worker(self, idle: list[Child]) -> None:
        """Nudges the next idle worker in turn that is not stopped (SIGSTOP, a debugger, a
        freezer): a stopped worker would sit on the nudge, and its job on the queue."""
        for _ in range(len(idle)):
            self.nudged = (self.nudged + 1) % len(idle)
            child = idle[self.nudged]
            if not self._is_stopped(child):
                nudge(child)
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
            state = "suspended" if stopped else "idle"
            self._redis_call(
                "record a worker's state",
                lambda: self.connection.hset(keys.worker(child.name), "state", state),
            )
        return stopped

    def _wait_for_work(self) -> None:
        """Waits on the queues' wake-up lists for the whole pool (one blocking call, whatever
        the pool's size) and nudges an idle worker when a job arrives; once a second, nudges
        one anyway, to find jobs pushed without a marker (by plain RQ clients)."""
        idle = self._idle_children()
        if not idle or self.stopping:
            return
        due = self.held.due_in()
        wait = IDLE_WAIT_SECONDS if due is None else min(max(due, 0.01), IDLE_WAIT_SECONDS)
        try:
            woken = self.wakeups.wait(wait)
        except WaitCut:
            return
        if woken or self._every("look", LOOK_SECONDS):
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
        tick = min(TICK_SECONDS, self.held.due_in() or TICK_SECONDS)
        if not readable:
            tick = min(tick, REPORTS_EVERY_SECONDS - since_reports)
        for fd, _ in poller.poll(0 if waiting_on_redis else tick * 1000):
            if fd == wakeup_fd:
                _drain(wakeup_fd)
            else:
                self._read_reports(readable[fd])
                self.reports_read_at = time.monotonic()
        self.held.reclaim_slow()
        self._redis_call("put back held jobs", self.held.put_back)
        self.redis_reachable = self._redis_call("wait for jobs", self._wait_for_work)
        self._handle_signals()
        self._reap()
        self.settling.settle_dead()
        self._respawn_due()
        self._retire_next()
        self._enforce_deadlines()
        self._redis_call("relay worker commands", self.relay.relay)
        if self._every("heartbeat", HEARTBEAT_SECONDS):
            self._redis_call("heartbeat", self.heartbeat.beat)
        elif self._every("records", RECORDS_SECONDS):
            self._redis_call("record executions", self.heartbeat.record_new_executions)
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
            and all(c.reported.ready for c in self.children.values())
        ):
            self.announced_ready = True
            self.notifier.ready(self.status_line())
            logger.info("jobpool supervisor ready: %s", self.status_line())
        if self._every("status", STATUS_SECONDS):
            self.notifier.status(self.status_line())
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

    def _maintain_after_a_beat(self) -> None:
        """Maintenance, but never on a stale view of this pool's own jobs: after a stall (the
        supervisor stopped, Redis refusing writes), this pool's executions may have lapsed, and
        recovering them would fail jobs that still run. A heartbeat must get through first."""
        if self.heartbeat.lapsing():
            self.heartbeat.beat()
        self.maintenance.run()

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
        if self.children or self.respawns.at:
            return False
        if self.settling.webhook_pids and not (
            self.stopping and time.monotonic() - self.stopped_at > SETTLE_GRACE_SECONDS
        ):
            return False  # a dead worker's jobs' webhooks are being sent
        if self.settling.unsettled or self.held.reclaims:
            if not self.stopping or time.monotonic() - self.stopped_at <= SETTLE_GRACE_SECONDS:
                return False
            logger.error(
                "Cannot reach Redis to record what dead workers ran; their jobs will be recovered as "
                "abandoned once their heartbeats lapse"
            )
            return True
        return self.stopping or (self.burst and len(self.respawns.done_slots) >= self.size)

    def run(self) -> int:
        """Runs the pool until it is shut down (or, with burst, until the queues are empty)."""
        setproctitle(f"jobpool supervisor [{','.join(self.queue_names)}] {self.size} workers")
        wakeup_fd = self._install_signals()
        if self.metrics is not None:  # before the first fork: its workers close the socket
            self.metrics.serve(self._workers_by_state)
        if self.burst:  # abandoned jobs go back to their queues before the workers find them empty
            self._every("maintenance", MAINTENANCE_SECONDS)
            self._redis_call("recover abandoned jobs", self.maintenance.run)
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


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
