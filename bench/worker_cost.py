"""Worker cost: jobpool's Worker against RQ 3.0's SimpleWorker, side by side, in one run on one
private redis-server.

For each library it measures

1. the worker-side cost of one no-op job: round trips, commands the worker sent, and commands Redis
   executed (including inside Lua scripts). A fresh worker drains N jobs in this process, then
   another fresh one drains 2N; the difference divided by N is the cost of one job, with start-up,
   registration, the last (empty) take and shutdown cancelled out;
2. single-process drain throughput: K no-op jobs are enqueued, then a worker subprocess drains them
   in burst mode (RQ: ``rq worker --burst -w rq.worker.SimpleWorker``; jobpool: its ``Worker`` from
   ``python -c``). Jobs per second from the subprocess's wall time (interpreter start-up included)
   and from the jobs' own timestamps (first ``started_at`` to last ``ended_at``); the median of
   several runs, alternating between the libraries, with the min-max spread.

Round trips: jobpool's Rust core counts its own (``Worker.core.round_trips``, a pipeline counts
once); the worker's redis-py connection (jobpool: registration only; RQ: everything) is counted by
``CountingConnection``. Commands executed are ``INFO commandstats`` deltas; the commands run inside
scripts are named by MONITOR (``ScriptCommandWatch``), and sent = executed - run inside scripts.

It prints a markdown report to stdout and writes the figures to
``bench/results/worker-<UTC date-time>.json``.

    python bench/worker_cost.py [--quick] [--cost-jobs N] [--jobs K] [--rq-jobs K] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
import rq
from rq.worker import SimpleWorker

import jobpool
from jobpool.embedded_redis import EmbeddedRedis
from jobpool.job import Job, JobStatus

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # workers import the job by name: noop.noop

from machine_info import (  # noqa: E402
    environment,
    extension_fingerprint,
    load_average,
    source_revision,
)
from noop import noop  # noqa: E402
from redis_counting import (  # noqa: E402
    Cost,
    RoundTripCounter,
    ScriptCommandWatch,
    counter_difference,
    counting_client,
    executed_commands,
    reset_server_stats,
)
from reporting import (  # noqa: E402
    EN_DASH,
    TIMES,
    Spread,
    cost_table_rows,
    number,
    progress,
    spread_cell,
    table,
    verdict,
)

RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_COST_JOBS = 200
QUICK_COST_JOBS = 20
DEFAULT_DRAIN_JOBS = 20_000
QUICK_DRAIN_JOBS = 1_000
DEFAULT_RUNS = 3
ENQUEUE_CHUNK = 5_000
"""Jobs per ``enqueue_many`` when filling a queue (one pipeline each)."""
LOG_TAIL_LINES = 20

MAX_ROUND_TRIPS_PER_JOB = 2
HANDED_BACK_ROUND_TRIPS_PER_JOB = 1
"""When finish hands back the next job (a drain of a full queue), one round trip per job."""
MIN_THROUGHPUT_RATIO = 20.0


# ---- the workers under test ---------------------------------------------------------------------


def drain_with_jobpool(connection: redis.Redis, queue: str) -> int:
    """Drains ``queue`` with jobpool's Worker in this process; returns its Rust core's round trips."""
    worker = jobpool.Worker([queue], connection=connection)
    before = worker.core.round_trips
    worker.work(burst=True)
    return worker.core.round_trips - before


def drain_with_rq(connection: redis.Redis, queue: str) -> int:
    """Drains ``queue`` with RQ's SimpleWorker in this process; all its round trips are redis-py's."""
    SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    return 0


def jobpool_command(url: str, queue: str) -> list[str]:
    code = (
        "import redis, jobpool; "
        f"jobpool.Worker([{queue!r}], connection=redis.Redis.from_url({url!r})).work(burst=True)"
    )
    return [sys.executable, "-c", code]


def rq_command(url: str, queue: str) -> list[str]:
    return [rq_executable(), "worker", "--burst", "-w", "rq.worker.SimpleWorker", "-u", url, queue]


def rq_executable() -> str:
    """RQ's CLI next to this interpreter (the venv's), else the first on PATH."""
    beside = Path(sys.executable).with_name("rq")
    return str(beside) if beside.exists() else shutil.which("rq") or "rq"


@dataclass(frozen=True)
class WorkerLibrary:
    """A queue library and its single-process worker, under test."""

    name: str
    label: str
    version: str
    queue_class: Any  # jobpool.Queue or rq.Queue: same constructor, prepare_data and enqueue_many
    drain_in_process: Callable[[redis.Redis, str], int]
    """Drains a queue in this process; returns round trips made outside redis-py (jobpool's core)."""
    drain_command: Callable[[str, str], list[str]]
    """The command line of a worker process that drains a queue (from a URL) in burst mode."""

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


LIBRARIES = (
    WorkerLibrary(
        "jobpool", "jobpool", jobpool.__version__, jobpool.Queue, drain_with_jobpool, jobpool_command
    ),
    WorkerLibrary("rq", "RQ", rq.__version__, rq.Queue, drain_with_rq, rq_command),
)


# ---- checking a drain ---------------------------------------------------------------------------


def finished_jobs(admin: redis.Redis, job_ids: Sequence[str]) -> list[Job]:
    """The jobs, read in one round trip with jobpool's ``Job.fetch_many`` (RQ's data is the same);
    raises unless every one of them finished."""
    jobs = Job.fetch_many(job_ids, admin)
    unfinished = [
        job_id
        for job_id, job in zip(job_ids, jobs, strict=True)
        if job is None or job.get_status(refresh=False) != JobStatus.FINISHED
    ]
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} of {len(job_ids)} jobs did not finish, e.g. {unfinished[0]}")
    return [job for job in jobs if job is not None]


