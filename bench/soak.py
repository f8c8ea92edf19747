"""Idle soak: whether an idle pool's memory stays flat over a long run (an hour for the full run).

A jobpool pool of ``POOL_SIZE`` (not burst, nothing to do) runs against a private redis-server for
``--seconds``; every ``--interval`` seconds the RSS and USS (psutil's ``memory_full_info``) of its
supervisor and of each worker are read, with the anonymous part of the RSS (``rss - shared``: the
heap and the stacks, where a leak shows). For each process the report gives the figures at the start
and at the end of the measured span, and the slope of the least-squares line through its samples, in
KB per hour. The first ``WARMUP_SECONDS`` (at most a fifth of the run) are left out: a pool that has
just started still touches pages it forked with, which makes its USS climb for a while (copy on
write) without any leak.

It is not part of ``make bench`` (which must stay under 15 minutes); ``make soak`` runs it for an
hour, at low priority, on whatever build of the extension is installed (the report names it):

    python -m bench.soak [--seconds 3600] [--interval 5] [--out bench/results]

A run of an hour or more writes ``bench/results/<date>-soak.{json,md}``; a shorter one
``<date>-soak-short.*`` (ignored by git). The suite's ``Context`` and ``Section`` shapes are those of
the other sections, so ``run(context)`` fits the suite should a short soak ever join it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from bench.machine_info import environment, extension_build, load_average, source_revision
from bench.pools import JOBPOOL, VERSIONS, RunningPool
from bench.reporting import progress, table, verdict
from bench.suite_types import PROFILES, Context, Profile, Target, figures_document, private_context

BENCH_DIR = Path(__file__).resolve().parent

POOL_SIZE = 2
SOAK_SECONDS = {"full": 3600.0, "quick": 60.0, "tiny": 5.0}
"""How long the soak runs by profile (``--seconds`` overrides it)."""
INTERVAL_SECONDS = 5.0
WARMUP_SECONDS = 300.0
"""Samples before this (or before a fifth of the run, if that is sooner) are not measured."""
FLAT_KB_PER_HOUR = 100.0
"""The target: the idle supervisor's RSS and anonymous memory grow by less than this an hour, a
small fraction of the 1.3 MB an hour a leak once cost it (a page of 4 KB a few times an hour is
noise)."""
PUBLISHED_SECONDS = 3600.0
RESULTS_DIR = BENCH_DIR / "results"
KB = 1024
FIELDS = ("rss", "uss", "anon")


class Sample(NamedTuple):
    """One reading of one process, ``seconds`` after the pool was ready (a list in the JSON)."""

    seconds: float
    rss: int
    uss: int
    anon: int


def read(process: psutil.Process, seconds: float) -> Sample:
    full = process.memory_full_info()
    return Sample(seconds, full.rss, full.uss, full.rss - full.shared)


def slope_per_hour(samples: Sequence[Sample], field: str) -> float:
    """The least-squares slope of ``field`` over time, in bytes per hour (0 for fewer than 2)."""
    if len(samples) < 2:
        return 0.0
    xs = [sample.seconds for sample in samples]
    ys = [float(getattr(sample, field)) for sample in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 3600


@dataclass(frozen=True)
class Trend:
    """One memory figure of a process over the measured samples."""

    start_bytes: int
    end_bytes: int
    slope_bytes_per_hour: float


@dataclass(frozen=True)
class ProcessSoak:
    """One process's samples and their trends; made by ``ProcessSoak.of``."""

    role: str
    """``supervisor`` or ``worker N``."""
    pid: int
    rss: Trend
    uss: Trend
    anon: Trend
    measured_from_seconds: float
    measured_to_seconds: float
    samples: tuple[Sample, ...]

    @classmethod
    def of(cls, role: str, pid: int, samples: tuple[Sample, ...], warmup_seconds: float) -> ProcessSoak:
        """Measured over the samples after the warm-up (all of them when it left fewer than two)."""
        kept = tuple(sample for sample in samples if sample.seconds >= warmup_seconds)
        measured = kept if len(kept) >= 2 else samples
        rss, uss, anon = (
            Trend(getattr(measured[0], field), getattr(measured[-1], field), slope_per_hour(measured, field))
            for field in FIELDS
        )
        return cls(role, pid, rss, uss, anon, measured[0].seconds, measured[-1].seconds, samples)

    def trend(self, field: str) -> Trend:
        return {"rss": self.rss, "uss": self.uss, "anon": self.anon}[field]


