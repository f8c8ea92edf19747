"""Enqueue cost: jobpool against RQ 3.0, side by side, in one run on one private redis-server.

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

It prints a markdown report to stdout and writes the figures to
``bench/results/enqueue-<UTC date-time>.json``.

    python bench/enqueue_cost.py [--quick] [--single N] [--many N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import redis
import rq

import jobpool
from jobpool.embedded_redis import EmbeddedRedis

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # workers import the job by name: noop.noop

from machine_info import environment, load_average  # noqa: E402
from noop import noop  # noqa: E402
from redis_counting import Cost, RoundTripCounter, counting_client, measure_cost  # noqa: E402
from reporting import (  # noqa: E402
    EN_DASH,
    TIMES,
    Spread,
    breakdown,
    cost_table_rows,
    number,
    progress,
    spread_cell,
    table,
    verdict,
)

RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_SINGLE_JOBS = 5_000
DEFAULT_MANY_JOBS = 10_000
QUICK_JOBS = 200
DEFAULT_RUNS = 3
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
        return self.queue_class(f"bench-{self.name}", connection=connection)  # type: ignore[no-any-return]

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

    def to_json(self) -> dict[str, Any]:
        return {
            "warm_up": self.warm_up.to_json(),
            "single": self.single.to_json(),
            "many": self.many.to_json(),
        }


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
    single: Spread
    many: Spread

    def to_json(self) -> dict[str, Any]:
        return {"single_jobs_per_second": self.single.to_json(), "many_jobs_per_second": self.many.to_json()}


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
                progress(f"throughput run {run + 1}/{runs}: {library.label}")
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
            Spread(tuple(rates[library.name, "single"])), Spread(tuple(rates[library.name, "many"]))
        )
        for library in LIBRARIES
    }


# ---- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    started: datetime
    quick: bool
    single_jobs: int
    many_jobs: int
    runs: int
    environment: dict[str, Any]
    costs: dict[str, CostReport]
    throughput: dict[str, Throughput]

    def ratio(self, kind: str) -> float:
        rates = {name: getattr(figures, kind).median for name, figures in self.throughput.items()}
        return float(rates["jobpool"] / rates["rq"])

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "enqueue_cost",
            "started_utc": self.started.isoformat(),
            "quick": self.quick,
            "config": {
                "cost_batch": COST_BATCH,
                "single_jobs": self.single_jobs,
                "many_jobs": self.many_jobs,
                "runs": self.runs,
            },
            "environment": self.environment,
            "versions": {library.name: library.version for library in LIBRARIES},
            "cost": {name: report.to_json() for name, report in self.costs.items()},
            "throughput": {name: figures.to_json() for name, figures in self.throughput.items()},
            "ratio_jobpool_over_rq": {"single": self.ratio("single"), "many": self.ratio("many")},
            "targets": {
                "one_enqueue_one_round_trip": single_target_met(self.costs["jobpool"].single),
                "enqueue_many_one_pipeline": many_target_met(self.costs["jobpool"].many),
            },
        }


def single_target_met(cost: Cost) -> bool:
    return cost.round_trips == cost.jobs


def many_target_met(cost: Cost) -> bool:
    """One pipeline for the jobs; redis-py's script check before a pipeline is a round trip of its own."""
    return cost.round_trips - cost.script_check_round_trips == 1


def cost_rows(
    costs: dict[str, CostReport], pick: Callable[[CostReport], Cost], per_job: bool
) -> list[list[str]]:
    """Rows of round trips and commands for one kind of batch, a column per library."""
    return cost_table_rows([pick(costs[library.name]) for library in LIBRARIES], per_job)


def throughput_rows(results: Results) -> list[list[str]]:
    figures = [results.throughput[library.name] for library in LIBRARIES]
    return [
        [
            f"`enqueue`, jobs/s ({number(results.single_jobs)} jobs, one client)",
            *(spread_cell(each.single) for each in figures),
            f"{results.ratio('single'):.2f}{TIMES}",
        ],
        [
            f"`enqueue_many`, jobs/s ({number(results.many_jobs)} jobs in one call)",
            *(spread_cell(each.many) for each in figures),
            f"{results.ratio('many'):.2f}{TIMES}",
        ],
    ]


def build_note(build: str) -> str:
    return (
        f"jobpool extension: {build} build. It hardly matters here: enqueue is Python plus one Lua "
        "script; the extension only supplies the script's text at import."
    )


def target_lines(costs: dict[str, CostReport]) -> list[str]:
    single, many, rq_single = costs["jobpool"].single, costs["jobpool"].many, costs["rq"].single
    return [
        f"- One `enqueue` = one round trip: **{verdict(single_target_met(single))}** (jobpool "
        f"{per_job_summary(single)}; RQ {per_job_summary(rq_single)}).",
        f"- `enqueue_many` of {number(many.jobs)} = one pipeline: **{verdict(many_target_met(many))}** "
        f"({many_round_trips_summary(many)}).",
    ]


