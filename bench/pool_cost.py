"""Pool cost: ``jobpool start`` against RQ 3.0's ``rq worker-pool``, side by side, in one run on one
private redis-server.

It measures

1. drain throughput of a pool of 2: K no-op jobs are enqueued (with each library's own
   ``enqueue_many``), then the pool runs in burst mode until the queue is empty and exits:
   ``jobpool start -n 2 --burst``, against ``rq worker-pool -n 2 --burst -w rq.worker.SimpleWorker``
   (RQ's fastest: no fork per job) and ``rq worker-pool -n 2 --burst`` (RQ's default worker, a fork
   per job; slow, so it drains fewer jobs). Jobs per second from the jobs' own timestamps (first
   ``started_at`` to last ``ended_at``, read back with jobpool's ``Job.fetch_many``) and from the
   pool process's wall time; the median of several runs, alternating between the pools. Also the
   CPU time per job of the pool process, its workers and redis-server, and the share of the CPUs
   that other processes took meanwhile (a drain that competed with something else shows);
2. the idle cost of a pool of W workers (jobpool: 1, 8 and 32; RQ: 1 and 8): once the pool is up
   (jobpool: READY=1 on a NOTIFY_SOCKET of our own, as systemd's notify protocol; RQ: its W workers
   registered), the Redis commands per second in two fixed windows, the first a few seconds after
   start-up and the steady one once no client has connected for a while (jobpool's workers connect
   on their first take): the requests the pool's clients sent (BLPOP, EVALSHA, ...) and the commands
   Redis executed, including inside Lua scripts. Executed comes from ``INFO commandstats`` (after
   ``CONFIG RESETSTAT``); the commands run inside scripts are named by MONITOR
   (``ScriptCommandWatch``), and sent = executed - inside scripts;
3. memory: RSS, PSS and USS (psutil's ``memory_full_info``) of every process of a running pool of 2
   (not burst), once it is up and again after it has run M no-op jobs; then it gets SIGTERM.

It prints a markdown report to stdout and writes the figures to
``bench/results/pool-<UTC date-time>.json``.

    python bench/pool_cost.py [--quick] [--jobs K] [--rq-jobs K] [--fork-jobs K] [--runs R]
                              [--fork-runs R] [--idle-window S] [--memory-jobs M]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import redis
import rq

import jobpool
from jobpool import keys
from jobpool.embedded_redis import EmbeddedRedis
from jobpool.job import Job, JobStatus

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # workers import the job by name: noop.noop

from machine_info import (  # noqa: E402
    cpu_count,
    environment,
    extension_fingerprint,
    load_average,
    source_revision,
)
from noop import noop  # noqa: E402
from redis_counting import (  # noqa: E402
    ScriptCommandWatch,
    counter_difference,
    executed_commands,
    reset_server_stats,
)
from reporting import (  # noqa: E402
    EN_DASH,
    TIMES,
    Spread,
    number,
    progress,
    spread_cell,
    table,
    verdict,
)

RESULTS_DIR = BENCH_DIR / "results"
POOL_SIZE = 2
DEFAULT_DRAIN_JOBS = 50_000
QUICK_DRAIN_JOBS = 2_000
DEFAULT_FORK_JOBS = 2_000
"""Jobs per drain of RQ's default (fork-per-job) worker pool: it runs about 1/60 as fast."""
QUICK_FORK_JOBS = 200
DEFAULT_RUNS = 3
DEFAULT_FORK_RUNS = 2
"""Drains of RQ's default worker pool (about 35 s each): two keep the full run near 12 minutes."""
QUICK_RUNS = 1
JOBPOOL_IDLE_SIZES = (1, 8, 32)
RQ_IDLE_SIZES = (1, 8)
QUICK_JOBPOOL_IDLE_SIZES = (1, 8)
QUICK_RQ_IDLE_SIZES = (1,)
DEFAULT_IDLE_WINDOW_SECONDS = 5.0
QUICK_IDLE_WINDOW_SECONDS = 2.0
DEFAULT_IDLE_SETTLE_SECONDS = 3.0
QUICK_IDLE_SETTLE_SECONDS = 1.0
WARM_UP_QUIET_SECONDS = 3.0
"""The steady idle window starts once no client has connected to Redis for this long."""
WARM_UP_MAX_SECONDS_PER_WORKER = 2.5
DEFAULT_MEMORY_JOBS = 10_000
QUICK_MEMORY_JOBS = 1_000
ENQUEUE_CHUNK = 5_000
"""Jobs per ``enqueue_many`` when filling a queue (one pipeline each)."""
FETCH_CHUNK = 5_000
"""Jobs per ``Job.fetch_many`` when reading a drain back (one pipeline each)."""
READY_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 30.0
DRAIN_DEADLINE_SECONDS = 1_800.0
EXIT_GRACE_SECONDS = 30.0
"""A burst pool still running this long after its jobs are done is killed, and the run fails."""
WATCH_SECONDS = 0.5
"""How often the watch on a burst pool asks whether its jobs are done."""
SAMPLE_SECONDS = 0.05
"""How often it samples the pool process's CPU time."""
LOG_TAIL_LINES = 20
OTHERS_SHARE_WARNING = 0.05
"""Warn when other processes took more than this share of the CPUs during a drain."""
LOG_LEVEL = "WARNING"
"""Both pools log warnings and errors only (RQ's workers otherwise log each job)."""

MIN_THROUGHPUT_RATIO = 30.0
"""Target: jobpool's pool drains at least this many times as fast as RQ's SimpleWorker pool."""
IDLE_SLACK_RATIO = 1.2
IDLE_SLACK_PER_SECOND = 1.0
"""Idle load counts as independent of the pool's size when the largest pool's requests per second
are at most IDLE_SLACK_RATIO times the smallest's plus IDLE_SLACK_PER_SECOND (the window's edges
and the supervisor's periodic tasks make a count vary by one or two either way)."""


# ---- the pools under test -----------------------------------------------------------------------


