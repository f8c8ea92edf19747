"""The benchmark's records and the JSON its committed results hold.

Each section of the latest committed full run (``bench/results/<date>.json``) and of the latest
idle soak, rebuilt from that file's raw measurements through the records' own constructors, is
written by ``dataclasses.asdict`` to the very JSON committed: the same keys in the same order (a
renamed or reordered field fails here), the same derived figures (medians, rates per job, ratios),
and the same targets judged. What reads those files still reads them: each rebuilt section renders
its report, and every committed drain section draws.

A deliberate change to the JSON comes with a new committed run."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from bench import soak
from bench.cost import DrainCost, WorkerCost, WorkerCostSection
from bench.drain import Cell, Drain, DrainRun
from bench.enqueue import CostReport, Enqueue, Throughput
from bench.idle import Idle, IdlePool, IdleWindow
from bench.latency import Latency, LatencyRun, PoolLatency, Summary
from bench.memory import Memory, PoolMemory, ProcessMemory
from bench.plot import draw_drain
from bench.pools import POOL_KINDS, CpuSeconds
from bench.recovery import Kill, PoolRecovery, Recovery
from bench.redis_counting import Cost
from bench.reporting import Spread
from bench.suite import SECTIONS
from bench.suite_types import Profile, Section, figures_document

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
LATEST_FULL = max(RESULTS.glob("????-??-??.json"))  # named by date: the last is the latest
LATEST_SOAK = max(RESULTS.glob("????-??-??-soak.json"))
Json = dict[str, Any]


def load(path: Path) -> Json:
    document: Json = json.loads(path.read_text())
    return document


# ---- the records, rebuilt from a results file's raw measurements -------------------------------


def spread(data: Json) -> Spread:
    return Spread.of(data["runs"])


def cost(data: Json) -> Cost:
    return Cost.of(data["jobs"], data["round_trips"], data["sent"], data["executed"])


def drain_cost(data: Json) -> DrainCost:
    return DrainCost.measured(cost(data), data["core_round_trips"], data["redis_py_sent"])


def cpu(data: Json) -> CpuSeconds:
    return CpuSeconds.of(data["pool_process"], data["workers"], data["redis_server"], data["other_processes"])


def drain_run(data: Json) -> DrainRun:
    return DrainRun.of(
        data["jobs"],
        data["wall_seconds"],
        data["steady_jobs_per_second"],
        cpu(data["cpu_seconds"]),
        data["redis_commands"],
        data["redis_script_calls"],
    )


def latency_run(data: Json) -> LatencyRun:
    """Its latencies are not in the file, only their summaries: built as they are."""
    return LatencyRun(
        data["jobs"],
        data["rate_per_second"],
        Summary(**data["pickup_ms"]),
        Summary(**data["enqueued_at_to_started_at_ms"]),
        data["negative_pickups"],
        data["client_max_behind_schedule_ms"],
    )


def profile_of(document: Json) -> Profile:
    settings: Json = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in document["profile_settings"].items()
    }
    return Profile(**settings)


def enqueue(data: Json, document: Json) -> Enqueue:
    costs = {
        name: CostReport(cost(each["warm_up"]), cost(each["single"]), cost(each["many"]))
        for name, each in data["cost"].items()
    }
    throughput = {
        name: Throughput(spread(each["single_jobs_per_second"]), spread(each["many_jobs_per_second"]))
        for name, each in data["throughput"].items()
    }
    return Enqueue.of(data["single_jobs"], data["many_jobs"], costs, throughput)


def cost_per_job(data: Json, document: Json) -> WorkerCostSection:
    workers = {
        name: WorkerCost.of(drain_cost(each["drain_n"]), drain_cost(each["drain_2n"]))
        for name, each in data["workers"].items()
    }
    return WorkerCostSection(data["n"], workers)


def drain(data: Json, document: Json) -> Drain:
    cells = {
        (pool, workload, int(size)): Cell.of([drain_run(run) for run in cell["runs"]])
        for workload, pools in data["figures"].items()
        for pool, sizes in pools.items()
        for size, cell in sizes.items()
    }
    start_ups = {pool: tuple(cpu(run) for run in runs) for pool, runs in data["start_up_cpu_seconds"].items()}
    return Drain.of(profile_of(document), cells, start_ups)


def latency(data: Json, document: Json) -> Latency:
    pools = tuple(
        PoolLatency.of(
            POOL_KINDS[pool["pool"]],
            pool["rate_per_second"],
            pool["seconds_per_run"],
            pool["ready_seconds"],
            tuple(latency_run(run) for run in pool["runs"]),
        )
        for pool in data["pools"]
    )
    return Latency(data["workers"], data["runs"], data["seconds_per_run"], pools)


def recovery(data: Json, document: Json) -> Recovery:
    pools = tuple(
        PoolRecovery.of(
            POOL_KINDS[pool["pool"]], pool["bound_seconds"], tuple(Kill(**kill) for kill in pool["kills"])
        )
        for pool in data["pools"]
    )
    return Recovery(data["workers"], data["job"], pools)


def idle(data: Json, document: Json) -> Idle:
    pools = tuple(
        IdlePool.of(
            POOL_KINDS[pool["pool"]],
            pool["workers"],
            tuple(IdleWindow.of(each["seconds"], each["sent"], each["executed"]) for each in pool["windows"]),
        )
        for pool in data["pools"]
    )
    return Idle(data["window_seconds"], pools)


def memory(data: Json, document: Json) -> Memory:
    pools = tuple(
        PoolMemory(
            pool["pool"],
            pool["workers"],
            tuple(tuple(ProcessMemory(**process) for process in run) for run in pool["runs"]),
        )
        for pool in data["pools"]
    )
    return Memory(data["jobs"], pools)


REBUILD: dict[str, Callable[[Json, Json], Section]] = {
    "enqueue": enqueue,
    "cost_per_job": cost_per_job,
    "drain": drain,
    "latency": latency,
    "recovery": recovery,
    "idle": idle,
    "memory": memory,
}


def rebuilt_sections(document: Json) -> dict[str, Section]:
    return {name: REBUILD[name](data, document) for name, data in document["sections"].items()}


def rebuilt_soak(document: Json) -> soak.Soak:
    data = document["sections"]["soak"]
    warmup = min(soak.WARMUP_SECONDS, data["seconds"] / 5)  # as soak.run takes it
    processes = tuple(
        soak.ProcessSoak.of(
            each["role"], each["pid"], tuple(soak.Sample(*sample) for sample in each["samples"]), warmup
        )
        for each in data["processes"]
    )
    return soak.Soak(data["seconds"], data["interval_seconds"], data["workers"], processes)


# ---- comparing JSON ----------------------------------------------------------------------------


def key_paths(value: Any, path: str = "") -> list[str]:
    """Every key of a JSON value with its path, in the order written (list items by index)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += [f"{path}/{key}", *key_paths(item, f"{path}/{key}")]
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += key_paths(item, f"{path}/{index}")
    return found