# ---- worker-side cost per job -------------------------------------------------------------------


@dataclass(frozen=True)
class DrainCost:
    """What one in-process drain cost, all of it (start-up and shutdown included)."""

    cost: Cost
    core_round_trips: int
    """Of ``cost.round_trips``, those of jobpool's Rust core (the rest are redis-py's)."""
    client_sent: Counter[str]
    """The commands the worker's redis-py connection sent, counted on the client side."""

    def to_json(self) -> dict[str, Any]:
        return {
            **self.cost.to_json(),
            "core_round_trips": self.core_round_trips,
            "redis_py_round_trips": self.cost.round_trips - self.core_round_trips,
            "redis_py_sent": dict(sorted(self.client_sent.items())),
        }


def measure_drain(
    library: WorkerLibrary, url: str, admin: redis.Redis, watch: ScriptCommandWatch, jobs: int
) -> DrainCost:
    """Enqueues ``jobs`` jobs, then counts what a fresh worker costs to drain them."""
    admin.flushdb()
    job_ids = library.enqueue(admin, jobs)
    watch.collect(admin)  # forget the scripts the enqueue ran
    counter = RoundTripCounter()
    client = counting_client(url, counter)
    try:
        reset_server_stats(admin)
        core_round_trips = library.drain_in_process(client, library.queue_name)
        executed = executed_commands(admin)
        inside_scripts = watch.collect(admin)
    finally:
        client.close()
    finished_jobs(admin, job_ids)
    sent = counter_difference(executed, inside_scripts)
    cost = Cost(jobs, counter.round_trips + core_round_trips, sent, executed)
    return DrainCost(cost, core_round_trips, Counter(counter.commands))


@dataclass(frozen=True)
class WorkerCost:
    """Two drains by fresh workers, of N and 2N jobs."""

    small: DrainCost
    large: DrainCost

    @property
    def per_job(self) -> Cost:
        """The extra jobs' cost alone (``per_job(...)`` divides by their number)."""
        return self.large.cost.minus(self.small.cost)

    @property
    def fixed(self) -> Cost:
        """What a drain costs whatever its size: start-up, registration, last take, shutdown."""
        return self.small.cost.minus(self.per_job)

    @property
    def per_job_client_sent(self) -> Counter[str]:
        """The extra jobs' commands as the worker's redis-py connection counted them (for RQ, all
        of its commands: a check on ``per_job.sent``, which comes from the server)."""
        return counter_difference(self.large.client_sent, self.small.client_sent)

    @property
    def per_job_core_round_trips(self) -> float:
        return (self.large.core_round_trips - self.small.core_round_trips) / self.per_job.jobs

    def to_json(self) -> dict[str, Any]:
        per_job = self.per_job
        return {
            "method": "(drain of 2N jobs) - (drain of N jobs), each by a fresh worker; per job = / N",
            "per_job": per_job.to_json(),
            "per_job_core_round_trips": self.per_job_core_round_trips,
            "per_job_redis_py_sent": dict(sorted(self.per_job_client_sent.items())),
            "fixed_per_drain": {
                "round_trips": self.fixed.round_trips,
                "commands_sent": self.fixed.sent_total,
                "commands_executed": self.fixed.executed_total,
            },
            "drain_n": self.small.to_json(),
            "drain_2n": self.large.to_json(),
        }