def executable_beside_python(name: str) -> str:
    """A console script next to this interpreter (the venv's), else the first on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name


def jobpool_command(url: str, queue: str, size: int, burst: bool) -> list[str]:
    command = [executable_beside_python("jobpool"), "start", "-n", str(size), "-u", url]
    return [*command, *(["--burst"] if burst else []), "--log-level", LOG_LEVEL, queue]


def rq_command(worker_class: str | None) -> Callable[[str, str, int, bool], list[str]]:
    def command(url: str, queue: str, size: int, burst: bool) -> list[str]:
        line = [executable_beside_python("rq"), "worker-pool", "-n", str(size)]
        line += ["--burst"] if burst else []
        line += ["-w", worker_class] if worker_class else []
        return [*line, "-l", LOG_LEVEL, "-u", url, queue]

    return command


@dataclass(frozen=True)
class PoolKind:
    """A pool command of a queue library, under test."""

    name: str
    label: str
    library: str
    queue_class: Any  # jobpool.Queue or rq.Queue: same constructor, prepare_data and enqueue_many
    command: Callable[[str, str, int, bool], list[str]]
    """The command line of a pool of ``size`` workers on a queue (from a URL), burst or not."""
    notifies: bool
    """Whether it tells a NOTIFY_SOCKET when it is up (else: wait for its workers to register)."""

    @property
    def queue_name(self) -> str:
        return f"bench-{self.name}"

    def enqueue(self, connection: redis.Redis, jobs: int) -> list[str]:
        """Enqueues ``jobs`` no-op jobs with this library's own producer; returns their ids."""
        queue = self.queue_class(self.queue_name, connection=connection)
        ids: list[str] = []
        for start in range(0, jobs, ENQUEUE_CHUNK):
            chunk = min(ENQUEUE_CHUNK, jobs - start)
            datas = [self.queue_class.prepare_data(noop) for _ in range(chunk)]
            ids += [job.id for job in queue.enqueue_many(datas)]
        return ids


JOBPOOL = PoolKind("jobpool", "jobpool", "jobpool", jobpool.Queue, jobpool_command, True)
RQ_SIMPLE = PoolKind(
    "rq-simple", "RQ SimpleWorker", "rq", rq.Queue, rq_command("rq.worker.SimpleWorker"), False
)
RQ_FORK = PoolKind("rq-fork", "RQ default Worker", "rq", rq.Queue, rq_command(None), False)
DRAIN_POOLS = (JOBPOOL, RQ_SIMPLE, RQ_FORK)
VERSIONS = {"jobpool": jobpool.__version__, "rq": rq.__version__}


def pool_environment(notify_path: Path | None = None) -> dict[str, str]:
    """This environment, with bench/ first on PYTHONPATH so that workers import ``noop``, and
    NOTIFY_SOCKET set to ours (or removed)."""
    paths = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop("NOTIFY_SOCKET", None)
    if notify_path is not None:
        env["NOTIFY_SOCKET"] = str(notify_path)
    return env


def log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])


class RunningPool:
    """A pool command in a subprocess (not burst), its output to a log file, with a NOTIFY_SOCKET
    of our own. Leaving the ``with`` block stops it: SIGTERM (a warm shutdown), then SIGKILL for it
    and every process it started if it has not exited in time."""

    def __init__(self, kind: PoolKind, url: str, size: int, directory: Path) -> None:
        self.kind = kind
        self.size = size
        self.log_path = directory / f"{kind.name}-{size}.log"
        self.notify_path = directory / f"{kind.name}-{size}.notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.messages: list[str] = []
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                kind.command(url, kind.queue_name, size, False),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=pool_environment(self.notify_path if kind.notifies else None),
            )
        self.started = time.monotonic()

    def __enter__(self) -> RunningPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.kind.label} pool exited with {self.process.returncode}:\n{log_tail(self.log_path)}"
            )

    def wait_until_ready(self, admin: redis.Redis) -> float:
        """Waits until every worker is up; returns the seconds since the pool's command started."""
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            self._check_alive()
            if self.kind.notifies:
                self.notify.settimeout(0.2)
                with contextlib.suppress(TimeoutError):
                    message = self.notify.recv(4096).decode()
                    self.messages.append(message)
                    if "READY=1" in message.split("\n"):
                        return time.monotonic() - self.started
            else:
                if self._registered_idle_workers(admin) >= self.size:
                    return time.monotonic() - self.started
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind.label} pool not up within {READY_DEADLINE_SECONDS:.0f} s")

    def _registered_idle_workers(self, admin: redis.Redis) -> int:
        names = admin.smembers(keys.WORKERS)
        if len(names) < self.size:
            return 0
        with admin.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hget(name, "state")
            states = pipe.execute()
        return sum(1 for state in states if state == b"idle")

    def processes(self) -> list[tuple[psutil.Process, int]]:
        """The pool's process and all it started, each with its depth (0: the pool's process)."""
        root = psutil.Process(self.process.pid)
        found = [(root, 0)]
        for process, depth in found:
            with contextlib.suppress(psutil.NoSuchProcess):
                found += [(child, depth + 1) for child in process.children()]
        return found

    def stop(self) -> int:
        """SIGTERM, then waits for the pool to exit; returns its exit status."""
        if self.process.poll() is None:
            started = [process for process, depth in self.processes() if depth > 0]
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                progress(f"warning: {self.kind.label} pool did not stop on SIGTERM; killing it")
                self.process.kill()
                self.process.wait()
            for process in started:  # normally gone with their pool already
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
        self.notify.close()
        return self.process.returncode


# ---- checking a drain ---------------------------------------------------------------------------


def finished_jobs(admin: redis.Redis, job_ids: Sequence[str]) -> list[Job]:
    """The jobs, read with jobpool's ``Job.fetch_many`` in chunks (RQ's data is the same); raises
    unless every one of them finished."""
    jobs: list[Job | None] = []
    for start in range(0, len(job_ids), FETCH_CHUNK):
        jobs += Job.fetch_many(job_ids[start : start + FETCH_CHUNK], admin)
    unfinished = [
        job_id
        for job_id, job in zip(job_ids, jobs, strict=True)
        if job is None or job.get_status(refresh=False) != JobStatus.FINISHED
    ]
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} of {len(job_ids)} jobs did not finish, e.g. {unfinished[0]}")
    return [job for job in jobs if job is not None]


