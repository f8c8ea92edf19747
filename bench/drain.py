"""Drain throughput: K jobs pre-enqueued, then a pool started in burst mode until it has run them
and exits, for each pool size, workload and pool: ``jobpool start -n N --burst`` against
``rq worker-pool -n N --burst`` with RQ's default worker and with ``-w rq.worker.SimpleWorker``, and
against Dramatiq's ``dramatiq dramatiq_workload --processes N`` (no burst mode: stopped with SIGTERM
once its K jobs have ended; see ``dramatiq_pool``), at the profile's Dramatiq sizes and workloads.

The rate is read from the jobs' own timestamps: the jobs that ended between the 10th and the 90th
percentile of the end times, over that span, so a pool's start-up (workers starting one after
another) and its last straggling job do not count. The rate over the pool process's whole life
(start-up and exit included) is kept beside it. Runs go round the pools, sizes and workloads in
turn, so a change in the machine's load hits all of them alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bench import dramatiq_pool
from bench.dramatiq_pool import DRAMATIQ, DramatiqKind
from bench.machine_info import cpu_count
from bench.pools import (
    JOBPOOL,
    JOBPOOL_LOGGING,
    JOBPOOL_ONE_AT_A_TIME,
    POOLS,
    RQ_FORK,
    RQ_SIMPLE,
    CpuSeconds,
    PoolKind,
    finished_jobs,
    run_pool_to_end,
)
from bench.redis_counting import executed_commands, reset_server_stats
from bench.reporting import EN_DASH, TIMES, Spread, number, progress, spread_cell, table
from bench.suite_types import Context, Profile, Target
from bench.workload import WORKLOADS
from jobpool import keys

EXPECTED_RATE_OF_ONE = {
    JOBPOOL.name: {"noop": 6_000.0, "sleep_1ms": 700.0, "burn_1ms": 700.0},
    JOBPOOL_ONE_AT_A_TIME.name: {"noop": 3_500.0, "sleep_1ms": 600.0, "burn_1ms": 600.0},
    JOBPOOL_LOGGING.name: {"noop": 6_000.0},
    RQ_SIMPLE.name: {"noop": 330.0, "sleep_1ms": 280.0, "burn_1ms": 280.0},
    RQ_FORK.name: {"noop": 45.0, "sleep_1ms": 45.0, "burn_1ms": 45.0},
    DRAMATIQ.name: {"noop": 1_600.0, "sleep_1ms": 1_500.0, "burn_1ms": 650.0},
}
"""Jobs per second of a pool of 1 on this kind of machine, roughly: sizes a run's queue so that it
lasts about ``Profile.drain_seconds``. Only the run's length depends on it, never a figure."""
MIN_JOBS = 20
STEADY_QUANTILES = (0.1, 0.9)
"""The rate counts the jobs that ended between these quantiles of the end times."""
STEADY_MIN_JOBS = 50
"""Fewer jobs than this: the rate is over the whole span, first start to last end."""
MIN_RATIO = 30.0
"""Target: jobpool drains no-op jobs at least this many times as fast as RQ's fastest pool of the
same size."""
TARGET_WORKLOAD = "noop"
MIN_RATIO_OVER_DRAMATIQ = 3.0
DRAMATIQ_TARGET_SIZE = 2
"""Target: jobpool drains no-op jobs at pool size 2 at least 3 times as fast as Dramatiq with 2
processes (its default 8 threads each)."""
DRAIN_POOLS: tuple[PoolKind | DramatiqKind, ...] = (*POOLS, DRAMATIQ)
BUDGET_SIZE = 2
BUDGET_MICROSECONDS = {"redis-server": 60.0, "workers": 120.0, "pool process": 20.0}
"""The per-job budget on no-op jobs while a pool of BUDGET_SIZE drains (the design's): Redis CPU
(one Redis serves every pool of a deployment), the workers' CPU, the supervisor's. Counted per
job, a pool's start-up and exit left out: the CPU of a burst pool on an empty queue (its
interpreter, imports, forks and connections) is taken off each drain's."""
BUDGET_POOLS = (JOBPOOL, JOBPOOL_ONE_AT_A_TIME)
MAX_LOG_LINE_SHARE = 0.05
"""Target: a job's log line (at INFO, the default) costs under 5 % of a no-op job's CPU."""
LABELS = {"noop": "no-op jobs", "sleep_1ms": "jobs that sleep 1 ms", "burn_1ms": "jobs that burn 1 ms of CPU"}


