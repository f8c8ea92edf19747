"""The benchmark suite, run once at its tiny size so the harness never rots.

It asserts that the suite ran every section and produced figures, never how fast anything was
(speed is for ``make bench``, reported as ratios against RQ)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import soak
from bench.workload import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {"enqueue", "cost_per_job", "drain", "latency", "recovery", "idle", "memory"}


def positive_numbers(value: Any, path: str = "") -> list[tuple[str, float]]:
    """Every number in a JSON document under a key naming a rate, with its path."""
    found: list[tuple[str, float]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += positive_numbers(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += positive_numbers(item, f"{path}/{index}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and "per_second" in path:
        found.append((path, float(value)))
    return found


def test_the_tiny_suite_runs_every_section_and_writes_its_figures(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "tiny", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    [figures_path] = tmp_path.glob("*-tiny.json")
    figures = json.loads(figures_path.read_text())
    assert set(figures["sections"]) == SECTIONS
    assert figures["environment"]["extension_build"] in {"debug", "release"}

    drain = figures["sections"]["drain"]["figures"]
    for workload, pools in drain.items():
        for pool, sizes in pools.items():
            for size, cell in sizes.items():
                assert cell["steady_jobs_per_second"]["median"] > 0, (workload, pool, size)
    assert drain["noop"]["dramatiq"]["2"]["runs"][0]["jobs"] > 0, "Dramatiq did not run"
    assert figures["sections"]["drain"]["ratio_jobpool_over"]["noop"]["dramatiq"]["2"] > 0
    assert isinstance(figures["targets"]["drain_3x_dramatiq"]["met"], bool)
    rates = positive_numbers(figures["sections"]["enqueue"])
    assert rates and all(rate > 0 for _, rate in rates), rates
    assert figures["targets"], "no target was judged"
    assert all(isinstance(target["met"], bool) for target in figures["targets"].values())

    markdown = figures_path.with_suffix(".md").read_text()
    assert "## Targets" in markdown
    assert "jobpool / Dramatiq" in markdown
    assert all(f"## {heading}" in markdown for heading in ("Drain throughput", "Pickup latency", "Memory"))
    assert figures_path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "build" in completed.stdout


def test_every_workload_runs_in_this_process() -> None:
    for function in WORKLOADS.values():
        assert function() is None


def test_every_workload_is_a_dramatiq_actor_that_records_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPOOL_BENCH_DRAMATIQ_ENDS", str(tmp_path))
    from bench import dramatiq_workload

    for name in WORKLOADS:
        actor = getattr(dramatiq_workload, name)
        assert actor.actor_name == name and actor.queue_name == dramatiq_workload.QUEUE
        assert actor() is None  # called directly: runs in this process, no broker involved
    assert dramatiq_workload.ended_count(tmp_path) == len(WORKLOADS)
    assert len(dramatiq_workload.end_times(tmp_path)) == len(WORKLOADS)


def test_a_short_soak_samples_every_process_and_reports_slopes(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--seconds",
            "4",
            "--interval",
            "0.5",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    [figures_path] = tmp_path.glob("*-soak-short.json")
    figures = json.loads(figures_path.read_text())
    processes = figures["sections"]["soak"]["processes"]
    assert [each["role"] for each in processes] == ["supervisor", "worker 1", "worker 2"]
    for each in processes:
        assert len(each["samples"]) >= 4, each["role"]
        for field in ("rss", "uss", "anon"):
            assert each[field]["start_bytes"] > 0 and each[field]["end_bytes"] > 0, (each["role"], field)
            assert isinstance(each[field]["slope_bytes_per_hour"], float)
    assert set(figures["targets"]) == {"idle_supervisor_memory_flat"}
    assert "## Idle soak" in figures_path.with_suffix(".md").read_text()


def test_the_soak_slope_is_the_least_squares_line_per_hour() -> None:
    samples = [soak.Sample(seconds, 1000 + seconds, 0, 2000) for seconds in (0, 10, 20, 30)]
    assert soak.slope_per_hour(samples, "rss") == 3600.0  # one byte a second
    assert soak.slope_per_hour(samples, "anon") == 0.0
    assert soak.slope_per_hour(samples[:1], "rss") == 0.0
