"""The pools under test, run as their users run them: ``jobpool start`` and RQ 3.0's ``rq worker-pool``
(with its default worker, a fork per job, and with ``rq.worker.SimpleWorker``), each a subprocess
with its output in a log file.

- ``RunningPool``: a long-running pool (not burst) that the caller stops; it knows when the pool
  is up (jobpool: READY=1 on a NOTIFY_SOCKET of our own; RQ: its workers registered and idle).
- ``run_pool_to_end``: a burst pool run to its exit, with the CPU time it and Redis spent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import redis
import rq

import jobpool
from bench.reporting import progress
from jobpool import keys
from jobpool.job import Job, JobStatus

BENCH_DIR = Path(__file__).resolve().parent
LOG_LEVEL = "WARNING"
"""Both pools log warnings and errors only (RQ's workers otherwise log each job)."""
ENQUEUE_CHUNK = 5_000
"""Jobs per ``enqueue_many`` when filling a queue (one pipeline each)."""
FETCH_CHUNK = 5_000
"""Jobs per ``Job.fetch_many`` when reading jobs back (one pipeline each)."""
READY_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 30.0
DRAIN_DEADLINE_SECONDS = 600.0
EXIT_GRACE_SECONDS = 30.0
"""A burst pool still running this long after its jobs are done is killed, and the run fails."""
WATCH_SECONDS = 0.5
"""How often the watch on a burst pool asks whether its jobs are done."""
SAMPLE_SECONDS = 0.05
"""How often it samples the pool process's CPU time."""
LOG_TAIL_LINES = 20
VERSIONS = {"jobpool": jobpool.__version__, "rq": rq.__version__}


def executable_beside_python(name: str) -> str:
    """A console script next to this interpreter (the venv's), else the first on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name


def jobpool_command(*options: str, log_level: str = LOG_LEVEL) -> Callable[[str, str, int, bool], list[str]]:
    def command(url: str, queue: str, size: int, burst: bool) -> list[str]:
        line = [executable_beside_python("jobpool"), "start", "-n", str(size), "-u", url, *options]
        return [*line, *(["--burst"] if burst else []), "--log-level", log_level, queue]

    return command


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

    def enqueue(self, connection: redis.Redis, jobs: int, function: Callable[[], None]) -> list[str]:
        """Enqueues ``jobs`` calls of ``function`` with this library's own ``enqueue_many``;
        returns their ids."""
        queue = self.queue_class(self.queue_name, connection=connection)
        ids: list[str] = []
        for start in range(0, jobs, ENQUEUE_CHUNK):
            chunk = min(ENQUEUE_CHUNK, jobs - start)
            datas = [self.queue_class.prepare_data(function) for _ in range(chunk)]
            ids += [job.id for job in queue.enqueue_many(datas)]
        return ids


JOBPOOL = PoolKind("jobpool", "jobpool", "jobpool", jobpool.Queue, jobpool_command(), True)
JOBPOOL_ONE_AT_A_TIME = PoolKind(
    "jobpool-prefetch-0",
    "jobpool --prefetch 0",
    "jobpool",
    jobpool.Queue,
    jobpool_command("--prefetch", "0"),
    True,
)
"""jobpool with holding off: the price of never holding a job ahead, measured beside the default."""
JOBPOOL_LOGGING = PoolKind(
    "jobpool-info-log",
    "jobpool, INFO log",
    "jobpool",
    jobpool.Queue,
    jobpool_command(log_level="INFO"),
    True,
)
"""jobpool at its default log level (a line a job): the price of the line, measured beside JOBPOOL."""
RQ_SIMPLE = PoolKind(
    "rq-simple", "RQ SimpleWorker", "rq", rq.Queue, rq_command("rq.worker.SimpleWorker"), False
)
RQ_FORK = PoolKind("rq-fork", "RQ default Worker", "rq", rq.Queue, rq_command(None), False)
POOLS = (JOBPOOL, JOBPOOL_ONE_AT_A_TIME, RQ_SIMPLE, RQ_FORK)
POOL_KINDS = {kind.name: kind for kind in (*POOLS, JOBPOOL_LOGGING)}
"""Every pool kind, by its name (the figures name a pool so)."""


def pool_environment(notify_path: Path | None = None) -> dict[str, str]:
    """This environment, with the checkout (bench/'s parent) first on PYTHONPATH so that workers import
    ``bench.workload``, and NOTIFY_SOCKET set to ours (or removed)."""
    paths = [str(BENCH_DIR.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
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
        self.notify_path.unlink(missing_ok=True)  # an earlier pool's, of the same kind and size
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

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.kind.label} pool exited with {self.process.returncode}:\n{log_tail(self.log_path)}"
            )

    def wait_until_ready(self, admin: redis.Redis) -> float:
        """Waits until every worker is up; returns the seconds since the pool's command started."""
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            self.check_alive()
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


# ---- reading jobs back, measuring processes ----------------------------------------------------


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


@dataclass(frozen=True)
class CpuSeconds:
    """CPU time (user + system) spent during a drain, by whom; made by ``CpuSeconds.of``."""

    pool_process: float
    """The supervisor (jobpool), or the worker-pool process (RQ): its own time."""
    workers: float
    """The workers, with anything they started and waited for (RQ's work horses)."""
    redis_server: float
    total: float
    """The three above."""
    other_processes: float
    """Every other process on the machine (the benchmark's own process left out): what
    competed with the pool for the CPUs. Not part of ``total``."""

    @classmethod
    def of(
        cls, pool_process: float, workers: float, redis_server: float, other_processes: float = 0.0
    ) -> CpuSeconds:
        return cls(
            pool_process, workers, redis_server, pool_process + workers + redis_server, other_processes
        )


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


def watch_pool(
    pid: int,
    exited: threading.Event,
    done: Callable[[], bool],
    watch: PoolWatch,
    stop_when_done: bool = False,
    check_seconds: float = WATCH_SECONDS,
) -> None:
    """Samples the pool process's CPU time until it exits; kills it (and its workers) if it is
    still running EXIT_GRACE_SECONDS after its jobs are done, as it should exit within a second
    or two (a bug to report, not a figure), or after DRAIN_DEADLINE_SECONDS in all. A pool with no
    burst mode (``stop_when_done``) gets SIGTERM, its warm shutdown, once its jobs are done."""
    started = time.monotonic()
    done_since: float | None = None
    checked = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        while not exited.wait(SAMPLE_SECONDS):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                watch.pool_cpu_seconds = own_cpu_seconds(process)
            now = time.monotonic()
            if done_since is None and now - checked >= check_seconds:
                checked = now
                if done():
                    done_since = now
                    if stop_when_done:
                        process.send_signal(signal.SIGTERM)
            if done_since is not None and now - done_since > EXIT_GRACE_SECONDS:
                watch.hung = f"had not exited {EXIT_GRACE_SECONDS:.0f} s after its jobs were done"
            elif now - started > DRAIN_DEADLINE_SECONDS:
                watch.hung = f"ran for over {DRAIN_DEADLINE_SECONDS:.0f} s"
            if watch.hung:
                kill_process_tree(pid)
                return


def run_pool_to_end(
    command: list[str],
    log_path: Path,
    done: Callable[[], bool],
    server: psutil.Process,
    environment: dict[str, str] | None = None,
    stop_when_done: bool = False,
) -> tuple[float, CpuSeconds]:
    """Runs a burst pool to its end, its output to ``log_path``; returns its wall time and the
    CPU time spent. ``done`` tells whether its jobs are all done (asked from a thread). A pool
    with no burst mode (``stop_when_done``) is sent SIGTERM as soon as ``done``, which is then
    asked every SAMPLE_SECONDS instead of every WATCH_SECONDS (so it must be cheap, and not ask
    Redis); ``environment`` adds to the pool's.

    The pool's whole CPU time (its own and its workers', which it waits for) comes from wait4();
    the pool process's own, from the last sample before it exited."""
    exited, watch = threading.Event(), PoolWatch()
    benchmark = psutil.Process()
    with log_path.open("ab") as log:
        machine_before, benchmark_before = machine_busy_seconds(), own_cpu_seconds(benchmark)
        server_before = own_cpu_seconds(server)
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**pool_environment(), **(environment or {})},
        )
        check_seconds = SAMPLE_SECONDS if stop_when_done else WATCH_SECONDS
        watchdog = threading.Thread(
            target=watch_pool,
            args=(process.pid, exited, done, watch, stop_when_done, check_seconds),
            daemon=True,
        )
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
    cpu = CpuSeconds.of(watch.pool_cpu_seconds, tree_seconds - watch.pool_cpu_seconds, server_seconds, others)
    return wall_seconds, cpu
