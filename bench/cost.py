"""Cost per job on the worker side: Redis round trips and commands to take and finish a job, for
jobpool's ``Worker`` and RQ 3.0's ``SimpleWorker``, each draining a queue in this process.

A fresh worker drains N no-op jobs, then another fresh one drains 2N; the difference divided by N
is the cost of one job, with start-up, registration, the last (empty) take and shutdown cancelled
out. jobpool's Rust core counts its own round trips (``Worker.core.round_trips``, a pipeline counts
once); the worker's redis-py connection (jobpool: registration only; RQ: everything) is counted by
``CountingConnection``. Commands executed are ``INFO commandstats`` deltas; the commands run inside
scripts are named by MONITOR (``ScriptCommandWatch``), and sent = executed - run inside scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import redis
import rq
from rq.worker import SimpleWorker

import jobpool
from bench.pools import JOBPOOL, RQ_SIMPLE, PoolKind, finished_jobs
from bench.redis_counting import (
    Cost,
    RoundTripCounter,
    ScriptCommandWatch,
    counter_difference,
    counting_client,
    executed_commands,
    reset_server_stats,
    sorted_counts,
)
from bench.reporting import EN_DASH, cost_table_rows, number, progress, table
from bench.suite_types import Context, Target
from bench.workload import noop

MAX_ROUND_TRIPS_PER_JOB = 2
HANDED_BACK_ROUND_TRIPS_PER_JOB = 1
"""When finish hands back the next job (a drain of a full queue), one round trip per job."""


# ---- the workers under test ---------------------------------------------------------------------


def drain_with_jobpool(connection: redis.Redis, queue: str) -> int:
    """Drains ``queue`` with jobpool's SimpleWorker in this process; returns its Rust core's round trips."""
    worker = jobpool.SimpleWorker([queue], connection=connection)
    before = worker.core.round_trips
    worker.work(burst=True)
    return worker.core.round_trips - before


def drain_with_rq(connection: redis.Redis, queue: str) -> int:
    """Drains ``queue`` with RQ's SimpleWorker in this process; all its round trips are redis-py's."""
    SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    return 0


@dataclass(frozen=True)
class WorkerLibrary:
    """A queue library and its single-process worker, under test."""

    name: str
    label: str
    pool: PoolKind
    """The library's pool of the same worker: its queue, and its producer to fill it."""
    drain_in_process: Callable[[redis.Redis, str], int]
    """Drains a queue in this process; returns round trips made outside redis-py (jobpool's core)."""


LIBRARIES = (
    WorkerLibrary("jobpool", f"jobpool `SimpleWorker` {jobpool.__version__}", JOBPOOL, drain_with_jobpool),
    WorkerLibrary("rq", f"RQ `SimpleWorker` {rq.__version__}", RQ_SIMPLE, drain_with_rq),
)


# ---- worker-side cost per job -------------------------------------------------------------------


METHOD = "(drain of 2N jobs) - (drain of N jobs), each by a fresh worker; per job = / N"


@dataclass(frozen=True)
class DrainCost(Cost):
    """What one in-process drain cost, all of it (start-up and shutdown included)."""

    core_round_trips: int
    """Of ``round_trips``, those of jobpool's Rust core."""
    redis_py_round_trips: int
    """The rest: the worker's redis-py connection's."""
    redis_py_sent: dict[str, int]
    """The commands the worker's redis-py connection sent, counted on the client side."""

    @classmethod
    def measured(cls, cost: Cost, core_round_trips: int, redis_py_sent: Mapping[str, int]) -> DrainCost:
        return cls(
            **{field.name: getattr(cost, field.name) for field in fields(Cost)},
            core_round_trips=core_round_trips,
            redis_py_round_trips=cost.round_trips - core_round_trips,
            redis_py_sent=sorted_counts(redis_py_sent),
        )


def measure_drain(
    library: WorkerLibrary, url: str, admin: redis.Redis, watch: ScriptCommandWatch, jobs: int
) -> DrainCost:
    """Enqueues ``jobs`` jobs, then counts what a fresh worker costs to drain them."""
    admin.flushdb()
    job_ids = library.pool.enqueue(admin, jobs, noop)
    watch.collect(admin)  # forget the scripts the enqueue ran
    counter = RoundTripCounter()
    client = counting_client(url, counter)
    try:
        reset_server_stats(admin)
        core_round_trips = library.drain_in_process(client, library.pool.queue_name)
        executed = executed_commands(admin)
        inside_scripts = watch.collect(admin)
    finally:
        client.close()
    finished_jobs(admin, job_ids)
    sent = counter_difference(executed, inside_scripts)
    cost = Cost.of(jobs, counter.round_trips + core_round_trips, sent, executed)
    return DrainCost.measured(cost, core_round_trips, counter.commands)


@dataclass(frozen=True)
class FixedCost:
    """What a drain costs whatever its size: start-up, registration, last take, shutdown (the drain
    of N, less N times the cost per job)."""

    round_trips: int
    commands_sent: int
    commands_executed: int