def jobs_per_run(kind: PoolKind | DramatiqKind, workload: str, size: int, profile: Profile, cpus: int) -> int:
    """A queue that a pool of ``size`` drains in about ``profile.drain_seconds``: workers beyond the
    machine's CPUs are assumed to add nothing, so large pools never get huge queues."""
    rate = EXPECTED_RATE_OF_ONE[kind.name][workload] * min(size, cpus)
    return max(MIN_JOBS, round(rate * profile.drain_seconds))


def steady_rate(started: Sequence[datetime], ended: Sequence[datetime]) -> float:
    """Jobs per second while every worker was busy (see the module's docstring)."""
    return steady_rate_of(
        min(moment.timestamp() for moment in started), [moment.timestamp() for moment in ended]
    )


def steady_rate_of(first_start: float, ended: Sequence[float]) -> float:
    """The same from seconds since the epoch: the first job's start (used for few jobs only) and
    every job's end."""
    ends = sorted(ended)
    if len(ends) < STEADY_MIN_JOBS:
        return len(ends) / (ends[-1] - first_start)
    low = math.floor(STEADY_QUANTILES[0] * (len(ends) - 1))
    high = math.ceil(STEADY_QUANTILES[1] * (len(ends) - 1))
    return (high - low) / (ends[high] - ends[low])


@dataclass(frozen=True)
class DrainRun:
    """One pool process, in burst mode, draining a queue of ``jobs`` jobs; with the commands and
    script calls Redis executed meanwhile (``INFO commandstats``, commands run inside scripts
    included, the benchmark's own polls left out; not counted for Dramatiq). Made by ``DrainRun.of``."""

    jobs: int
    wall_seconds: float
    steady_jobs_per_second: float
    wall_jobs_per_second: float
    cpu_seconds: CpuSeconds
    redis_commands: int | None
    redis_script_calls: int | None

    @classmethod
    def of(
        cls,
        jobs: int,
        wall_seconds: float,
        steady_jobs_per_second: float,
        cpu_seconds: CpuSeconds,
        redis_commands: int | None = None,
        redis_script_calls: int | None = None,
    ) -> DrainRun:
        return cls(
            jobs,
            wall_seconds,
            steady_jobs_per_second,
            jobs / wall_seconds,
            cpu_seconds,
            redis_commands,
            redis_script_calls,
        )


POLLS = ("zcard", "info")
"""The benchmark's own commands while a pool drains (it asks how many jobs have finished)."""


def drain_once(
    context: Context, kind: PoolKind | DramatiqKind, workload: str, size: int, jobs: int
) -> DrainRun:
    if isinstance(kind, DramatiqKind):
        return dramatiq_drain_once(context, workload, size, jobs)
    admin = context.admin
    admin.flushdb()
    job_ids = kind.enqueue(admin, jobs, WORKLOADS[workload])
    finished = keys.registry("finished", kind.queue_name)
    reset_server_stats(admin)
    wall_seconds, cpu = run_pool_to_end(
        kind.command(context.url, kind.queue_name, size, True),
        context.log_dir / f"drain-{kind.name}-{workload}-{size}.log",
        lambda: admin.zcard(finished) >= jobs,
        context.redis_process,
    )
    executed = executed_commands(admin)
    commands = sum(calls for name, calls in executed.items() if name not in POLLS)
    script_calls = executed["evalsha"] + executed["eval"]
    done = finished_jobs(admin, job_ids)
    rate = steady_rate(
        [job.started_at for job in done if job.started_at], [job.ended_at for job in done if job.ended_at]
    )
    return DrainRun.of(jobs, wall_seconds, rate, cpu, commands, script_calls)


def dramatiq_drain_once(context: Context, workload: str, size: int, jobs: int) -> DrainRun:
    """Dramatiq has no start times: with fewer than STEADY_MIN_JOBS jobs (the tiny profile), its
    rate counts from the pool's start (wall clock at its launch)."""
    launched = time.time()
    wall_seconds, cpu, ends = dramatiq_pool.drain_once(context, workload, size, jobs)
    return DrainRun.of(jobs, wall_seconds, steady_rate_of(launched, ends), cpu)


