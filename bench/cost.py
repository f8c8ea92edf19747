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

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


# ---- the report ---------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class WorkerCostSection:
    name = "cost_per_job"
    jobs: int
    costs: dict[str, WorkerCost]

    def to_json(self) -> dict[str, Any]:
        return {"n": self.jobs, "workers": {name: cost.to_json() for name, cost in self.costs.items()}}

    def markdown(self) -> list[str]:
        labels = [library.label for library in LIBRARIES]
        n = self.jobs
        per_job = [self.costs[library.name].per_job for library in LIBRARIES]
        return [
            "## Cost per job on the worker side",
            "",
            f"Round trips and commands to take and finish one no-op job: ((drain of {number(2 * n)}) "
            f"{EN_DASH} (drain of {number(n)})) / {number(n)}, each by a fresh worker in one process.",
            "",
            *table(["", *labels], cost_table_rows(per_job, True)),
            "",
            core_round_trips_line(self.costs["jobpool"]) + " " + fixed_cost_line(self.costs),
        ]

    def targets(self) -> list[Target]:
        ours, theirs = self.costs["jobpool"], self.costs["rq"]
        return [
            Target(
                "at_most_2_round_trips_per_job",
                f"at most {MAX_ROUND_TRIPS_PER_JOB} Redis round trips per job on the worker side",
                f"jobpool {per_job_summary(ours)}; RQ {per_job_summary(theirs)}",
                round_trip_target_met(ours, MAX_ROUND_TRIPS_PER_JOB),
            )
        ]


def run(context: Context) -> WorkerCostSection:
    jobs = context.profile.cost_jobs
    costs = {}
    with ScriptCommandWatch(context.url) as watch:
        for library in LIBRARIES:
            progress(f"cost per job: {library.label}, drains of {jobs} then {2 * jobs} jobs")
            costs[library.name] = measure_worker_cost(library, context.url, context.admin, watch, jobs)
    context.admin.flushdb()
    return WorkerCostSection(jobs, costs)