@dataclass(frozen=True)
class WorkerCost:
    """Two drains by fresh workers, of N and 2N jobs, and what they tell: made by ``WorkerCost.of``."""

    method: str
    per_job: Cost
    """The extra jobs' cost alone (its ``..._per_job`` figures divide by their number)."""
    per_job_core_round_trips: float
    per_job_redis_py_sent: dict[str, int]
    """The extra jobs' commands as the worker's redis-py connection counted them (for RQ, all
    of its commands: a check on ``per_job.sent``, which comes from the server)."""
    fixed_per_drain: FixedCost
    drain_n: DrainCost
    drain_2n: DrainCost

    @classmethod
    def of(cls, small: DrainCost, large: DrainCost) -> WorkerCost:
        per_job = large.minus(small)
        fixed = FixedCost(
            small.round_trips - per_job.round_trips,
            small.commands_sent - per_job.commands_sent,
            small.commands_executed - per_job.commands_executed,
        )
        return cls(
            method=METHOD,
            per_job=per_job,
            per_job_core_round_trips=(large.core_round_trips - small.core_round_trips) / per_job.jobs,
            per_job_redis_py_sent=sorted_counts(counter_difference(large.redis_py_sent, small.redis_py_sent)),
            fixed_per_drain=fixed,
            drain_n=small,
            drain_2n=large,
        )


def measure_worker_cost(
    library: WorkerLibrary, url: str, admin: redis.Redis, watch: ScriptCommandWatch, jobs: int
) -> WorkerCost:
    small = measure_drain(library, url, admin, watch, jobs)
    large = measure_drain(library, url, admin, watch, 2 * jobs)
    return WorkerCost.of(small, large)


# ---- the report ---------------------------------------------------------------------------------


def round_trip_target_met(cost: WorkerCost, limit: int) -> bool:
    return cost.per_job.round_trips_per_job <= limit


def per_job_summary(cost: WorkerCost) -> str:
    per_job = cost.per_job
    return (
        f"{number(per_job.round_trips_per_job)} round trip(s), "
        f"{number(per_job.commands_sent_per_job)} command(s) sent and "
        f"{number(per_job.commands_executed_per_job)} executed per job"
    )


def core_round_trips_line(cost: WorkerCost) -> str:
    """Whose round trips jobpool's are: its Rust core's, or also its redis-py connection's."""
    total = cost.per_job.round_trips_per_job
    core = cost.per_job_core_round_trips
    if core == total:
        return "jobpool's round trips per job are all its Rust core's (none by its redis-py connection)."
    redis_py = number(total - core)
    return f"jobpool's round trips per job: {number(core)} by its Rust core, {redis_py} by redis-py."


def fixed_cost_line(costs: dict[str, WorkerCost]) -> str:
    parts = [
        f"{library.label} {number(costs[library.name].fixed_per_drain.round_trips)} round trips, "
        f"{number(costs[library.name].fixed_per_drain.commands_sent)} commands sent"
        for library in LIBRARIES
    ]
    return (
        "Left out above, what one drain costs whatever its size (start-up, registration, the last, "
        "empty take, shutdown; = drain of N - N * per job): " + "; ".join(parts) + "."
    )


@dataclass(frozen=True)
class WorkerCostSection:
    name = "cost_per_job"
    n: int
    """Jobs of the smaller drain."""
    workers: dict[str, WorkerCost]
    """By library."""

    def markdown(self) -> list[str]:
        labels = [library.label for library in LIBRARIES]
        n = self.n
        per_job = [self.workers[library.name].per_job for library in LIBRARIES]
        return [
            "## Cost per job on the worker side",
            "",
            f"Round trips and commands to take and finish one no-op job: ((drain of {number(2 * n)}) "
            f"{EN_DASH} (drain of {number(n)})) / {number(n)}, each by a fresh worker in one process.",
            "",
            *table(["", *labels], cost_table_rows(per_job, True)),
            "",
            core_round_trips_line(self.workers["jobpool"]) + " " + fixed_cost_line(self.workers),
        ]

    def targets(self) -> dict[str, Target]:
        ours, theirs = self.workers["jobpool"], self.workers["rq"]
        return {
            "at_most_2_round_trips_per_job": Target(
                f"at most {MAX_ROUND_TRIPS_PER_JOB} Redis round trips per job on the worker side",
                f"jobpool {per_job_summary(ours)}; RQ {per_job_summary(theirs)}",
                round_trip_target_met(ours, MAX_ROUND_TRIPS_PER_JOB),
            )
        }


def run(context: Context) -> WorkerCostSection:
    jobs = context.profile.cost_jobs
    costs = {}
    with ScriptCommandWatch(context.url) as watch:
        for library in LIBRARIES:
            progress(f"cost per job: {library.label}, drains of {jobs} then {2 * jobs} jobs")
            costs[library.name] = measure_worker_cost(library, context.url, context.admin, watch, jobs)
    context.admin.flushdb()
    return WorkerCostSection(jobs, costs)