# ---- drain throughput ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSeconds:
    """CPU time (user + system) spent during a drain, by whom."""

    pool_process: float
    """The supervisor (jobpool), or the worker-pool process (RQ): its own time."""
    workers: float
    """The workers, with anything they started and waited for (RQ's work horses)."""
    redis_server: float
    others: float = 0.0
    """Every other process on the machine (the benchmark's own process left out): what
    competed with the pool for the CPUs. Not part of ``total``."""

    @property
    def total(self) -> float:
        return self.pool_process + self.workers + self.redis_server

    def to_json(self) -> dict[str, float]:
        return {
            "pool_process": self.pool_process,
            "workers": self.workers,
            "redis_server": self.redis_server,
            "total": self.total,
            "other_processes": self.others,
        }


@dataclass(frozen=True)
class DrainRun:
    """One pool process, in burst mode, draining a queue of ``jobs`` jobs."""

    jobs: int
    wall_seconds: float
    first_started: datetime
    last_ended: datetime
    cpu: CpuSeconds

    @property
    def wall_rate(self) -> float:
        """Jobs per second of the pool process's life, start-up and shutdown included."""
        return self.jobs / self.wall_seconds

    @property
    def job_rate(self) -> float:
        """Jobs per second from the first job's start to the last job's end."""
        return self.jobs / self.job_seconds

    @property
    def job_seconds(self) -> float:
        return (self.last_ended - self.first_started).total_seconds()

    @property
    def others_share(self) -> float:
        """The share of the machine's CPU time that other processes took during the run."""
        return max(0.0, self.cpu.others) / (self.wall_seconds * cpu_count())

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "wall_seconds": self.wall_seconds,
            "first_started_at": self.first_started.isoformat(),
            "last_ended_at": self.last_ended.isoformat(),
            "wall_jobs_per_second": self.wall_rate,
            "timestamp_jobs_per_second": self.job_rate,
            "cpu_seconds": self.cpu.to_json(),
        }


def own_cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def machine_busy_seconds() -> float:
    """CPU time all CPUs have spent busy since boot (not idle, not waiting for I/O)."""
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system
    return float(busy + sum(getattr(times, name, 0.0) for name in ("irq", "softirq", "steal")))


def kill_process_tree(pid: int) -> None:
    """SIGKILL for a process we started and for every process it started."""
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        started = root.children(recursive=True)
        root.kill()
        for each in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                each.kill()


@dataclass
class PoolWatch:
    """What a thread watching a burst pool found: the pool process's own CPU time (sampled every
    SAMPLE_SECONDS, so the last sample is at most that old when it exits) and whether it hung."""

    pool_cpu_seconds: float = 0.0
    hung: str = ""


def watch_pool(pid: int, exited: threading.Event, done: Callable[[], bool], watch: PoolWatch) -> None:
    """Samples the pool process's CPU time until it exits; kills it (and its workers) if it is
    still running EXIT_GRACE_SECONDS after its jobs are done, as it should exit within a second
    or two (a bug to report, not a figure), or after DRAIN_DEADLINE_SECONDS in all."""
    started = time.monotonic()
    done_since: float | None = None
    checked = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        while not exited.wait(SAMPLE_SECONDS):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                watch.pool_cpu_seconds = own_cpu_seconds(process)
            now = time.monotonic()
            if done_since is None and now - checked >= WATCH_SECONDS:
                checked = now
                if done():
                    done_since = now
            if done_since is not None and now - done_since > EXIT_GRACE_SECONDS:
                watch.hung = f"had not exited {EXIT_GRACE_SECONDS:.0f} s after its jobs were done"
            elif now - started > DRAIN_DEADLINE_SECONDS:
                watch.hung = f"ran for over {DRAIN_DEADLINE_SECONDS:.0f} s"
            if watch.hung:
                kill_process_tree(pid)
                return


def run_pool_to_end(
    command: list[str], log_path: Path, done: Callable[[], bool], server: psutil.Process
) -> tuple[float, CpuSeconds]:
    """Runs a burst pool to its end, its output to ``log_path``; returns its wall time and the
    CPU time spent. ``done`` tells whether its jobs are all done (asked from a thread).

    The pool's whole CPU time (its own and its workers', which it waits for) comes from wait4();
    the pool process's own, from the last sample before it exited."""
    exited, watch = threading.Event(), PoolWatch()
    benchmark = psutil.Process()
    with log_path.open("ab") as log:
        machine_before, benchmark_before = machine_busy_seconds(), own_cpu_seconds(benchmark)
        server_before = own_cpu_seconds(server)
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=pool_environment()
        )
        watchdog = threading.Thread(target=watch_pool, args=(process.pid, exited, done, watch), daemon=True)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        finally:
            wall_seconds = time.perf_counter() - start
            exited.set()
            watchdog.join()
        server_seconds = own_cpu_seconds(server) - server_before
        machine_seconds = machine_busy_seconds() - machine_before
        benchmark_seconds = own_cpu_seconds(benchmark) - benchmark_before
    if watch.hung:
        raise RuntimeError(f"{command[0]} {watch.hung} (killed):\n{log_tail(log_path)}")
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log_tail(log_path)}")
    tree_seconds = usage.ru_utime + usage.ru_stime
    others = machine_seconds - tree_seconds - server_seconds - benchmark_seconds
    cpu = CpuSeconds(watch.pool_cpu_seconds, tree_seconds - watch.pool_cpu_seconds, server_seconds, others)
    return wall_seconds, cpu


