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
import os
import platform
import statistics
import struct
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import redis
import rq
from redis.connection import Connection, ConnectionPool

import jobpool
from jobpool import _native
from jobpool.embedded_redis import EmbeddedRedis

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # workers import the job by name: noop.noop

from noop import noop  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_SINGLE_JOBS = 5_000
DEFAULT_MANY_JOBS = 10_000
QUICK_JOBS = 200
DEFAULT_RUNS = 3
COST_BATCH = 100
"""Single enqueues whose round trips and commands are counted; per-enqueue figures are totals / this."""

CONTAINER_COMMANDS = frozenset(
    {
        "acl",
        "client",
        "cluster",
        "command",
        "config",
        "function",
        "latency",
        "memory",
        "module",
        "object",
        "pubsub",
        "script",
        "slowlog",
        "xinfo",
    }
)
"""Commands that commandstats names with their subcommand (``script|exists``)."""

MEASURING_COMMANDS = frozenset({"config|resetstat"})
"""The measuring client's own commands that show in commandstats (INFO does not count itself)."""

SCRIPT_CHECKS = frozenset({"script|exists", "script|load"})

EN_DASH = "\u2013"
TIMES = "\u00d7"


# ---- counting on the client side ---------------------------------------------------------------


def wire_bytes(packed: str | bytes | memoryview | Iterable[bytes | memoryview]) -> bytes:
    """What redis-py hands ``send_packed_command`` (one buffer or a list of chunks), as one buffer."""
    if isinstance(packed, str):
        return packed.encode()
    if isinstance(packed, (bytes, memoryview)):
        return bytes(packed)
    return b"".join(packed)


def command_names(wire: bytes) -> Iterator[str]:
    """The commandstats name of each command in ``wire`` (RESP arrays of bulk strings)."""
    position = 0
    while position < len(wire):
        words, position = _read_command(wire, position)
        yield command_name(words)


def _read_command(wire: bytes, position: int) -> tuple[list[bytes], int]:
    """The first two words of the command at ``position``, and where the next command begins."""
    count, position = _read_header(wire, position, b"*")
    words: list[bytes] = []
    for _ in range(count):
        length, position = _read_header(wire, position, b"$")
        if len(words) < 2:
            words.append(wire[position : position + length])
        position += length + 2  # the bulk string and its CRLF
    return words, position


def _read_header(wire: bytes, position: int, marker: bytes) -> tuple[int, int]:
    """The number in a ``*<n>`` or ``$<n>`` header at ``position``, and where its payload begins."""
    if wire[position : position + 1] != marker:
        raise ValueError(f"expected {marker!r} at byte {position} of a packed command")
    end = wire.index(b"\r\n", position)
    return int(wire[position + 1 : end]), end + 2


def command_name(words: Sequence[bytes]) -> str:
    """The name commandstats gives a command: ``hset``, or ``script|exists`` for a container command."""
    name = words[0].decode().lower()
    if name in CONTAINER_COMMANDS and len(words) > 1:
        return f"{name}|{words[1].decode().lower()}"
    return name


class RoundTripCounter:
    """Counts a client's round trips to Redis and the commands it sends, by name.

    A round trip is a write followed by reading replies. A write starts a new round trip unless
    the replies to the previous write have not been read yet, so a pipeline (all its commands in
    one write, then all the replies) is one round trip, whatever its size.
    """

    def __init__(self) -> None:
        self.round_trips = 0
        self.commands: Counter[str] = Counter()
        self._awaiting_replies = False

    def reset(self) -> None:
        self.round_trips = 0
        self.commands = Counter()
        self._awaiting_replies = False

    def record_write(self, wire: bytes) -> None:
        if not self._awaiting_replies:
            self.round_trips += 1
            self._awaiting_replies = True
        self.commands.update(command_names(wire))

    def record_read(self) -> None:
        self._awaiting_replies = False


class CountingConnection(Connection):
    """A redis-py TCP connection that reports its writes and reads to a ``RoundTripCounter``."""

    def __init__(self, *, counter: RoundTripCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counter = counter

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        super().send_packed_command(command, check_health)  # may connect first: its handshake counts first
        self.counter.record_write(wire_bytes(command))

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        finally:
            self.counter.record_read()  # an error reply (NOSCRIPT, say) is a reply too


def counting_client(url: str, counter: RoundTripCounter) -> redis.Redis:
    pool = ConnectionPool.from_url(url, connection_class=CountingConnection, counter=counter)
    return redis.Redis(connection_pool=pool)


# ---- counting on the server side ---------------------------------------------------------------


def reset_server_stats(admin: redis.Redis) -> None:
    admin.config_resetstat()


def executed_commands(admin: redis.Redis) -> Counter[str]:
    """Calls per command since the last reset, including those made inside scripts."""
    stats = admin.info("commandstats")
    calls = Counter({name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()})
    for name in MEASURING_COMMANDS:
        del calls[name]
    return calls


# ---- what a batch of enqueues cost ------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What enqueueing ``jobs`` jobs cost: round trips, and commands by name."""

    jobs: int
    round_trips: int
    sent: Counter[str]
    """Commands the client sent."""
    executed: Counter[str]
    """Commands Redis executed, including those run inside scripts."""

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def executed_total(self) -> int:
        return sum(self.executed.values())

    @property
    def inside_scripts(self) -> Counter[str]:
        return self.executed - self.sent

    @property
    def unaccounted(self) -> Counter[str]:
        """Commands sent but not executed: should be empty (else another client or a rejected call)."""
        return self.sent - self.executed

    @property
    def script_check_round_trips(self) -> int:
        """Round trips spent on SCRIPT EXISTS / SCRIPT LOAD (each is one, outside any pipeline)."""
        return sum(self.sent[name] for name in SCRIPT_CHECKS)

    def per_job(self, count: int) -> float:
        return count / self.jobs

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "round_trips": self.round_trips,
            "commands_sent": self.sent_total,
            "commands_executed": self.executed_total,
            "round_trips_per_job": self.per_job(self.round_trips),
            "commands_sent_per_job": self.per_job(self.sent_total),
            "commands_executed_per_job": self.per_job(self.executed_total),
            "sent": dict(sorted(self.sent.items())),
            "executed": dict(sorted(self.executed.items())),
            "inside_scripts": dict(sorted(self.inside_scripts.items())),
            "unaccounted": dict(sorted(self.unaccounted.items())),
        }