def assert_written_as(written: Json, committed: Json) -> None:
    """The same keys in the same order first (the clearer failure), then the same text."""
    assert key_paths(written) == key_paths(committed)
    assert json.dumps(written, indent=2) == json.dumps(committed, indent=2)


# ---- the tests ---------------------------------------------------------------------------------


def test_the_latest_full_run_holds_every_section_of_the_suite() -> None:
    assert list(load(LATEST_FULL)["sections"]) == list(SECTIONS)


@pytest.mark.parametrize("name", list(REBUILD))
def test_a_section_of_the_latest_full_run_is_written_back_as_committed(name: str) -> None:
    document = load(LATEST_FULL)
    section = REBUILD[name](document["sections"][name], document)

    assert_written_as(figures_document({name: section})["sections"][name], document["sections"][name])
    assert section.markdown()[0].startswith("## ")


def test_the_latest_full_run_judges_the_same_targets() -> None:
    document = load(LATEST_FULL)
    judged = figures_document(rebuilt_sections(document))["targets"]

    assert list(judged) == list(document["targets"])
    for name, target in judged.items():
        assert list(target) == list(document["targets"][name]), name
        assert target["met"] == document["targets"][name]["met"], name


def test_the_latest_soak_is_written_back_as_committed() -> None:
    document = load(LATEST_SOAK)
    figures = figures_document({"soak": rebuilt_soak(document)})

    assert_written_as(figures["sections"], document["sections"])
    assert figures["targets"] == document["targets"]


@pytest.mark.parametrize(
    "path",
    [path for path in sorted(RESULTS.glob("*.json")) if "drain" in load(path)["sections"]],
    ids=lambda path: path.name,
)
def test_every_committed_drain_section_still_draws(path: Path, tmp_path: Path) -> None:
    drawn = draw_drain(load(path)["sections"]["drain"], path.stem, tmp_path / "drain.png")
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