def measure_worker_cost(
    library: WorkerLibrary, url: str, admin: redis.Redis, watch: ScriptCommandWatch, jobs: int
) -> WorkerCost:
    small = measure_drain(library, url, admin, watch, jobs)
    large = measure_drain(library, url, admin, watch, 2 * jobs)
    return WorkerCost(small, large)


def measure_costs(url: str, admin: redis.Redis, jobs: int) -> dict[str, WorkerCost]:
    costs = {}
    with ScriptCommandWatch(url) as watch:
        for library in LIBRARIES:
            progress(f"counting round trips and commands: {library.label}, {jobs} then {2 * jobs} jobs")
            costs[library.name] = measure_worker_cost(library, url, admin, watch, jobs)
    admin.flushdb()
    return costs


# ---- drain throughput ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainRun:
    """One worker process draining a queue of ``jobs`` jobs."""

    jobs: int
    wall_seconds: float
    first_started: datetime
    last_ended: datetime

    @property
    def wall_rate(self) -> float:
        """Jobs per second of the worker process's life, interpreter start-up included."""
        return self.jobs / self.wall_seconds

    @property
    def job_rate(self) -> float:
        """Jobs per second from the first job's start to the last job's end."""
        return self.jobs / (self.last_ended - self.first_started).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "wall_seconds": self.wall_seconds,
            "first_started_at": self.first_started.isoformat(),
            "last_ended_at": self.last_ended.isoformat(),
            "wall_jobs_per_second": self.wall_rate,
            "timestamp_jobs_per_second": self.job_rate,
        }


def worker_environment() -> dict[str, str]:
    """This environment, with bench/ first on PYTHONPATH so that workers import ``noop``."""
    paths = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])


def run_worker_process(command: list[str], log_path: Path) -> float:
    """Runs a worker process to its end, its output to ``log_path``; returns its wall time."""
    with log_path.open("ab") as log:
        start = time.perf_counter()
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=worker_environment()
        )
        wall_seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {completed.returncode}:\n{log_tail(log_path)}")
    return wall_seconds


def timed_drain(library: WorkerLibrary, url: str, admin: redis.Redis, jobs: int, log_dir: Path) -> DrainRun:
    admin.flushdb()
    job_ids = library.enqueue(admin, jobs)
    wall_seconds = run_worker_process(library.drain_command(url, library.queue_name), log_dir / library.name)
    done = finished_jobs(admin, job_ids)
    first_started = min(job.started_at for job in done if job.started_at)
    last_ended = max(job.ended_at for job in done if job.ended_at)
    return DrainRun(jobs, wall_seconds, first_started, last_ended)


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
            "runs": [run.to_json() for run in self.runs],
        }


def measure_throughput(
    url: str, admin: redis.Redis, jobs: dict[str, int], runs: int
) -> dict[str, Throughput]:
    """Runs alternate between the libraries, so a change in the machine's load hits both alike."""
    drains: dict[str, list[DrainRun]] = {library.name: [] for library in LIBRARIES}
    with tempfile.TemporaryDirectory(prefix="jobpool-bench-logs-") as log_dir:
        for run in range(runs):
            for library in LIBRARIES:
                progress(f"drain run {run + 1}/{runs}: {library.label}, {jobs[library.name]:,} jobs")
                drain = timed_drain(library, url, admin, jobs[library.name], Path(log_dir))
                progress(f"  {drain.wall_seconds:.1f} s, {drain.job_rate:,.0f} jobs/s by the timestamps")
                drains[library.name].append(drain)
    admin.flushdb()
    return {name: Throughput(tuple(each)) for name, each in drains.items()}


# ---- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    started: datetime
    quick: bool
    cost_jobs: int
    drain_jobs: dict[str, int]
    runs: int
    environment: dict[str, Any]
    costs: dict[str, WorkerCost]
    throughput: dict[str, Throughput]

    def ratio(self, kind: str) -> float:
        """jobpool's median rate over RQ's, ``kind`` ``wall`` or ``timestamps``."""
        rates = {name: getattr(figures, kind).median for name, figures in self.throughput.items()}
        return float(rates["jobpool"] / rates["rq"])

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "worker_cost",
            "started_utc": self.started.isoformat(),
            "quick": self.quick,
            "config": {"cost_jobs": self.cost_jobs, "drain_jobs": self.drain_jobs, "runs": self.runs},
            "environment": self.environment,
            "versions": {library.name: library.version for library in LIBRARIES},
            "commands": {
                library.name: library.drain_command("<url>", library.queue_name) for library in LIBRARIES
            },
            "cost": {name: cost.to_json() for name, cost in self.costs.items()},
            "throughput": {name: figures.to_json() for name, figures in self.throughput.items()},
            "ratio_jobpool_over_rq": {"wall": self.ratio("wall"), "timestamps": self.ratio("timestamps")},
            "targets": {
                "at_most_2_round_trips_per_job": round_trip_target_met(self.costs["jobpool"], 2),
                "1_round_trip_per_job_when_handed_back": round_trip_target_met(self.costs["jobpool"], 1),
                "20x_rq_timestamps": self.ratio("timestamps") >= MIN_THROUGHPUT_RATIO,
                "20x_rq_wall": self.ratio("wall") >= MIN_THROUGHPUT_RATIO,
            },
        }


