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
from typing import Any

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
    included, the benchmark's own polls left out; not counted for Dramatiq)."""

    jobs: int
    wall_seconds: float
    steady_rate: float
    cpu: CpuSeconds
    commands: int | None = None
    script_calls: int | None = None

    @property
    def wall_rate(self) -> float:
        return self.jobs / self.wall_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "wall_seconds": self.wall_seconds,
            "steady_jobs_per_second": self.steady_rate,
            "wall_jobs_per_second": self.wall_rate,
            "cpu_seconds": self.cpu.to_json(),
            "redis_commands": self.commands,
            "redis_script_calls": self.script_calls,
        }


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
    return DrainRun(jobs, wall_seconds, rate, cpu, commands, script_calls)


def dramatiq_drain_once(context: Context, workload: str, size: int, jobs: int) -> DrainRun:
    """Dramatiq has no start times: with fewer than STEADY_MIN_JOBS jobs (the tiny profile), its
    rate counts from the pool's start (wall clock at its launch)."""
    launched = time.time()
    wall_seconds, cpu, ends = dramatiq_pool.drain_once(context, workload, size, jobs)
    return DrainRun(jobs, wall_seconds, steady_rate_of(launched, ends), cpu)


@dataclass(frozen=True)
class Cell:
    """The runs of one pool, workload and size."""

    runs: tuple[DrainRun, ...]

    @property
    def steady(self) -> Spread:
        return Spread(tuple(run.steady_rate for run in self.runs))

    @property
    def wall(self) -> Spread:
        return Spread(tuple(run.wall_rate for run in self.runs))

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

    def cpu_per_job_after(self, start_up: CpuSeconds) -> CpuSeconds:
        """CPU microseconds per job, over all runs, ``start_up`` (each run's) left out."""
        jobs, runs = sum(run.jobs for run in self.runs) / 1e6, len(self.runs)
        return CpuSeconds(
            (sum(run.cpu.pool_process for run in self.runs) - runs * start_up.pool_process) / jobs,
            (sum(run.cpu.workers for run in self.runs) - runs * start_up.workers) / jobs,
            (sum(run.cpu.redis_server for run in self.runs) - runs * start_up.redis_server) / jobs,
        )

    def per_job(self, count: str) -> float | None:
        """Redis ``commands`` or ``script_calls`` per job, over all runs (None: not counted)."""
        counted = [getattr(run, count) for run in self.runs]
        if any(each is None for each in counted):
            return None
        return sum(counted) / sum(run.jobs for run in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "steady_jobs_per_second": self.steady.to_json(),
            "wall_jobs_per_second": self.wall.to_json(),
            "cpu_microseconds_per_job": self.cpu_per_job.to_json(),
            "redis_commands_per_job": self.per_job("commands"),
            "redis_script_calls_per_job": self.per_job("script_calls"),
            "runs": [run.to_json() for run in self.runs],
        }


