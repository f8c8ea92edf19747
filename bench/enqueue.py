"""Enqueue: jobpool's producer against RQ 3.0's, on the suite's private redis-server.

For each library it measures

1. round trips and Redis commands per single ``Queue.enqueue`` of a no-op job,
2. the same for one ``Queue.enqueue_many`` of N jobs,
3. throughput: single enqueues per second from one client, and enqueue_many jobs per second,
   each the median of several runs (interleaved between the libraries) with its min-max spread.

Round trips and the commands the client sent are counted on the client side, by a redis-py
connection that reports what it writes and when it reads replies (``RoundTripCounter``). The
commands Redis executed, including those run inside Lua scripts, are ``INFO commandstats`` deltas
(``CONFIG RESETSTAT`` before each measured batch). Executed minus sent, command by command, is
what ran inside scripts.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import rq

import jobpool
from bench.redis_counting import Cost, RoundTripCounter, counting_client, measure_cost
from bench.reporting import (
    EN_DASH,
    TIMES,
    Spread,
    breakdown,
    cost_table_rows,
    number,
    progress,
    spread_cell,
    table,
)
from bench.suite_types import Context, Target
from bench.workload import noop

COST_BATCH = 100
"""Single enqueues whose round trips and commands are counted; per-enqueue figures are totals / this."""


# ---- the libraries under test -----------------------------------------------------------------


class ProducerQueue(Protocol):
    """The part of the producer API that jobpool.Queue and rq.Queue share and this benchmark uses."""

    def enqueue(self, f: Any, *args: Any, **kwargs: Any) -> Any: ...

    def enqueue_many(self, job_datas: Any) -> list[Any]: ...


@dataclass(frozen=True)
class Library:
    """A producer API under test."""

    name: str
    label: str
    version: str
    queue_class: Any  # jobpool.Queue or rq.Queue: same constructor, enqueue, prepare_data, enqueue_many

    def queue(self, connection: redis.Redis) -> ProducerQueue:
        return self.queue_class(f"bench-{self.name}", connection=connection)

    def job_datas(self, jobs: int) -> list[Any]:
        return [self.queue_class.prepare_data(noop) for _ in range(jobs)]


LIBRARIES = (
    Library("jobpool", "jobpool", jobpool.__version__, jobpool.Queue),
    Library("rq", "RQ", rq.__version__, rq.Queue),
)


def enqueue_singly(queue: ProducerQueue, jobs: int) -> None:
    for _ in range(jobs):
        queue.enqueue(noop)


@dataclass(frozen=True)
class CostReport:
    warm_up: Cost
    """The first enqueue on a fresh connection (jobpool: loads its script; RQ: reads the server version)."""
    single: Cost
    many: Cost


def measure_costs(library: Library, url: str, admin: redis.Redis, many_jobs: int) -> CostReport:
    counter = RoundTripCounter()
    client = counting_client(url, counter)
    try:
        client.ping()  # connects: the handshake stays out of every measured batch
        queue = library.queue(client)
        admin.flushdb()
        warm_up = measure_cost(lambda: queue.enqueue(noop), 1, counter, admin)
        single = measure_cost(lambda: enqueue_singly(queue, COST_BATCH), COST_BATCH, counter, admin)
        datas = library.job_datas(many_jobs)
        many = measure_cost(lambda: queue.enqueue_many(datas), many_jobs, counter, admin)
    finally:
        client.close()
    return CostReport(warm_up, single, many)


# ---- throughput -------------------------------------------------------------------------------


def single_enqueue_rate(queue: ProducerQueue, jobs: int) -> float:
    start = time.perf_counter()
    enqueue_singly(queue, jobs)
    return jobs / (time.perf_counter() - start)


def enqueue_many_rate(library: Library, queue: ProducerQueue, jobs: int) -> float:
    datas = library.job_datas(jobs)  # prepare_data is left out of the timing
    start = time.perf_counter()
    queue.enqueue_many(datas)
    return jobs / (time.perf_counter() - start)


@dataclass(frozen=True)
class Throughput:
    single_jobs_per_second: Spread
    many_jobs_per_second: Spread


def measure_throughput(
    url: str, admin: redis.Redis, single_jobs: int, many_jobs: int, runs: int
) -> dict[str, Throughput]:
    """Runs alternate between the libraries, so a change in the machine's load hits both alike."""
    clients = {library.name: redis.Redis.from_url(url) for library in LIBRARIES}
    try:
        queues = {library.name: library.queue(clients[library.name]) for library in LIBRARIES}
        for queue in queues.values():
            queue.enqueue(noop)  # warm-up: connect, load the script, RQ's server version check
        rates: dict[tuple[str, str], list[float]] = defaultdict(list)
        for run in range(runs):
            for library in LIBRARIES:
                progress(f"enqueue rate {run + 1}/{runs}: {library.label}")
                queue = queues[library.name]
                admin.flushdb()
                rates[library.name, "single"].append(single_enqueue_rate(queue, single_jobs))
                admin.flushdb()
                rates[library.name, "many"].append(enqueue_many_rate(library, queue, many_jobs))
        admin.flushdb()
    finally:
        for client in clients.values():
            client.close()
    return {
        library.name: Throughput(
            Spread.of(rates[library.name, "single"]), Spread.of(rates[library.name, "many"])
        )
        for library in LIBRARIES
    }


# ---- the report -------------------------------------------------------------------------------


def single_target_met(cost: Cost) -> bool:
    return cost.round_trips == cost.jobs