def timed_drain(
    kind: PoolKind, url: str, admin: redis.Redis, server: psutil.Process, jobs: int, log_dir: Path
) -> DrainRun:
    admin.flushdb()
    job_ids = kind.enqueue(admin, jobs)
    command = kind.command(url, kind.queue_name, POOL_SIZE, True)
    finished = keys.registry("finished", kind.queue_name)
    wall_seconds, cpu = run_pool_to_end(
        command, log_dir / f"{kind.name}-drain.log", lambda: admin.zcard(finished) >= jobs, server
    )
    done = finished_jobs(admin, job_ids)
    first_started = min(job.started_at for job in done if job.started_at)
    last_ended = max(job.ended_at for job in done if job.ended_at)
    return DrainRun(jobs, wall_seconds, first_started, last_ended, cpu)


@dataclass(frozen=True)
class Throughput:
    runs: tuple[DrainRun, ...]

    @property
    def wall(self) -> Spread:
        return Spread(tuple(run.wall_rate for run in self.runs))

    @property
    def timestamps(self) -> Spread:
        return Spread(tuple(run.job_rate for run in self.runs))

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_jobs_per_second": self.wall.to_json(),
            "timestamp_jobs_per_second": self.timestamps.to_json(),
            "cpu_microseconds_per_job": self.cpu_per_job.to_json(),
            "runs": [run.to_json() for run in self.runs],
        }

    @property
    def cpu_per_job(self) -> CpuSeconds:
        """CPU microseconds per job, over all runs."""
        jobs = sum(run.jobs for run in self.runs) / 1e6
        return CpuSeconds(
            sum(run.cpu.pool_process for run in self.runs) / jobs,
            sum(run.cpu.workers for run in self.runs) / jobs,
            sum(run.cpu.redis_server for run in self.runs) / jobs,
            sum(run.cpu.others for run in self.runs) / jobs,
        )


def measure_throughput(
    url: str,
    admin: redis.Redis,
    server: psutil.Process,
    jobs: dict[str, int],
    runs: dict[str, int],
    log_dir: Path,
) -> dict[str, Throughput]:
    """Runs alternate between the pools, so a change in the machine's load hits all alike."""
    drains: dict[str, list[DrainRun]] = {kind.name: [] for kind in DRAIN_POOLS}
    for run in range(max(runs.values())):
        for kind in DRAIN_POOLS:
            if run >= runs[kind.name]:
                continue
            progress(f"drain run {run + 1}/{runs[kind.name]}: {kind.label} pool, {jobs[kind.name]:,} jobs")
            drain = timed_drain(kind, url, admin, server, jobs[kind.name], log_dir)
            progress(
                f"  {drain.wall_seconds:.1f} s wall, {drain.job_seconds:.1f} s of jobs, "
                f"{drain.job_rate:,.0f} jobs/s by the timestamps; CPU s: pool process "
                f"{drain.cpu.pool_process:.1f}, workers {drain.cpu.workers:.1f}, "
                f"redis {drain.cpu.redis_server:.1f}, other processes {drain.cpu.others:.1f}"
            )
            drains[kind.name].append(drain)
    admin.flushdb()
    return {name: Throughput(tuple(each)) for name, each in drains.items()}


# ---- idle cost ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleTiming:
    settle_seconds: float
    """From the pool being up to the first window."""
    window_seconds: float


def connected_clients(admin: redis.Redis) -> int:
    return int(admin.info("clients")["connected_clients"])


def wait_until_connections_settle(admin: redis.Redis, size: int) -> int:
    """Waits until the number of clients connected to Redis has not changed for
    WARM_UP_QUIET_SECONDS (at most WARM_UP_MAX_SECONDS_PER_WORKER per worker); returns it.

    jobpool's pool workers connect lazily, on their first take, and an idle pool lets one worker
    look for jobs at a time (about one a second): a pool of 32 is still connecting, and loading
    its scripts, half a minute after it is up. RQ's workers connect as they start."""
    deadline = time.monotonic() + WARM_UP_MAX_SECONDS_PER_WORKER * size + WARM_UP_QUIET_SECONDS
    count = connected_clients(admin)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < WARM_UP_QUIET_SECONDS:
        if time.monotonic() > deadline:
            progress(f"warning: clients still connecting after {WARM_UP_MAX_SECONDS_PER_WORKER * size:.0f} s")
            break
        time.sleep(0.25)
        now = connected_clients(admin)
        if now != count:
            count, quiet_since = now, time.monotonic()
    return count


@dataclass(frozen=True)
class IdleWindow:
    """What an idle pool cost Redis over ``seconds``."""

    seconds: float
    sent: Counter[str]
    """Requests: the commands the pool's clients sent."""
    executed: Counter[str]
    """Commands Redis executed, including inside scripts."""

    @property
    def inside_scripts(self) -> Counter[str]:
        return counter_difference(self.executed, self.sent)

    @property
    def sent_per_second(self) -> float:
        return sum(self.sent.values()) / self.seconds

    @property
    def executed_per_second(self) -> float:
        return sum(self.executed.values()) / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "requests_per_second": self.sent_per_second,
            "executed_per_second": self.executed_per_second,
            "sent": dict(sorted(self.sent.items())),
            "executed": dict(sorted(self.executed.items())),
            "inside_scripts": dict(sorted(self.inside_scripts.items())),
        }


class WindowCounter:
    """Counts Redis commands window by window: each ``window()`` returns what ran since the last
    (or since ``start()``) and starts the next."""

    def __init__(self, admin: redis.Redis, watch: ScriptCommandWatch) -> None:
        self.admin = admin
        self.watch = watch
        self.started = 0.0

    def start(self) -> None:
        self.watch.collect(self.admin)  # forget what scripts ran before
        reset_server_stats(self.admin)
        self.started = time.monotonic()

    def window(self) -> IdleWindow:
        executed = executed_commands(self.admin)
        seconds = time.monotonic() - self.started
        inside_scripts = self.watch.collect(self.admin)  # its ECHO marker is before the reset
        reset_server_stats(self.admin)
        self.started = time.monotonic()
        return IdleWindow(seconds, counter_difference(executed, inside_scripts), executed)