@dataclass(frozen=True)
class Drain:
    name = "drain"
    profile: Profile
    cells: dict[tuple[str, str, int], Cell]
    """By (pool, workload, size)."""
    start_ups: dict[str, tuple[CpuSeconds, ...]]
    """By pool (of BUDGET_POOLS, at BUDGET_SIZE): the CPU of a burst run on an empty queue, each run."""

    def start_up(self, pool: str) -> CpuSeconds:
        """The mean CPU of ``pool``'s start-up and exit, at BUDGET_SIZE."""
        runs = self.start_ups[pool]
        return CpuSeconds(
            sum(run.pool_process for run in runs) / len(runs),
            sum(run.workers for run in runs) / len(runs),
            sum(run.redis_server for run in runs) / len(runs),
        )

    def rate(self, pool: str, workload: str, size: int) -> float:
        return self.cells[pool, workload, size].steady.median

    def ratio(self, other: str, workload: str, size: int) -> float:
        return self.rate(JOBPOOL.name, workload, size) / self.rate(other, workload, size)

    def measured(self, pool: str, workload: str, size: int) -> bool:
        """Dramatiq runs at the profile's Dramatiq sizes only."""
        return (pool, workload, size) in self.cells

    def dramatiq_sizes(self, workload: str) -> list[int]:
        return [size for size in self.profile.pool_sizes if self.measured(DRAMATIQ.name, workload, size)]

    def ratio_to_fastest_rq(self, size: int) -> float:
        fastest = max(self.rate(kind.name, TARGET_WORKLOAD, size) for kind in (RQ_SIMPLE, RQ_FORK))
        return self.rate(JOBPOOL.name, TARGET_WORKLOAD, size) / fastest

    def to_json(self) -> dict[str, Any]:
        figures: dict[str, dict[str, dict[str, Any]]] = {}
        for (pool, workload, size), cell in self.cells.items():
            figures.setdefault(workload, {}).setdefault(pool, {})[str(size)] = cell.to_json()
        return {
            "method": "burst pools (Dramatiq: SIGTERM once its jobs have ended); rate from the jobs' "
            "end times between the 10th and 90th percentile",
            "dramatiq": f"dramatiq {dramatiq_pool.VERSION} --processes N (8 threads each), sizes "
            f"{list(self.profile.dramatiq_pool_sizes)}; end times written by the actors to a file "
            "per process",
            "pool_sizes": list(self.profile.pool_sizes),
            "workloads": list(self.profile.workloads),
            "figures": figures,
            "start_up_cpu_seconds": {
                pool: [run.to_json() for run in runs] for pool, runs in self.start_ups.items()
            },
            "ratio_jobpool_over": {
                workload: {
                    other.name: {
                        str(size): self.ratio(other.name, workload, size) for size in self.profile.pool_sizes
                    }
                    for other in (RQ_SIMPLE, RQ_FORK)
                }
                | {
                    DRAMATIQ.name: {
                        str(size): self.ratio(DRAMATIQ.name, workload, size)
                        for size in self.dramatiq_sizes(workload)
                    }
                }
                for workload in self.profile.workloads
            },
        }

    def markdown(self) -> list[str]:
        lines = [
            "## Drain throughput",
            "",
            "K jobs enqueued, then the pool started in burst mode until it exits. Jobs per second from "
            "the jobs' own end times between the 10th and 90th percentile (median of "
            f"{self.profile.runs} runs, min{EN_DASH}max); the rate over the pool process's "
            "whole life, start-up included, is in the JSON.",
        ]
        header = ["pool size", *(kind.label for kind in POOLS), f"{DRAMATIQ.label}, N processes"]
        header += [f"jobpool / {other.label}" for other in (RQ_SIMPLE, RQ_FORK, DRAMATIQ)]
        for workload in self.profile.workloads:
            rows = [
                [
                    str(size),
                    *(
                        spread_cell(self.cells[kind.name, workload, size].steady)
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
                for size in self.profile.pool_sizes
            ]
            label = LABELS[workload]
            lines += ["", f"### {label[0].upper()}{label[1:]}, jobs/s", "", *table(header, rows)]
        lines += ["", "### CPU time per no-op job, µs (user + system, all runs)", ""]
        rows = []
        for size in self.profile.pool_sizes:
            for kind in (*DRAIN_POOLS, JOBPOOL_LOGGING):
                if not self.measured(kind.name, TARGET_WORKLOAD, size):
                    continue
                cell = self.cells[kind.name, TARGET_WORKLOAD, size]
                cpu = cell.cpu_per_job
                figures = (cpu.pool_process, cpu.workers, cpu.redis_server, cpu.total)
                counts = (cell.per_job("commands"), cell.per_job("script_calls"))
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
                for pool, cpu in ((pool, self.start_up(pool)) for pool in self.start_ups)
            )
            + f". `{JOBPOOL_LOGGING.label}` is jobpool at its default log level (a line a job), "
            "the rest log warnings only.",
        ]
        lines += [
            "",
            f"Dramatiq {dramatiq_pool.VERSION}: `dramatiq dramatiq_workload --processes N` (its default 8 "
            "threads a process) on a RedisBroker, at pool sizes "
            f"{', '.join(map(str, self.profile.dramatiq_pool_sizes))}; it has no burst mode, so its K "
            "messages (enqueued one `broker.enqueue` each, as `actor.send()` does) are drained by a pool "
            "stopped with SIGTERM once every job has written its end time (one `os.write` to a file of "
            "its process, no Redis traffic); its wall rate includes that warm shutdown. Its pool process "
            "is Dramatiq's main process, its workers the worker processes.",
        ]
        return lines

    def targets(self) -> list[Target]:
        if TARGET_WORKLOAD not in self.profile.workloads:
            return []
        ratios = {size: self.ratio_to_fastest_rq(size) for size in self.profile.pool_sizes}
        measured = ", ".join(f"{size}: {ratio:.1f}{TIMES}" for size, ratio in ratios.items())
        targets = []
        if self.measured(DRAMATIQ.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE):
            ratio = self.ratio(DRAMATIQ.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE)
            jobpool = self.rate(JOBPOOL.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE)
            dramatiq = self.rate(DRAMATIQ.name, TARGET_WORKLOAD, DRAMATIQ_TARGET_SIZE)
            targets.append(
                Target(
                    "drain_3x_dramatiq",
                    f"no-op drain at pool size {DRAMATIQ_TARGET_SIZE} at least "
                    f"{MIN_RATIO_OVER_DRAMATIQ:.0f}{TIMES} Dramatiq with {DRAMATIQ_TARGET_SIZE} processes",
                    f"{ratio:.1f}{TIMES} ({number(round(jobpool))} against {number(round(dramatiq))} jobs/s)",
                    ratio >= MIN_RATIO_OVER_DRAMATIQ,
                )
            )
        return [
            *self.budget_targets(),
            Target(
                "drain_30x_fastest_rq_pool",
                f"no-op jobs drained at least {MIN_RATIO:.0f}{TIMES} as fast as RQ's fastest pool of "
                "the same size",
                f"by pool size: {measured}",
                min(ratios.values()) >= MIN_RATIO,
            ),
            *targets,
        ]

    def budget_targets(self) -> list[Target]:
        """The per-job budget, for jobpool at BUDGET_SIZE (``--prefetch 0`` beside it), start-up
        left out; and the price of a job's log line."""
        if not self.measured(JOBPOOL.name, TARGET_WORKLOAD, BUDGET_SIZE):
            return []
        cells = {
            kind.label: self.cells[kind.name, TARGET_WORKLOAD, BUDGET_SIZE]
            for kind in BUDGET_POOLS
            if self.measured(kind.name, TARGET_WORKLOAD, BUDGET_SIZE)
        }
        spent_per_job = {
            kind.label: self.cells[kind.name, TARGET_WORKLOAD, BUDGET_SIZE].cpu_per_job_after(
                self.start_up(kind.name)
            )
            for kind in BUDGET_POOLS
            if kind.label in cells
        }
        targets = []
        for part, limit in BUDGET_MICROSECONDS.items():
            spent = {label: _cpu_part(cpu, part) for label, cpu in spent_per_job.items()}
            with_start_up = _cpu_part(cells[JOBPOOL.label].cpu_per_job, part)
            measured = "; ".join(
                f"{label}: {number(round(value))} µs"
                + (f" ({number(round(with_start_up))} with its start-up)" if label == JOBPOOL.label else "")
                + (_executed(cells[label]) if part == "redis-server" else "")
                for label, value in spent.items()
            )
            targets.append(
                Target(
                    f"{part.replace(' ', '_').replace('-', '_')}_cpu_per_job",
                    f"{part} CPU per no-op job at most {limit:.0f} µs, pool of {BUDGET_SIZE} draining "
                    "(start-up left out)",
                    measured,
                    spent[JOBPOOL.label] <= limit,
                )
            )
        return [*targets, *self.log_line_targets()]

    def log_line_targets(self) -> list[Target]:
        """A job's log line: what the workers spend more at INFO than at WARNING, against a
        no-op job's whole CPU (start-up left out of both)."""
        if not self.measured(JOBPOOL_LOGGING.name, TARGET_WORKLOAD, BUDGET_SIZE):
            return []
        start_up = self.start_up(JOBPOOL.name)
        quiet = self.cells[JOBPOOL.name, TARGET_WORKLOAD, BUDGET_SIZE].cpu_per_job_after(start_up)
        logging = self.cells[JOBPOOL_LOGGING.name, TARGET_WORKLOAD, BUDGET_SIZE].cpu_per_job_after(start_up)
        line = logging.workers - quiet.workers
        share = line / quiet.total
        rate_ratio = self.rate(JOBPOOL_LOGGING.name, TARGET_WORKLOAD, BUDGET_SIZE) / self.rate(
            JOBPOOL.name, TARGET_WORKLOAD, BUDGET_SIZE
        )
        return [
            Target(
                "log_line_per_job",
                f"a job's INFO log line costs under {MAX_LOG_LINE_SHARE:.0%} of a no-op job's CPU, pool "
                f"of {BUDGET_SIZE} draining",
                f"{line:.1f} µs a line: {share:.1%} of a no-op job's {number(round(quiet.total))} µs "
                f"({line / quiet.workers:.1%} of the workers'); drain rate at INFO {rate_ratio:.0%} of "
                "the rate at WARNING",
                share < MAX_LOG_LINE_SHARE,
            )
        ]


def _executed(cell: Cell) -> str:
    commands, script_calls = cell.per_job("commands"), cell.per_job("script_calls")
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
                        f"{drain.steady_rate:,.0f} jobs/s ({drain.wall_seconds:.1f} s wall)"
                    )
                    runs.setdefault((kind.name, workload, size), []).append(drain)
        if BUDGET_SIZE in profile.pool_sizes:
            for kind in BUDGET_POOLS:
                start_ups.setdefault(kind.name, []).append(start_up_once(context, kind, BUDGET_SIZE))
    context.admin.flushdb()
    cells = {key: Cell(tuple(each)) for key, each in runs.items()}
    return Drain(profile, cells, {pool: tuple(each) for pool, each in start_ups.items()})