@dataclass(frozen=True)
class Cell:
    """The runs of one pool, workload and size; made by ``Cell.of``."""

    steady_jobs_per_second: Spread
    wall_jobs_per_second: Spread
    cpu_microseconds_per_job: CpuSeconds
    """Over all runs."""
    redis_commands_per_job: float | None
    """Over all runs (None: not counted)."""
    redis_script_calls_per_job: float | None
    runs: tuple[DrainRun, ...]

    @classmethod
    def of(cls, runs: Sequence[DrainRun]) -> Cell:
        jobs = sum(run.jobs for run in runs)
        millions = jobs / 1e6
        cpu_per_job = CpuSeconds.of(
            sum(run.cpu_seconds.pool_process for run in runs) / millions,
            sum(run.cpu_seconds.workers for run in runs) / millions,
            sum(run.cpu_seconds.redis_server for run in runs) / millions,
            sum(run.cpu_seconds.other_processes for run in runs) / millions,
        )
        commands = [run.redis_commands for run in runs]
        script_calls = [run.redis_script_calls for run in runs]
        return cls(
            Spread.of(run.steady_jobs_per_second for run in runs),
            Spread.of(run.wall_jobs_per_second for run in runs),
            cpu_per_job,
            per_job(commands, jobs),
            per_job(script_calls, jobs),
            tuple(runs),
        )

    def cpu_per_job_after(self, start_up: CpuSeconds) -> CpuSeconds:
        """CPU microseconds per job, over all runs, ``start_up`` (each run's) left out."""
        jobs, runs = sum(run.jobs for run in self.runs) / 1e6, len(self.runs)
        return CpuSeconds.of(
            (sum(run.cpu_seconds.pool_process for run in self.runs) - runs * start_up.pool_process) / jobs,
            (sum(run.cpu_seconds.workers for run in self.runs) - runs * start_up.workers) / jobs,
            (sum(run.cpu_seconds.redis_server for run in self.runs) - runs * start_up.redis_server) / jobs,
        )


def per_job(counts: Sequence[int | None], jobs: int) -> float | None:
    """Redis commands (or script calls) per job over runs; None if a run did not count them."""
    counted = [count for count in counts if count is not None]
    return sum(counted) / jobs if len(counted) == len(counts) else None


METHOD = (
    "burst pools (Dramatiq: SIGTERM once its jobs have ended); rate from the jobs' "
    "end times between the 10th and 90th percentile"
)