def many_target_met(cost: Cost) -> bool:
    """One pipeline for the jobs; redis-py's script check before a pipeline is a round trip of its own."""
    return cost.round_trips - cost.script_check_round_trips == 1


def many_round_trips_summary(cost: Cost) -> str:
    if not cost.script_check_round_trips:
        return f"{cost.round_trips} round trip(s)"
    return (
        f"{cost.round_trips} round trips: the pipeline, plus {cost.script_check_round_trips} for the script "
        "check redis-py sends before any pipeline that holds a script"
    )


def per_job_summary(cost: Cost) -> str:
    return (
        f"{number(cost.round_trips_per_job)} round trip(s) and "
        f"{number(cost.commands_sent_per_job)} command(s) sent per enqueue"
    )


def warm_up_reasons(costs: dict[str, CostReport]) -> Iterator[str]:
    """Why the first enqueue costs more, from the commands it sent."""
    for library in LIBRARIES:
        sent = costs[library.name].warm_up.sent
        if "script|load" in sent:
            yield f" {library.label}'s EVALSHA gets NOSCRIPT, then it loads the script and runs it again."
        if "info" in sent:
            yield f" {library.label} reads the server version (INFO) once per Redis client."


@dataclass(frozen=True)
class Enqueue:
    """Made by ``Enqueue.of``."""

    name = "enqueue"
    cost_batch: int
    single_jobs: int
    many_jobs: int
    cost: dict[str, CostReport]
    throughput: dict[str, Throughput]
    ratio_jobpool_over_rq: dict[str, float]
    """By kind of enqueue (``single``, ``many``): jobpool's median rate over RQ's."""

    @classmethod
    def of(
        cls, single_jobs: int, many_jobs: int, cost: dict[str, CostReport], throughput: dict[str, Throughput]
    ) -> Enqueue:
        ours, theirs = throughput["jobpool"], throughput["rq"]
        ratios = {
            "single": ours.single_jobs_per_second.median / theirs.single_jobs_per_second.median,
            "many": ours.many_jobs_per_second.median / theirs.many_jobs_per_second.median,
        }
        return cls(COST_BATCH, single_jobs, many_jobs, cost, throughput, ratios)

    @property
    def runs(self) -> int:
        return len(self.throughput["jobpool"].single_jobs_per_second.runs)

    def cost_rows(self, pick: Callable[[CostReport], Cost], per_job: bool) -> list[list[str]]:
        """Rows of round trips and commands for one kind of batch, a column per library."""
        return cost_table_rows([pick(self.cost[library.name]) for library in LIBRARIES], per_job)

    def throughput_rows(self) -> list[list[str]]:
        figures = [self.throughput[library.name] for library in LIBRARIES]
        return [
            [
                f"`enqueue`, jobs/s ({number(self.single_jobs)} jobs, one client)",
                *(spread_cell(each.single_jobs_per_second) for each in figures),
                f"{self.ratio_jobpool_over_rq['single']:.2f}{TIMES}",
            ],
            [
                f"`enqueue_many`, jobs/s ({number(self.many_jobs)} jobs in one call)",
                *(spread_cell(each.many_jobs_per_second) for each in figures),
                f"{self.ratio_jobpool_over_rq['many']:.2f}{TIMES}",
            ],
        ]

    def warm_up_line(self) -> str:
        parts = [
            f"{library.label} {self.cost[library.name].warm_up.round_trips} round trips "
            f"({breakdown(self.cost[library.name].warm_up.sent)})"
            for library in LIBRARIES
        ]
        return (
            "First `enqueue` on a fresh client (left out of the per-enqueue figures): "
            + "; ".join(parts)
            + "."
            + "".join(warm_up_reasons(self.cost))
        )

    def markdown(self) -> list[str]:
        labels = [library.label for library in LIBRARIES]
        return [
            "## Enqueue",
            "",
            "Enqueue is Python plus one Lua script; the extension only supplies the script's text.",
            "",
            f"### One `enqueue` of a no-op job (per enqueue, mean over {COST_BATCH})",
            "",
            *table(["", *labels], self.cost_rows(lambda report: report.single, per_job=True)),
            "",
            self.warm_up_line(),
            "",
            f"### One `enqueue_many` of {number(self.many_jobs)} jobs (whole batch)",
            "",
            *table(["", *labels], self.cost_rows(lambda report: report.many, per_job=False)),
            "",
            f"### Enqueue rate (median of {self.runs} runs, min{EN_DASH}max)",
            "",
            *table(["", *labels, "jobpool / RQ"], self.throughput_rows()),
        ]

    def targets(self) -> dict[str, Target]:
        single, many, rq_single = (
            self.cost["jobpool"].single,
            self.cost["jobpool"].many,
            self.cost["rq"].single,
        )
        return {
            "enqueue_one_round_trip": Target(
                "one `enqueue` is one round trip",
                f"jobpool {per_job_summary(single)}; RQ {per_job_summary(rq_single)}",
                single_target_met(single),
            ),
            "enqueue_many_one_pipeline": Target(
                f"`enqueue_many` of {number(many.jobs)} jobs is one pipeline",
                many_round_trips_summary(many),
                many_target_met(many),
            ),
        }


def run(context: Context) -> Enqueue:
    profile = context.profile
    single, many = profile.enqueue_jobs, 2 * profile.enqueue_jobs
    costs = {}
    for library in LIBRARIES:
        progress(f"enqueue: counting round trips and commands: {library.label}")
        costs[library.name] = measure_costs(library, context.url, context.admin, many)
    throughput = measure_throughput(context.url, context.admin, single, many, profile.runs)
    return Enqueue.of(single, many, costs, throughput)