def round_trip_target_met(cost: WorkerCost, limit: int) -> bool:
    per_job = cost.per_job
    return per_job.per_job(per_job.round_trips) <= limit


def per_job_summary(cost: WorkerCost) -> str:
    per_job = cost.per_job
    return (
        f"{number(per_job.per_job(per_job.round_trips))} round trip(s), "
        f"{number(per_job.per_job(per_job.sent_total))} command(s) sent and "
        f"{number(per_job.per_job(per_job.executed_total))} executed per job"
    )


def core_round_trips_line(cost: WorkerCost) -> str:
    """Whose round trips jobpool's are: its Rust core's, or also its redis-py connection's."""
    total = cost.per_job.per_job(cost.per_job.round_trips)
    core = cost.per_job_core_round_trips
    if core == total:
        return "jobpool's round trips per job are all its Rust core's (none by its redis-py connection)."
    redis_py = number(total - core)
    return f"jobpool's round trips per job: {number(core)} by its Rust core, {redis_py} by redis-py."


def fixed_cost_line(costs: dict[str, WorkerCost]) -> str:
    parts = [
        f"{library.label} {number(costs[library.name].fixed.round_trips)} round trips, "
        f"{number(costs[library.name].fixed.sent_total)} commands sent"
        for library in LIBRARIES
    ]
    return (
        "Left out above, what one drain costs whatever its size (start-up, registration, the last, "
        "empty take, shutdown; = drain of N - N * per job): " + "; ".join(parts) + "."
    )


def drain_jobs_label(drain_jobs: dict[str, int]) -> str:
    counts = set(drain_jobs.values())
    if len(counts) == 1:
        return f"{number(counts.pop())} jobs each"
    return ", ".join(f"{library.label} {number(drain_jobs[library.name])} jobs" for library in LIBRARIES)


def throughput_rows(results: Results) -> list[list[str]]:
    figures = [results.throughput[library.name] for library in LIBRARIES]
    return [
        [
            "jobs/s, from the jobs' timestamps (first `started_at` to last `ended_at`)",
            *(spread_cell(each.timestamps) for each in figures),
            f"{results.ratio('timestamps'):.1f}{TIMES}",
        ],
        [
            "jobs/s, from the worker process's wall time (interpreter start-up included)",
            *(spread_cell(each.wall) for each in figures),
            f"{results.ratio('wall'):.1f}{TIMES}",
        ],
    ]


def target_lines(results: Results) -> list[str]:
    jobpool_cost, rq_cost = results.costs["jobpool"], results.costs["rq"]
    timestamps, wall = results.ratio("timestamps"), results.ratio("wall")
    return [
        f"- At most {MAX_ROUND_TRIPS_PER_JOB} round trips per job on the worker side: "
        f"**{verdict(round_trip_target_met(jobpool_cost, MAX_ROUND_TRIPS_PER_JOB))}**; "
        f"{HANDED_BACK_ROUND_TRIPS_PER_JOB} when finish hands back the next job (as it does all through "
        f"a drain): **{verdict(round_trip_target_met(jobpool_cost, HANDED_BACK_ROUND_TRIPS_PER_JOB))}**. "
        f"jobpool {per_job_summary(jobpool_cost)}; RQ {per_job_summary(rq_cost)}.",
        f"- At least {MIN_THROUGHPUT_RATIO:.0f}{TIMES} RQ's SimpleWorker throughput in one process: "
        f"by the jobs' timestamps **{verdict(timestamps >= MIN_THROUGHPUT_RATIO)}** "
        f"({timestamps:.1f}{TIMES}); by wall time **{verdict(wall >= MIN_THROUGHPUT_RATIO)}** "
        f"({wall:.1f}{TIMES}).",
    ]