def measure_cost(
    action: Callable[[], object], jobs: int, counter: RoundTripCounter, admin: redis.Redis
) -> Cost:
    reset_server_stats(admin)
    counter.reset()
    action()
    return Cost(jobs, counter.round_trips, Counter(counter.commands), executed_commands(admin))


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


@dataclass(frozen=True)
class Spread:
    """Several runs' rates, in jobs per second."""

    rates: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": min(self.rates),
            "max": max(self.rates),
            "runs": list(self.rates),
        }


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


# ---- the machine and the build ----------------------------------------------------------------


def cpu_count() -> int:
    """What ``nproc`` prints: the CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else []


def elf_section_names(image: bytes) -> set[str]:
    """The section names of a 64-bit little-endian ELF file."""
    if image[:4] != b"\x7fELF" or image[4:6] != b"\x02\x01":
        raise ValueError("not a 64-bit little-endian ELF file")
    (table,) = struct.unpack_from("<Q", image, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", image, 0x3A)
    names_offset = _section_header(image, table + names_index * entry_size)[1]
    names = set()
    for index in range(count):
        name_start = names_offset + _section_header(image, table + index * entry_size)[0]
        names.add(image[name_start : image.index(b"\0", name_start)].decode())
    return names


def _section_header(image: bytes, at: int) -> tuple[int, int]:
    """(name offset, file offset) of the ELF64 section header at byte ``at``."""
    (name,) = struct.unpack_from("<I", image, at)
    (offset,) = struct.unpack_from("<Q", image, at + 0x18)
    return name, offset


def extension_build() -> str:
    """``debug`` or ``release``, from whether jobpool._native carries DWARF debug info (cargo's dev
    profile keeps it, the release profile strips it), or ``unknown``."""
    path = Path(_native.__file__ or "")
    try:
        sections = elf_section_names(path.read_bytes())
    except (OSError, ValueError, struct.error):
        return "unknown"
    return "debug" if ".debug_info" in sections else "release"


def environment(admin: redis.Redis) -> dict[str, Any]:
    return {
        "nproc": cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": admin.info("server")["redis_version"],
        "redis_py": redis.__version__,
        "load_average_before": load_average(),
        "extension_build": extension_build(),
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


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def display_name(command: str) -> str:
    return command.replace("|", " ").upper()


def breakdown(counts: Counter[str], jobs: int = 1) -> str:
    """``EVALSHA 1, HSET 2`` (counts / jobs), most frequent first; ``-`` when empty."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{display_name(name)} {number(count / jobs)}" for name, count in ordered) or "-"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def cost_rows(
    costs: dict[str, CostReport], pick: Callable[[CostReport], Cost], per_job: bool
) -> list[list[str]]:
    """Rows of round trips and commands for one kind of batch, a column per library."""
    picked = [pick(costs[library.name]) for library in LIBRARIES]

    def row(label: str, value: Callable[[Cost], str]) -> list[str]:
        return [label, *(value(cost) for cost in picked)]

    def scaled(count: int, cost: Cost) -> str:
        return number(cost.per_job(count) if per_job else count)

    def jobs(cost: Cost) -> int:
        return cost.jobs if per_job else 1

    return [
        row("round trips", lambda cost: scaled(cost.round_trips, cost)),
        row("commands the client sent", lambda cost: scaled(cost.sent_total, cost)),
        row("commands Redis executed, incl. inside scripts", lambda cost: scaled(cost.executed_total, cost)),
        row("sent, by command", lambda cost: breakdown(cost.sent, jobs(cost))),
        row("run inside scripts, by command", lambda cost: breakdown(cost.inside_scripts, jobs(cost))),
    ]


def spread_cell(spread: Spread) -> str:
    """``median (min-max)``, in whole jobs per second."""
    median, low, high = (
        number(round(rate)) for rate in (spread.median, min(spread.rates), max(spread.rates))
    )
    return f"{median} ({low}{EN_DASH}{high})"


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


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


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


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