@dataclass(frozen=True)
class Drain:
    """Made by ``Drain.of``."""

    name = "drain"
    method: str
    dramatiq: str
    """How Dramatiq ran."""
    pool_sizes: tuple[int, ...]
    workloads: tuple[str, ...]
    figures: dict[str, dict[str, dict[str, Cell]]]
    """By workload, pool and size (``"2"``)."""
    start_up_cpu_seconds: dict[str, tuple[CpuSeconds, ...]]
    """By pool (of BUDGET_POOLS, at BUDGET_SIZE): the CPU of a burst run on an empty queue, each run."""
    ratio_jobpool_over: dict[str, dict[str, dict[str, float]]]
    """By workload, other pool and size: jobpool's median steady rate over the other's."""

    @classmethod
    def of(
        cls,
        profile: Profile,
        cells: dict[tuple[str, str, int], Cell],
        start_ups: dict[str, tuple[CpuSeconds, ...]],
    ) -> Drain:
        """``cells`` by (pool, workload, size)."""
        figures: dict[str, dict[str, dict[str, Cell]]] = {}
        for (pool, workload, size), cell in cells.items():
            figures.setdefault(workload, {}).setdefault(pool, {})[str(size)] = cell

        def ratio(other: str, workload: str, size: int) -> float:
            rates = figures[workload]
            ours = rates[JOBPOOL.name][str(size)].steady_jobs_per_second.median
            return ours / rates[other][str(size)].steady_jobs_per_second.median

        ratios = {
            workload: {
                other.name: {
                    str(size): ratio(other.name, workload, size)
                    for size in profile.pool_sizes
                    if (other.name, workload, size) in cells
                }
                for other in (RQ_SIMPLE, RQ_FORK, DRAMATIQ)
            }
            for workload in profile.workloads
        }
        return cls(
            method=METHOD,
            dramatiq=f"dramatiq {dramatiq_pool.VERSION} --processes N (8 threads each), sizes "
            f"{list(profile.dramatiq_pool_sizes)}; end times written by the actors to a file per process",
            pool_sizes=profile.pool_sizes,
            workloads=profile.workloads,
            figures=figures,
            start_up_cpu_seconds=start_ups,
            ratio_jobpool_over=ratios,
        )

    def cell(self, pool: str, workload: str, size: int) -> Cell:
        return self.figures[workload][pool][str(size)]

    def measured(self, pool: str, workload: str, size: int) -> bool:
        """Dramatiq runs at the profile's Dramatiq sizes only."""
        return str(size) in self.figures.get(workload, {}).get(pool, {})

    @property
    def runs(self) -> int:
        """Runs of each pool, workload and size."""
        return len(self.cell(JOBPOOL.name, self.workloads[0], self.pool_sizes[0]).runs)

    @property
    def dramatiq_pool_sizes(self) -> list[int]:
        """The sizes at which Dramatiq ran."""
        return [
            size
            for size in self.pool_sizes
            if any(self.measured(DRAMATIQ.name, workload, size) for workload in self.workloads)
        ]

    def start_up(self, pool: str) -> CpuSeconds:
        """The mean CPU of ``pool``'s start-up and exit, at BUDGET_SIZE."""
        runs = self.start_up_cpu_seconds[pool]
        return CpuSeconds.of(
            sum(run.pool_process for run in runs) / len(runs),
            sum(run.workers for run in runs) / len(runs),
            sum(run.redis_server for run in runs) / len(runs),
        )

    def rate(self, pool: str, workload: str, size: int) -> float:
        return self.cell(pool, workload, size).steady_jobs_per_second.median

    def ratio(self, other: str, workload: str, size: int) -> float:
        return self.ratio_jobpool_over[workload][other][str(size)]

    def ratio_to_fastest_rq(self, size: int) -> float:
        fastest = max(self.rate(kind.name, TARGET_WORKLOAD, size) for kind in (RQ_SIMPLE, RQ_FORK))
        return self.rate(JOBPOOL.name, TARGET_WORKLOAD, size) / fastest

    def markdown(self) -> list[str]:
        lines = [
            "## Drain throughput",
            "",
            "K jobs enqueued, then the pool started in burst mode until it exits. Jobs per second from "
            "the jobs' own end times between the 10th and 90th percentile (median of "
            f"{self.runs} runs, min{EN_DASH}max); the rate over the pool process's "
            "whole life, start-up included, is in the JSON.",
        ]
        header = ["pool size", *(kind.label for kind in POOLS), f"{DRAMATIQ.label}, N processes"]
        header += [f"jobpool / {other.label}" for other in (RQ_SIMPLE, RQ_FORK, DRAMATIQ)]
        for workload in self.workloads:
            rows = [
                [
                    str(size),
                    *(
                        spread_cell(self.cell(kind.name, workload, size).steady_jobs_per_second)
                        if self.measured(kind.name, workload, size)
                        else EN_DASH
                        for kind in DRAIN_POOLS
                    ),
                    *(
                        f"{self.ratio(other.name, workload, size):.1f}{TIMES}"
                        if self.measured(other.name, workload, size)
                        else EN_DASH
                        for other in (RQ_SIMPLE, RQ_FORK, DRAMATIQ)
                    ),
                ]
                for size in self.pool_sizes
            ]
            label = LABELS[workload]
            lines += ["", f"### {label[0].upper()}{label[1:]}, jobs/s", "", *table(header, rows)]
        lines += ["", "### CPU time per no-op job, µs (user + system, all runs)", ""]
        rows = []
        for size in self.pool_sizes:
            for kind in (*DRAIN_POOLS, JOBPOOL_LOGGING):
                if not self.measured(kind.name, TARGET_WORKLOAD, size):
                    continue
                cell = self.cell(kind.name, TARGET_WORKLOAD, size)
                cpu = cell.cpu_microseconds_per_job
                figures = (cpu.pool_process, cpu.workers, cpu.redis_server, cpu.total)
                counts = (cell.redis_commands_per_job, cell.redis_script_calls_per_job)
                rows.append(
                    [
                        f"{kind.label}, {size}",
                        *(number(round(value)) for value in figures),
                        *(EN_DASH if count is None else f"{count:.2f}" for count in counts),
                    ]
                )
        header = [
            "pool, size",
            "pool process",
            "workers",
            "redis-server",
            "all",
            "Redis commands",
            "script calls",
        ]
        lines += table(header, rows)
        lines += [
            "",
            "Redis commands and script calls are per job, as Redis executed them (`INFO commandstats`, "
            "the commands run inside scripts included, the benchmark's own polls left out). The "
            "figures include each pool's start-up and exit; the budget targets leave them out "
            "(a burst pool of the same size on an empty queue, its CPU taken off each drain's): "
            + "; ".join(
                f"{pool}: {number(round(cpu.total * 1000))} ms of CPU"
                f" ({number(round(cpu.pool_process * 1000))} in the pool process)"
                for pool, cpu in ((pool, self.start_up(pool)) for pool in self.start_up_cpu_seconds)
            )
            + f". `{JOBPOOL_LOGGING.label}` is jobpool at its default log level (a line a job), "
            "the rest log warnings only.",
        ]
        lines += [
            "",
            f"Dramatiq {dramatiq_pool.VERSION}: `dramatiq dramatiq_workload --processes N` (its default 8 "
            "threads a process) on a RedisBroker, at pool sizes "
            f"{', '.join(map(str, self.dramatiq_pool_sizes))}; it has no burst mode, so its K "
            "messages (enqueued one `broker.enqueue` each, as `actor.send()` does) are drained by a pool "
            "stopped with SIGTERM once every job has written its end time (one `os.write` to a file of "
            "its process, no Redis traffic); its wall rate includes that warm shutdown. Its pool process "
            "is Dramatiq's main process, its workers the worker processes.",
        ]
        return lines

    def targets(self) -> dict[str, Target]:
        if TARGET_WORKLOAD not in self.workloads:
            return {}
        ratios = {size: self.ratio_to_fastest_rq(size) for size in self.pool_sizes}
        measured = ", ".join(f"{size}: {ratio:.1f}{TIMES}" for size, ratio in ratios.items())
        targets = self.budget_targets()
        targets["drain_30x_fastest_rq_pool"] = Target(
            f"no-op jobs drained at least {MIN_RATIO:.0f}{TIMES} as fast as RQ's fastest pool of "
            "the same size",
            f"by pool size: {measured}",
            min(ratios.values()) >= MIN_RATIO,
        )
        if self.measured(DRAMATIQ.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE):
            ratio = self.ratio(DRAMATIQ.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE)
            jobpool = self.rate(JOBPOOL.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE)
            dramatiq = self.rate(DRAMATIQ.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE)
            targets["drain_3x_dramatiq"] = Target(
                f"no-op drain at pool size {DRAMATIQ_TARGET_SIZE} at least "
                f"{MIN_RATIO_OVER_DRAMATIQ:.0f}{TIMES} Dramatiq with {DRAMATIQ_TARGET_SIZE} processes",
                f"{ratio:.1f}{TIMES} ({number(round(jobpool))} against {number(round(dramatiq))} jobs/s)",
                ratio >= MIN_RATIO_OVER_DRAMATIQ,
            )
        return targets

    def budget_targets(self) -> dict[str, Target]:
        """The per-job budget, for jobpool at BUDGET_SIZE (``--prefetch 0`` beside it), start-up
        left out; and the price of a job's log line."""
        if not self.measured(JOBPOOL.name, TARGET_WORKLOAD, BUDGET_SIZE):
            return {}
        cells = {
            kind.label: self.cell(kind.name, TARGET_WORKLOAD, BUDGET_SIZE)
            for kind in BUDGET_POOLS
            if self.measured(kind.name, TARGET_WORKLOAD, BUDGET_SIZE)
        }
        spent_per_job = {
            kind.label: self.cell(kind.name, TARGET_WORKLOAD, BUDGET_SIZE).cpu_per_job_after(
                self.start_up(kind.name)
            )
            for kind in BUDGET_POOLS
            if kind.label in cells
        }
        targets = {}
        for part, limit in BUDGET_MICROSECONDS.items():
            spent = {label: _cpu_part(cpu, part) for label, cpu in spent_per_job.items()}
            with_start_up = _cpu_part(cells[JOBPOOL.label].cpu_microseconds_per_job, part)
            measured = "; ".join(
                f"{label}: {number(round(value))} µs"
                + (f" ({number(round(with_start_up))} with its start-up)" if label == JOBPOOL.label else "")
                + (_executed(cells[label]) if part == "redis-server" else "")
                for label, value in spent.items()
            )
            targets[f"{part.replace(' ', '_').replace('-', '_')}_cpu_per_job"] = Target(
                f"{part} CPU per no-op job at most {limit:.0f} µs, pool of {BUDGET_SIZE} draining "
                "(start-up left out)",
                measured,
                spent[JOBPOOL.label] <= limit,
            )
        return {**targets, **self.log_line_targets()}

    def log_line_targets(self) -> dict[str, Target]:
        """A job's log line: what the workers spend more at INFO than at WARNING, against a
        no-op job's whole CPU (start-up left out of both)."""
        if not self.measured(JOBPOOL_LOGGING.name, TARGET_WORKLOAD, BUDGET_SIZE):
            return {}
        start_up = self.start_up(JOBPOOL.name)
        quiet = self.cell(JOBPOOL.name, TARGET_WORKLOAD, BUDGET_SIZE).cpu_per_job_after(start_up)
        logging = self.cell(JOBPOOL_LOGGING.name, TARGET_WORKLOAD, BUDGET_SIZE).cpu_per_job_after(start_up)
        line = logging.workers - quiet.workers
        share = line / quiet.total
        rate_ratio = self.rate(JOBPOOL_LOGGING.name, TARGET_WORKLOAD, BUDGET_SIZE) / self.rate(
            JOBPOOL.name, TARGET_WORKLOAD, BUDGET_SIZE
        )
        return {
            "log_line_per_job": Target(
                f"a job's INFO log line costs under {MAX_LOG_LINE_SHARE:.0%} of a no-op job's CPU, pool "
                f"of {BUDGET_SIZE} draining",
                f"{line:.1f} µs a line: {share:.1%} of a no-op job's {number(round(quiet.total))} µs "
                f"({line / quiet.workers:.1%} of the workers'); drain rate at INFO {rate_ratio:.0%} of "
                "the rate at WARNING",
                share < MAX_LOG_LINE_SHARE,
            )
        }