@dataclass(frozen=True)
class IdleCost:
    """What an idle pool of ``size`` workers cost Redis: from being up to the first window
    (warm-up), in a first window ``settle`` seconds after it is up, and in a steady window once
    every worker has had time to warm up."""

    size: int
    ready_seconds: float
    """From the pool's command to all its workers up."""
    warm_up: IdleWindow
    first: IdleWindow
    steady: IdleWindow
    steady_starts_after: float
    """Seconds from the pool being up to the steady window."""
    clients: int
    """Clients connected to Redis during the steady window (the benchmark's two included)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.size,
            "ready_seconds": self.ready_seconds,
            "steady_window_starts_after_ready_seconds": self.steady_starts_after,
            "clients_connected_in_steady_window": self.clients,
            "warm_up": self.warm_up.to_json(),
            "first_window": self.first.to_json(),
            "steady_window": self.steady.to_json(),
        }


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def measure_idle_pool(
    kind: PoolKind,
    url: str,
    admin: redis.Redis,
    watch: ScriptCommandWatch,
    size: int,
    timing: IdleTiming,
    log_dir: Path,
) -> IdleCost:
    admin.flushdb()
    counter = WindowCounter(admin, watch)
    with RunningPool(kind, url, size, log_dir) as pool:
        ready_seconds = pool.wait_until_ready(admin)
        ready = time.monotonic()
        counter.start()
        sleep_until(ready + timing.settle_seconds)
        warm_up = counter.window()
        time.sleep(timing.window_seconds)
        first = counter.window()
        clients = wait_until_connections_settle(admin, size)
        counter.window()  # between the two windows
        steady_starts_after = time.monotonic() - ready
        time.sleep(timing.window_seconds)
        steady = counter.window()
        pool._check_alive()
    return IdleCost(size, ready_seconds, warm_up, first, steady, steady_starts_after, clients)


def measure_idle(
    url: str, admin: redis.Redis, sizes: Mapping[str, Sequence[int]], timing: IdleTiming, log_dir: Path
) -> dict[str, list[IdleCost]]:
    costs: dict[str, list[IdleCost]] = {}
    with ScriptCommandWatch(url) as watch:
        for kind in (JOBPOOL, RQ_FORK):
            for size in sizes[kind.name]:
                progress(f"idle: {kind.label} pool of {size}, {timing.window_seconds:.0f} s windows")
                cost = measure_idle_pool(kind, url, admin, watch, size, timing, log_dir)
                progress(
                    f"  up in {cost.ready_seconds:.1f} s; first window {cost.first.sent_per_second:.1f} "
                    f"requests/s, {cost.first.executed_per_second:.1f} executed/s; steady "
                    f"{cost.steady.sent_per_second:.1f} requests/s, "
                    f"{cost.steady.executed_per_second:.1f} executed/s"
                )
                costs.setdefault(kind.name, []).append(cost)
    admin.flushdb()
    return costs


# ---- memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessMemory:
    role: str
    pid: int
    title: str
    rss: int
    pss: int
    uss: int

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "pid": self.pid,
            "title": self.title,
            "rss_bytes": self.rss,
            "pss_bytes": self.pss,
            "uss_bytes": self.uss,
        }


def role_of(kind: PoolKind, depth: int, index: int) -> str:
    if depth == 0:
        return "supervisor" if kind.library == "jobpool" else "worker-pool process"
    if depth == 1:
        return f"worker {index}"
    # RQ's workers start its scheduler in a process of its own (one per Redis, under a lock)
    return "scheduler (a worker's child)" if kind.library == "rq" else "a worker's child"


def memory_snapshot(pool: RunningPool) -> list[ProcessMemory]:
    snapshot = []
    workers = 0
    for process, depth in pool.processes():
        try:
            info = process.memory_full_info()
            title = " ".join(process.cmdline())
        except psutil.NoSuchProcess:
            continue
        workers += depth == 1
        role = role_of(pool.kind, depth, workers)
        snapshot.append(ProcessMemory(role, process.pid, title, info.rss, info.pss, info.uss))
    return snapshot


@dataclass(frozen=True)
class PoolMemory:
    size: int
    jobs: int
    run_seconds: float
    at_start: list[ProcessMemory]
    after_jobs: list[ProcessMemory]

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.size,
            "jobs": self.jobs,
            "run_seconds": self.run_seconds,
            "at_start": [each.to_json() for each in self.at_start],
            "after_jobs": [each.to_json() for each in self.after_jobs],
        }


def wait_for_finished(kind: PoolKind, admin: redis.Redis, pool: RunningPool, jobs: int) -> float:
    """Waits until ``jobs`` jobs are in the queue's finished registry; returns the seconds waited."""
    registry = keys.registry("finished", kind.queue_name)
    start = time.monotonic()
    deadline = start + DRAIN_DEADLINE_SECONDS
    while admin.zcard(registry) < jobs:
        pool._check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind.label} pool: {jobs} jobs not finished in {DRAIN_DEADLINE_SECONDS} s")
        time.sleep(0.1)
    return time.monotonic() - start


def measure_pool_memory(kind: PoolKind, url: str, admin: redis.Redis, jobs: int, log_dir: Path) -> PoolMemory:
    admin.flushdb()
    with RunningPool(kind, url, POOL_SIZE, log_dir) as pool:
        pool.wait_until_ready(admin)
        time.sleep(1.0)  # RQ: its workers' start-up work (registry cleaning, scheduler) done
        at_start = memory_snapshot(pool)
        job_ids = kind.enqueue(admin, jobs)
        run_seconds = wait_for_finished(kind, admin, pool, jobs)
        after_jobs = memory_snapshot(pool)
    finished_jobs(admin, job_ids)
    admin.flushdb()
    return PoolMemory(POOL_SIZE, jobs, run_seconds, at_start, after_jobs)


def measure_memory(url: str, admin: redis.Redis, jobs: int, log_dir: Path) -> dict[str, PoolMemory]:
    figures = {}
    for kind in (JOBPOOL, RQ_SIMPLE):
        progress(f"memory: {kind.label} pool of {POOL_SIZE}, {jobs:,} jobs")
        figures[kind.name] = measure_pool_memory(kind, url, admin, jobs, log_dir)
        progress(f"  {jobs:,} jobs run in {figures[kind.name].run_seconds:.1f} s")
    return figures