@dataclass(frozen=True)
class Soak:
    name = "soak"
    seconds: float
    interval_seconds: float
    workers: int
    processes: tuple[ProcessSoak, ...]

    @property
    def supervisor(self) -> ProcessSoak:
        return next(each for each in self.processes if each.role == "supervisor")

    def markdown(self) -> list[str]:
        rows = []
        for each in self.processes:
            for field in FIELDS:
                trend = each.trend(field)
                start, end = trend.start_bytes / KB, trend.end_bytes / KB
                rows.append(
                    [
                        f"{each.role}: {field.upper() if field != 'anon' else 'anonymous'}",
                        f"{start:,.0f}",
                        f"{end:,.0f}",
                        f"{end - start:+,.0f}",
                        f"{trend.slope_bytes_per_hour / KB:+,.1f}",
                    ]
                )
        supervisor = self.supervisor
        return [
            "## Idle soak",
            "",
            f"A jobpool pool of {POOL_SIZE} with nothing to do, {self.seconds:,.0f} s; RSS, USS and the "
            f"anonymous RSS (rss - shared) of each process every {self.interval_seconds:g} s. Start and end "
            f"are the first and last samples after the warm-up ({supervisor.measured_from_seconds:,.0f} s "
            f"to {supervisor.measured_to_seconds:,.0f} s), KB; the slope is the least-squares line through "
            "those samples, KB per hour.",
            "",
            *table(["process", "start KB", "end KB", "change KB", "slope KB/h"], rows),
        ]

    def targets(self) -> dict[str, Target]:
        supervisor = self.supervisor
        worst = max(supervisor.rss.slope_bytes_per_hour, supervisor.anon.slope_bytes_per_hour)
        return {
            "idle_supervisor_memory_flat": Target(
                f"an idle supervisor's RSS and anonymous memory grow < {FLAT_KB_PER_HOUR:.0f} KB an hour",
                f"{worst / KB:+.1f} KB an hour",
                worst < FLAT_KB_PER_HOUR * KB,
            )
        }


def pool_processes(pool: RunningPool) -> list[tuple[str, psutil.Process]]:
    """The supervisor and its workers (by their order of birth), as the soak names them."""
    supervisor = psutil.Process(pool.process.pid)
    workers = sorted(supervisor.children(), key=lambda child: child.create_time())
    return [("supervisor", supervisor)] + [(f"worker {n}", w) for n, w in enumerate(workers, 1)]


def run(context: Context, seconds: float | None = None, interval: float = INTERVAL_SECONDS) -> Soak:
    """Runs an idle pool for ``seconds`` (by default the profile's) and samples its memory."""
    seconds = SOAK_SECONDS[context.profile.name] if seconds is None else seconds
    warmup = min(WARMUP_SECONDS, seconds / 5)
    context.admin.flushdb()
    with RunningPool(JOBPOOL, context.url, POOL_SIZE, context.log_dir) as pool:
        pool.wait_until_ready(context.admin)
        processes = pool_processes(pool)
        samples: dict[int, list[Sample]] = {process.pid: [] for _, process in processes}
        began = time.monotonic()
        next_report = began + 300
        while True:
            elapsed = time.monotonic() - began
            pool.check_alive()
            for _, process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    samples[process.pid].append(read(process, elapsed))
            if time.monotonic() >= next_report:
                next_report += 300
                supervisor = samples[processes[0][1].pid][-1]
                progress(
                    f"soak: {elapsed:,.0f}/{seconds:,.0f} s, supervisor RSS {supervisor.rss / KB:,.0f} KB, "
                    f"USS {supervisor.uss / KB:,.0f} KB"
                )
            if elapsed >= seconds:
                break
            time.sleep(min(interval, max(seconds - elapsed, 0.0)))
    context.admin.flushdb()
    return Soak(
        seconds,
        interval,
        POOL_SIZE,
        tuple(
            ProcessSoak.of(role, process.pid, tuple(samples[process.pid]), warmup)
            for role, process in processes
            if samples[process.pid]
        ),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description="An idle jobpool pool's memory over a long run."
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--seconds", type=float, help="how long (default: the profile's; full: 3600)")
    parser.add_argument("--interval", type=float, default=INTERVAL_SECONDS, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON and markdown go")
    return parser.parse_args(argv)


def report(soak: Soak, env: dict[str, Any], started: datetime) -> str:
    build = env["extension_build"]
    lines = [
        f"# jobpool {VERSIONS['jobpool']}: idle soak, {started:%Y-%m-%d}",
        "",
        f"{env['nproc']} CPUs ({env['cpu_model']}), {env['platform']}; Python {env['python']}, "
        f"redis-server {env['redis_server']}, redis-py {env['redis_py']}; load average before "
        f"{env['load_average_before']}, after {env['load_average_after']}. jobpool's extension: "
        f"**{build} build**; commit {env['source']['commit'][:12]}. {env['total_seconds']:,.0f} s in all.",
        "",
        "## Targets",
        "",
        *table(
            ["target", "measured", ""],
            [[t.goal, t.measured, f"**{verdict(t.met)}**"] for t in soak.targets().values()],
            text_columns=3,
        ),
        "",
        *soak.markdown(),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    profile: Profile = PROFILES[options.profile]
    seconds = options.seconds if options.seconds is not None else SOAK_SECONDS[profile.name]
    env: dict[str, Any] = {"source": source_revision(), "extension_build": extension_build()}
    started, began = datetime.now(timezone.utc), time.monotonic()
    with private_context(profile, "jobpool-soak-") as context:
        env.update(environment(context.admin))
        progress(f"soak: {seconds:,.0f} s on a {env['extension_build']} build, redis at {context.url}")
        soak = run(context, seconds, options.interval)
    env.update(load_average_after=load_average(), total_seconds=round(time.monotonic() - began, 1))
    stem = f"{started:%Y-%m-%d}-soak" + ("" if seconds >= PUBLISHED_SECONDS else "-short")
    options.out.mkdir(parents=True, exist_ok=True)
    markdown = report(soak, env, started)
    document = {
        "started_utc": started.isoformat(),
        "environment": env,
        "versions": VERSIONS,
        **figures_document({"soak": soak}),
    }
    (options.out / f"{stem}.md").write_text(markdown)
    (options.out / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(markdown)
    progress(f"figures: {options.out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