def _executed(cell: Cell) -> str:
    commands, script_calls = cell.redis_commands_per_job, cell.redis_script_calls_per_job
    if commands is None or script_calls is None:
        return ""
    return f" ({commands:.1f} commands and {script_calls:.2f} script calls a job)"


def _cpu_part(cpu: CpuSeconds, part: str) -> float:
    return {"redis-server": cpu.redis_server, "workers": cpu.workers, "pool process": cpu.pool_process}[part]


def drain_pools(profile: Profile, workload: str, size: int) -> tuple[PoolKind | DramatiqKind, ...]:
    """The pools a run of this workload and size drains with: Dramatiq at its sizes only; jobpool
    at INFO for the budget's size and workload only."""
    pools = DRAIN_POOLS if size in profile.dramatiq_pool_sizes else POOLS
    if size == BUDGET_SIZE and workload == TARGET_WORKLOAD:
        return (*pools, JOBPOOL_LOGGING)
    return pools


def start_up_once(context: Context, kind: PoolKind, size: int) -> CpuSeconds:
    """The CPU of a burst pool of ``size`` on an empty queue: its start-up and exit."""
    context.admin.flushdb()
    _, cpu = run_pool_to_end(
        kind.command(context.url, kind.queue_name, size, True),
        context.log_dir / f"start-up-{kind.name}-{size}.log",
        lambda: True,
        context.redis_process,
    )
    return cpu


def run(context: Context) -> Drain:
    profile = context.profile
    runs: dict[tuple[str, str, int], list[DrainRun]] = {}
    start_ups: dict[str, list[CpuSeconds]] = {}
    for index in range(profile.runs):
        for size in profile.pool_sizes:
            for workload in profile.workloads:
                for kind in drain_pools(profile, workload, size):
                    jobs = jobs_per_run(kind, workload, size, profile, cpu_count())
                    drain = drain_once(context, kind, workload, size, jobs)
                    progress(
                        f"drain {index + 1}/{profile.runs}: {kind.label} x{size}, {jobs:,} {workload}: "
                        f"{drain.steady_jobs_per_second:,.0f} jobs/s ({drain.wall_seconds:.1f} s wall)"
                    )
                    runs.setdefault((kind.name, workload, size), []).append(drain)
        if BUDGET_SIZE in profile.pool_sizes:
            for kind in BUDGET_POOLS:
                start_ups.setdefault(kind.name, []).append(start_up_once(context, kind, BUDGET_SIZE))
    context.admin.flushdb()
    cells = {key: Cell.of(each) for key, each in runs.items()}
    return Drain.of(profile, cells, {pool: tuple(each) for pool, each in start_ups.items()})