# ---- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    started: datetime
    quick: bool
    drain_jobs: dict[str, int]
    drain_runs: dict[str, int]
    timing: IdleTiming
    memory_jobs: int
    environment: dict[str, Any]
    throughput: dict[str, Throughput]
    idle: dict[str, list[IdleCost]]
    memory: dict[str, PoolMemory]
    commands: dict[str, list[str]] = field(default_factory=dict)

    def ratio(self, other: str, kind: str) -> float:
        """jobpool's median rate over another pool's, ``kind`` ``wall`` or ``timestamps``."""
        ours = getattr(self.throughput["jobpool"], kind).median
        return float(ours / getattr(self.throughput[other], kind).median)

    def idle_independent(self, per_second: Callable[[IdleWindow], float], steady: bool = True) -> bool:
        """Whether jobpool's idle load (steady window, else the first) is the same at every size."""
        rates = [per_second(cost.steady if steady else cost.first) for cost in self.idle["jobpool"]]
        return max(rates) <= min(rates) * IDLE_SLACK_RATIO + IDLE_SLACK_PER_SECOND

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "pool_cost",
            "started_utc": self.started.isoformat(),
            "quick": self.quick,
            "config": {
                "pool_size": POOL_SIZE,
                "drain_jobs": self.drain_jobs,
                "drain_runs": self.drain_runs,
                "idle_settle_seconds": self.timing.settle_seconds,
                "idle_window_seconds": self.timing.window_seconds,
                "idle_steady_after_clients_quiet_seconds": WARM_UP_QUIET_SECONDS,
                "memory_jobs": self.memory_jobs,
                "log_level": LOG_LEVEL,
            },
            "environment": self.environment,
            "versions": VERSIONS,
            "commands": self.commands,
            "throughput": {name: figures.to_json() for name, figures in self.throughput.items()},
            "ratio_jobpool_over": {
                other: {"wall": self.ratio(other, "wall"), "timestamps": self.ratio(other, "timestamps")}
                for other in (RQ_SIMPLE.name, RQ_FORK.name)
            },
            "idle": {name: [cost.to_json() for cost in costs] for name, costs in self.idle.items()},
            "memory": {name: figures.to_json() for name, figures in self.memory.items()},
            "targets": {
                "30x_rq_simpleworker_pool_timestamps": self.ratio(RQ_SIMPLE.name, "timestamps")
                >= MIN_THROUGHPUT_RATIO,
                "30x_rq_simpleworker_pool_wall": self.ratio(RQ_SIMPLE.name, "wall") >= MIN_THROUGHPUT_RATIO,
                "idle_requests_independent_of_size": self.idle_independent(requests_per_second),
                "idle_executed_independent_of_size": self.idle_independent(executed_per_second),
                "idle_requests_independent_of_size_first_window": self.idle_independent(
                    requests_per_second, steady=False
                ),
                "idle_executed_independent_of_size_first_window": self.idle_independent(
                    executed_per_second, steady=False
                ),
            },
        }


def drain_heading(results: Results) -> str:
    runs = results.drain_runs
    jobs = results.drain_jobs
    parts = [f"{kind.label} {number(jobs[kind.name])} jobs {TIMES} {runs[kind.name]}" for kind in DRAIN_POOLS]
    return (
        f"### Drain throughput, pools of {POOL_SIZE} in burst mode ({'; '.join(parts)} runs; "
        f"median, min{EN_DASH}max)"
    )


def throughput_rows(results: Results) -> list[list[str]]:
    figures = [results.throughput[kind.name] for kind in DRAIN_POOLS]

    def ratios(kind: str) -> list[str]:
        return [f"{results.ratio(other.name, kind):.1f}{TIMES}" for other in DRAIN_POOLS[1:]]

    return [
        [
            "jobs/s, from the jobs' timestamps (first `started_at` to last `ended_at`)",
            *(spread_cell(each.timestamps) for each in figures),
            *ratios("timestamps"),
        ],
        [
            "jobs/s, from the pool process's wall time (start-up and exit included)",
            *(spread_cell(each.wall) for each in figures),
            *ratios("wall"),
        ],
    ]


def cpu_rows(results: Results) -> list[list[str]]:
    figures = [results.throughput[kind.name].cpu_per_job for kind in DRAIN_POOLS]

    def row(label: str, value: Callable[[CpuSeconds], float]) -> list[str]:
        return [label, *(number(round(value(each))) for each in figures)]

    return [
        row("pool process (jobpool: supervisor)", lambda cpu: cpu.pool_process),
        row("workers (RQ default: with their work horses)", lambda cpu: cpu.workers),
        row("redis-server", lambda cpu: cpu.redis_server),
        row("all", lambda cpu: cpu.total),
    ]


def requests_per_second(window: IdleWindow) -> float:
    return window.sent_per_second


def executed_per_second(window: IdleWindow) -> float:
    return window.executed_per_second