def render_markdown(results: Results) -> str:
    labels = [f"jobpool `Worker` {LIBRARIES[0].version}", f"RQ `SimpleWorker` {LIBRARIES[1].version}"]
    env = results.environment
    n = results.cost_jobs
    lines = [
        f"## Worker: jobpool {LIBRARIES[0].version} vs RQ {LIBRARIES[1].version}",
        "",
        f"redis-server {env['redis_server']}, redis-py {env['redis_py']}, Python {env['python']}, "
        f"{env['nproc']} CPUs ({env['cpu_model']}), load average before {env['load_average_before']}, "
        f"after {env['load_average_after']}; jobpool extension: {env['extension_build']} build"
        + (", **quick run**" if results.quick else ""),
        "",
        f"### Worker-side cost per no-op job ((drain of {number(2 * n)}) {EN_DASH} (drain of {number(n)})) "
        f"/ {number(n)}",
        "",
        *table(["", *labels], cost_table_rows([results.costs[lib.name].per_job for lib in LIBRARIES], True)),
        "",
        core_round_trips_line(results.costs["jobpool"]) + " " + fixed_cost_line(results.costs),
        "",
        f"### Drain throughput, one worker process ({drain_jobs_label(results.drain_jobs)}; "
        f"median of {results.runs} runs, min{EN_DASH}max)",
        "",
        *table(["", "jobpool", "RQ", "jobpool / RQ"], throughput_rows(results)),
        "",
        "### Targets",
        "",
        *target_lines(results),
    ]
    return "\n".join(lines) + "\n"


def warnings(results: Results) -> Iterator[str]:
    """Anything that makes a figure doubtful."""
    for name, cost in results.costs.items():
        per_job = cost.per_job
        for kind, counts in (("sent", per_job.sent), ("executed", per_job.executed)):
            if negative := {command: count for command, count in counts.items() if count < 0}:
                yield f"warning: {name}: fewer commands {kind} for 2N jobs than for N: {negative}"
    rq_cost = results.costs["rq"]
    if mismatch := counter_difference(rq_cost.per_job.sent, rq_cost.per_job_client_sent):
        yield f"warning: RQ: per job, server-side sent minus client-side count: {dict(mismatch)}"
    env = results.environment
    if env["extension_sha256_before"] != env["extension_sha256_after"]:
        yield "warning: jobpool's extension was rebuilt during the run: the figures mix two builds"


def write_json(results: Results) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"worker-{results.started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    return path


# ---- running it ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Worker cost of jobpool against RQ, side by side.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a small run: {QUICK_COST_JOBS} cost jobs, {QUICK_DRAIN_JOBS:,} drain jobs",
    )
    parser.add_argument("--cost-jobs", type=int, help=f"N: drains of N and 2N jobs ({DEFAULT_COST_JOBS})")
    parser.add_argument("--jobs", type=int, help=f"K: jobs per drain run ({DEFAULT_DRAIN_JOBS:,})")
    parser.add_argument("--rq-jobs", type=int, help="jobs per RQ drain run, if not K (the report says so)")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="drain runs per library")
    options = parser.parse_args(argv)
    options.cost_jobs = options.cost_jobs or (QUICK_COST_JOBS if options.quick else DEFAULT_COST_JOBS)
    options.jobs = options.jobs or (QUICK_DRAIN_JOBS if options.quick else DEFAULT_DRAIN_JOBS)
    options.rq_jobs = options.rq_jobs or options.jobs
    return options


def run(options: argparse.Namespace) -> Results:
    started = datetime.now(timezone.utc)
    drain_jobs = {"jobpool": options.jobs, "rq": options.rq_jobs}
    with EmbeddedRedis() as server:
        progress(f"private redis-server at {server.url}")
        admin = redis.Redis.from_url(server.url)
        try:
            env = environment(admin)
            env["extension_sha256_before"] = extension_fingerprint()
            env["source"] = source_revision()
            progress(f"jobpool extension: {env['extension_build']} build")
            costs = measure_costs(server.url, admin, options.cost_jobs)
            throughput = measure_throughput(server.url, admin, drain_jobs, options.runs)
            env["load_average_after"] = load_average()
            env["extension_sha256_after"] = extension_fingerprint()
        finally:
            admin.close()
    return Results(
        started, options.quick, options.cost_jobs, drain_jobs, options.runs, env, costs, throughput
    )


def main(argv: Sequence[str] | None = None) -> int:
    results = run(parse_args(argv))
    print(render_markdown(results))
    for warning in warnings(results):
        progress(warning)
    progress(f"figures written to {write_json(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