def many_round_trips_summary(cost: Cost) -> str:
    if not cost.script_check_round_trips:
        return f"{cost.round_trips} round trip(s)"
    return (
        f"{cost.round_trips} round trips: the pipeline, plus {cost.script_check_round_trips} for the script "
        "check redis-py sends before any pipeline that holds a script"
    )


def per_job_summary(cost: Cost) -> str:
    return (
        f"{number(cost.per_job(cost.round_trips))} round trip(s) and "
        f"{number(cost.per_job(cost.sent_total))} command(s) sent per enqueue"
    )


def warm_up_line(costs: dict[str, CostReport]) -> str:
    parts = [
        f"{library.label} {costs[library.name].warm_up.round_trips} round trips "
        f"({breakdown(costs[library.name].warm_up.sent)})"
        for library in LIBRARIES
    ]
    return (
        "First `enqueue` on a fresh client (left out of the per-enqueue figures): "
        + "; ".join(parts)
        + "."
        + "".join(warm_up_reasons(costs))
    )


def warm_up_reasons(costs: dict[str, CostReport]) -> Iterator[str]:
    """Why the first enqueue costs more, from the commands it sent."""
    for library in LIBRARIES:
        sent = costs[library.name].warm_up.sent
        if "script|load" in sent:
            yield f" {library.label}'s EVALSHA gets NOSCRIPT, then it loads the script and runs it again."
        if "info" in sent:
            yield f" {library.label} reads the server version (INFO) once per Redis client."


def render_markdown(results: Results) -> str:
    labels = [library.label for library in LIBRARIES]
    env = results.environment
    lines = [
        f"## Enqueue: jobpool {LIBRARIES[0].version} vs RQ {LIBRARIES[1].version}",
        "",
        f"redis-server {env['redis_server']}, redis-py {env['redis_py']}, Python {env['python']}, "
        f"{env['nproc']} CPUs ({env['cpu_model']}), load average before {env['load_average_before']}"
        + (", **quick run**" if results.quick else ""),
        "",
        build_note(env["extension_build"]),
        "",
        f"### One `enqueue` of a no-op job (per enqueue, mean over {COST_BATCH})",
        "",
        *table(["", *labels], cost_rows(results.costs, lambda report: report.single, per_job=True)),
        "",
        warm_up_line(results.costs),
        "",
        f"### One `enqueue_many` of {number(results.many_jobs)} jobs (whole batch)",
        "",
        *table(["", *labels], cost_rows(results.costs, lambda report: report.many, per_job=False)),
        "",
        f"### Throughput (median of {results.runs} runs, min{EN_DASH}max)",
        "",
        *table(["", *labels, "jobpool / RQ"], throughput_rows(results)),
        "",
        "### Targets",
        "",
        *target_lines(results.costs),
    ]
    return "\n".join(lines) + "\n"


def unaccounted_warnings(costs: dict[str, CostReport]) -> list[str]:
    warnings = []
    for name, report in costs.items():
        for kind, cost in (("warm-up", report.warm_up), ("single", report.single), ("many", report.many)):
            if cost.unaccounted:
                warnings.append(
                    f"warning: {name} {kind}: sent, not in commandstats: {dict(cost.unaccounted)}"
                )
    return warnings


def write_json(results: Results) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"enqueue-{results.started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    return path


# ---- running it -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Enqueue cost of jobpool against RQ, side by side.")
    parser.add_argument("--quick", action="store_true", help=f"a tiny run: {QUICK_JOBS} jobs throughout")
    parser.add_argument("--single", type=int, help=f"enqueues per throughput run ({DEFAULT_SINGLE_JOBS})")
    parser.add_argument("--many", type=int, help=f"jobs per enqueue_many ({DEFAULT_MANY_JOBS})")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="throughput runs per figure")
    options = parser.parse_args(argv)
    default = QUICK_JOBS if options.quick else None
    options.single = options.single or default or DEFAULT_SINGLE_JOBS
    options.many = options.many or default or DEFAULT_MANY_JOBS
    return options


def run(options: argparse.Namespace) -> Results:
    started = datetime.now(timezone.utc)
    with EmbeddedRedis() as server:
        progress(f"private redis-server at {server.url}")
        admin = redis.Redis.from_url(server.url)
        try:
            env = environment(admin)
            costs = {}
            for library in LIBRARIES:
                progress(f"counting round trips and commands: {library.label}")
                costs[library.name] = measure_costs(library, server.url, admin, options.many)
            throughput = measure_throughput(server.url, admin, options.single, options.many, options.runs)
            env["load_average_after"] = load_average()
        finally:
            admin.close()
    return Results(started, options.quick, options.single, options.many, options.runs, env, costs, throughput)


def main(argv: Sequence[str] | None = None) -> int:
    results = run(parse_args(argv))
    print(render_markdown(results))
    for warning in unaccounted_warnings(results.costs):
        progress(warning)
    progress(f"figures written to {write_json(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