def per_second(counts: Counter[str], seconds: float) -> str:
    """``BLPOP 4, EVALSHA 1`` per second, most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return (
        ", ".join(f"{name.replace('|', ' ').upper()} {count / seconds:.1f}" for name, count in ordered) or "-"
    )


def idle_rows(results: Results) -> list[list[str]]:
    rows = []
    for kind in (JOBPOOL, RQ_FORK):
        label = "jobpool" if kind is JOBPOOL else "RQ (default Worker)"
        for cost in results.idle.get(kind.name, []):
            steady = cost.steady
            rows.append(
                [
                    f"{label}, {cost.size} worker{'s' if cost.size > 1 else ''}",
                    f"{cost.first.sent_per_second:.1f}",
                    f"{steady.sent_per_second:.1f}",
                    f"{cost.first.executed_per_second:.1f}",
                    f"{steady.executed_per_second:.1f}",
                    per_second(steady.sent, steady.seconds),
                    per_second(steady.inside_scripts, steady.seconds),
                ]
            )
    return rows


def warm_up_line(results: Results) -> str:
    """What the pools sent between being up and the first window, and SCRIPT LOADs by window."""
    parts = []
    for kind in (JOBPOOL, RQ_FORK):
        label = "jobpool" if kind is JOBPOOL else "RQ"
        for cost in results.idle.get(kind.name, []):
            loads = [window.sent["script|load"] for window in (cost.warm_up, cost.first, cost.steady)]
            parts.append(
                f"{label} {cost.size}: {cost.steady_starts_after:.0f} s, {cost.clients} clients; "
                f"SCRIPT LOAD {loads[0]} / {loads[1]} / {loads[2]}"
            )
    return (
        "When the steady window started (seconds after the pool was up) and the clients connected then "
        "(the benchmark's 2 included); SCRIPT LOADs before the first window / in it / in the steady "
        "window: " + "; ".join(parts) + "."
    )


def megabytes(count: int) -> str:
    return f"{count / 2**20:.1f}"


def memory_rows(results: Results) -> list[list[str]]:
    rows = []
    for kind in (JOBPOOL, RQ_SIMPLE):
        figures = results.memory[kind.name]
        start = {each.pid: each for each in figures.at_start}
        after = figures.after_jobs
        for each in after:
            before = start.get(each.pid)
            rows.append(
                [
                    f"{kind.label}: {each.role}",
                    megabytes(before.rss) if before else "-",
                    megabytes(each.rss),
                    megabytes(before.pss) if before else "-",
                    megabytes(each.pss),
                    megabytes(each.uss),
                ]
            )
        rows.append(
            [
                f"{kind.label}: all {len(after)} processes",
                megabytes(sum(each.rss for each in figures.at_start)),
                megabytes(sum(each.rss for each in after)),
                megabytes(sum(each.pss for each in figures.at_start)),
                megabytes(sum(each.pss for each in after)),
                megabytes(sum(each.uss for each in after)),
            ]
        )
    return rows


def target_lines(results: Results) -> list[str]:
    timestamps = results.ratio(RQ_SIMPLE.name, "timestamps")
    wall = results.ratio(RQ_SIMPLE.name, "wall")
    idle = results.idle["jobpool"]

    def by_size(per_second: Callable[[IdleWindow], float], steady: bool) -> str:
        return ", ".join(
            f"{cost.size}: {per_second(cost.steady if steady else cost.first):.1f}" for cost in idle
        )

    def judged(steady: bool) -> str:
        requests = results.idle_independent(requests_per_second, steady)
        executed = results.idle_independent(executed_per_second, steady)
        return (
            f"requests **{verdict(requests)}** (per second, by pool size: "
            f"{by_size(requests_per_second, steady)}); commands executed **{verdict(executed)}** "
            f"({by_size(executed_per_second, steady)})"
        )

    return [
        f"- At least {MIN_THROUGHPUT_RATIO:.0f}{TIMES} RQ's SimpleWorker pool at equal size "
        f"({POOL_SIZE} workers): by the jobs' timestamps **{verdict(timestamps >= MIN_THROUGHPUT_RATIO)}** "
        f"({timestamps:.1f}{TIMES}); by wall time **{verdict(wall >= MIN_THROUGHPUT_RATIO)}** "
        f"({wall:.1f}{TIMES}).",
        f"- Idle Redis load independent of the pool's size (largest at most {IDLE_SLACK_RATIO}{TIMES} "
        f"the smallest + {IDLE_SLACK_PER_SECOND:.0f}/s), in the steady window: {judged(True)}. "
        f"In the first window: {judged(False)}.",
    ]


def others_line(results: Results) -> str:
    shares = [
        f"{kind.label} "
        + ", ".join(f"{100 * run.others_share:.0f} %" for run in results.throughput[kind.name].runs)
        for kind in DRAIN_POOLS
    ]
    return (
        "Share of the machine's CPU time taken by other processes (not the pool, its Redis or the "
        "benchmark) during each drain: " + "; ".join(shares) + "."
    )


def render_markdown(results: Results) -> str:
    env = results.environment
    timing = results.timing
    memory_jobs = number(results.memory_jobs)
    lines = [
        f"## Pool: jobpool {VERSIONS['jobpool']} `jobpool start` vs RQ {VERSIONS['rq']} `rq worker-pool`",
        "",
        f"redis-server {env['redis_server']}, redis-py {env['redis_py']}, Python {env['python']}, "
        f"{env['nproc']} CPUs ({env['cpu_model']}), load average before {env['load_average_before']}, "
        f"after {env['load_average_after']}; jobpool extension: {env['extension_build']} build"
        + (", **quick run**" if results.quick else ""),
        "",
        drain_heading(results),
        "",
        *table(
            [
                "",
                "jobpool",
                "RQ SimpleWorker",
                "RQ default Worker",
                "jobpool / RQ SimpleWorker",
                "jobpool / RQ default",
            ],
            throughput_rows(results),
        ),
        "",
        "CPU time per job during the drains, µs (user + system, all runs; from the pool process's start "
        "to its exit):",
        "",
        *table(["", "jobpool", "RQ SimpleWorker", "RQ default Worker"], cpu_rows(results)),
        "",
        others_line(results),
        "",
        f"### Idle cost: Redis calls per second of an idle pool ({timing.window_seconds:.0f} s windows: "
        f"the first {timing.settle_seconds:.0f} s after the pool is up; the steady one once no client "
        f"has connected to Redis for {WARM_UP_QUIET_SECONDS:.0f} s)",
        "",
        *table(
            [
                "pool",
                "requests/s, first",
                "requests/s, steady",
                "executed/s, first",
                "executed/s, steady",
                "requests, by command (steady)",
                "inside scripts, by command (steady)",
            ],
            idle_rows(results),
        ),
        "",
        warm_up_line(results),
        "",
        f"### Memory of a pool of {POOL_SIZE} (not burst), MiB: once up, and after {memory_jobs} no-op jobs",
        "",
        *table(
            [
                "process",
                "RSS up",
                f"RSS after {memory_jobs}",
                "PSS up",
                f"PSS after {memory_jobs}",
                f"USS after {memory_jobs}",
            ],
            memory_rows(results),
        ),
        "",
        "### Targets",
        "",
        *target_lines(results),
    ]
    return "\n".join(lines) + "\n"


def warnings(results: Results) -> Iterator[str]:
    """Anything that makes a figure doubtful."""
    env = results.environment
    if env["extension_sha256_before"] != env["extension_sha256_after"]:
        yield "warning: jobpool's extension was rebuilt during the run: the figures mix two builds"
    for name, figures in results.throughput.items():
        for index, run in enumerate(figures.runs):
            if run.others_share > OTHERS_SHARE_WARNING:
                yield (
                    f"warning: {name} drain run {index + 1}: other processes took "
                    f"{100 * run.others_share:.0f} % of the CPUs: its rate is doubtful"
                )
    if env["extension_build"] != "release":
        yield f"warning: jobpool's extension is a {env['extension_build']} build: run `make build-release`"
    for name, costs in results.idle.items():
        for cost in costs:
            for window in (cost.warm_up, cost.first, cost.steady):
                if negative := {command: count for command, count in window.sent.items() if count < 0}:
                    yield f"warning: {name} idle pool of {cost.size}: in scripts > executed: {negative}"


def write_json(results: Results) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"pool-{results.started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    return path


# ---- running it ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="jobpool start against rq worker-pool, side by side.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"a small run (under a minute): {QUICK_DRAIN_JOBS:,} drain jobs ({QUICK_FORK_JOBS} for RQ's "
            f"default worker), {QUICK_RUNS} run, {QUICK_IDLE_WINDOW_SECONDS:.0f} s idle windows, "
            f"{QUICK_MEMORY_JOBS:,} memory jobs"
        ),
    )
    parser.add_argument("--jobs", type=int, help=f"K: jobs per jobpool drain run ({DEFAULT_DRAIN_JOBS:,})")
    parser.add_argument("--rq-jobs", type=int, help="jobs per RQ SimpleWorker pool drain run (K)")
    parser.add_argument(
        "--fork-jobs", type=int, help=f"jobs per RQ default worker pool drain run ({DEFAULT_FORK_JOBS:,})"
    )
    parser.add_argument("--runs", type=int, help=f"drain runs per pool ({DEFAULT_RUNS})")
    parser.add_argument(
        "--fork-runs", type=int, help=f"drain runs of RQ's default worker pool ({DEFAULT_FORK_RUNS})"
    )
    parser.add_argument(
        "--idle-window", type=float, help=f"seconds counted per idle pool ({DEFAULT_IDLE_WINDOW_SECONDS:.0f})"
    )
    parser.add_argument(
        "--memory-jobs", type=int, help=f"jobs run before measuring memory ({DEFAULT_MEMORY_JOBS:,})"
    )
    options = parser.parse_args(argv)
    quick = options.quick
    options.jobs = options.jobs or (QUICK_DRAIN_JOBS if quick else DEFAULT_DRAIN_JOBS)
    options.rq_jobs = options.rq_jobs or options.jobs
    options.fork_jobs = options.fork_jobs or (QUICK_FORK_JOBS if quick else DEFAULT_FORK_JOBS)
    options.runs = options.runs or (QUICK_RUNS if quick else DEFAULT_RUNS)
    options.fork_runs = options.fork_runs or (QUICK_RUNS if quick else DEFAULT_FORK_RUNS)
    options.idle_window = options.idle_window or (
        QUICK_IDLE_WINDOW_SECONDS if quick else DEFAULT_IDLE_WINDOW_SECONDS
    )
    options.memory_jobs = options.memory_jobs or (QUICK_MEMORY_JOBS if quick else DEFAULT_MEMORY_JOBS)
    return options


def run(options: argparse.Namespace) -> Results:
    started = datetime.now(timezone.utc)
    drain_jobs = {
        JOBPOOL.name: options.jobs,
        RQ_SIMPLE.name: options.rq_jobs,
        RQ_FORK.name: options.fork_jobs,
    }
    drain_runs = {JOBPOOL.name: options.runs, RQ_SIMPLE.name: options.runs, RQ_FORK.name: options.fork_runs}
    settle = QUICK_IDLE_SETTLE_SECONDS if options.quick else DEFAULT_IDLE_SETTLE_SECONDS
    timing = IdleTiming(settle, options.idle_window)
    sizes = {
        JOBPOOL.name: QUICK_JOBPOOL_IDLE_SIZES if options.quick else JOBPOOL_IDLE_SIZES,
        RQ_FORK.name: QUICK_RQ_IDLE_SIZES if options.quick else RQ_IDLE_SIZES,
    }
    with (
        EmbeddedRedis() as server,
        tempfile.TemporaryDirectory(prefix="jobpool-bench-pool-") as directory,
    ):
        progress(f"private redis-server at {server.url}")
        admin = redis.Redis.from_url(server.url)
        log_dir = Path(directory)
        try:
            env = environment(admin)
            env["extension_sha256_before"] = extension_fingerprint()
            env["source"] = source_revision()
            progress(f"jobpool extension: {env['extension_build']} build")
            assert server.process is not None
            redis_process = psutil.Process(server.process.pid)
            throughput = measure_throughput(server.url, admin, redis_process, drain_jobs, drain_runs, log_dir)
            idle = measure_idle(server.url, admin, sizes, timing, log_dir)
            memory = measure_memory(server.url, admin, options.memory_jobs, log_dir)
            env["load_average_after"] = load_average()
            env["extension_sha256_after"] = extension_fingerprint()
        finally:
            admin.close()
    commands = {kind.name: kind.command("<url>", kind.queue_name, POOL_SIZE, True) for kind in DRAIN_POOLS}
    return Results(
        started,
        options.quick,
        drain_jobs,
        drain_runs,
        timing,
        options.memory_jobs,
        env,
        throughput,
        idle,
        memory,
        commands,
    )


def main(argv: Sequence[str] | None = None) -> int:
    begun = time.monotonic()
    results = run(parse_args(argv))
    print(render_markdown(results))
    for warning in warnings(results):
        progress(warning)
    progress(f"figures written to {write_json(results)} ({time.monotonic() - begun:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
