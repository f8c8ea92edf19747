"""The benchmark suite: jobpool against RQ 3.0 (and Dramatiq in the drain section), side by side, in
one run on one private redis-server.

    python -m bench [--profile full|quick|tiny] [--out DIR] [--plot PATH] [--only SECTION,...]

``make bench`` runs the full profile on a release build (under 15 minutes on 2 CPUs) and writes
``bench/results/<date>.json``, ``bench/results/<date>.md`` and the plot ``docs/img/drain-throughput.png``;
``make bench-quick`` runs a small version (under a minute) into ``bench/results/<date>-quick.*``. The
test suite runs the tiny profile once, so the harness never rots.

The sections run one after another (each one's module says what it measures and how): enqueue,
cost per job, drain throughput, pickup latency, recovery, idle cost, memory. Every figure is the
median of the profile's runs, with the min-max spread; comparisons are ratios within this run (the
machine is shared and noisy: absolute figures drift, ratios much less).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import cost, drain, enqueue, idle, latency, memory, recovery
from bench.dramatiq_pool import VERSION as DRAMATIQ_VERSION
from bench.machine_info import (
    environment,
    extension_build,
    extension_fingerprint,
    load_average,
    source_revision,
)
from bench.plot import draw_drain
from bench.pools import VERSIONS
from bench.reporting import progress, table, verdict
from bench.suite_types import PROFILES, Context, Profile, Section, figures_document, private_context

BENCH_DIR = Path(__file__).resolve().parent

SECTIONS: dict[str, Callable[[Context], Section]] = {
    "enqueue": enqueue.run,
    "cost_per_job": cost.run,
    "drain": drain.run,
    "latency": latency.run,
    "recovery": recovery.run,
    "idle": idle.run,
    "memory": memory.run,
}
VERSIONS = {**VERSIONS, "dramatiq": DRAMATIQ_VERSION}
RESULTS_DIR = BENCH_DIR / "results"
PUBLISHED_PLOT = BENCH_DIR.parent / "docs" / "img" / "drain-throughput.png"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="jobpool against RQ, side by side, in one run."
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON and markdown go")
    parser.add_argument("--plot", type=Path, help="the PNG (full: docs/img/drain-throughput.png)")
    parser.add_argument("--only", help=f"comma-separated sections, of: {', '.join(SECTIONS)}")
    parser.add_argument(
        "--allow-debug", action="store_true", help="run the full profile on a debug build (not publishable)"
    )
    return parser.parse_args(argv)


def chosen_sections(only: str | None) -> list[str]:
    if not only:
        return list(SECTIONS)
    names = [name.strip() for name in only.split(",")]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return names


def run_sections(profile: Profile, names: list[str], env: dict[str, Any]) -> dict[str, Section]:
    """Starts the private redis-server and runs the sections on it, one after another."""
    sections: dict[str, Section] = {}
    with private_context(profile, "jobpool-bench-") as context:
        env.update(environment(context.admin))
        progress(f"private redis-server at {context.url}; jobpool extension: {env['extension_build']} build")
        for name in names:
            began = time.monotonic()
            sections[name] = SECTIONS[name](context)
            env.setdefault("section_seconds", {})[name] = round(time.monotonic() - began, 1)
            progress(f"{name}: done in {env['section_seconds'][name]:.0f} s")
    return sections


def header_lines(profile: Profile, env: dict[str, Any], started: datetime) -> list[str]:
    build = env["extension_build"]
    return [
        f"# jobpool {VERSIONS['jobpool']} against RQ {VERSIONS['rq']} and Dramatiq {VERSIONS['dramatiq']}: "
        f"{started:%Y-%m-%d} "
        f"({profile.name} profile)",
        "",
        f"{env['nproc']} CPUs ({env['cpu_model']}), {env['platform']}; Python {env['python']}, "
        f"redis-server {env['redis_server']}, redis-py {env['redis_py']}; load average before "
        f"{env['load_average_before']}, after {env['load_average_after']}. jobpool's extension: "
        f"**{build} build**{'' if build == 'release' else ' (figures not publishable)'}; commit "
        f"{env['source']['commit'][:12]}. {env['total_seconds']:.0f} s in all.",
    ]


def target_table(sections: dict[str, Section]) -> list[str]:
    rows = [
        [target.goal, target.measured, f"**{verdict(target.met)}**"]
        for section in sections.values()
        for target in section.targets().values()
    ]
    return ["## Targets", "", *table(["target", "measured", ""], rows, text_columns=3)] if rows else []


def report(profile: Profile, sections: dict[str, Section], env: dict[str, Any], started: datetime) -> str:
    lines = [*header_lines(profile, env, started), "", *target_table(sections)]
    for section in sections.values():
        lines += ["", *section.markdown()]
    return "\n".join(lines) + "\n"


def figures_json(
    profile: Profile, sections: dict[str, Section], env: dict[str, Any], started: datetime
) -> str:
    document = {
        "started_utc": started.isoformat(),
        "profile": profile.name,
        "profile_settings": vars(profile),
        "environment": env,
        "versions": VERSIONS,
        **figures_document(sections),
    }
    return json.dumps(document, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    profile = PROFILES[options.profile]
    names = chosen_sections(options.only)
    env: dict[str, Any] = {"extension_sha256_before": extension_fingerprint(), "source": source_revision()}
    started, began = datetime.now(timezone.utc), time.monotonic()
    if profile.publishable and extension_build() != "release" and not options.allow_debug:
        raise SystemExit("the full profile needs a release build of the extension: run `make build-release`")
    sections = run_sections(profile, names, env)
    env.update(
        load_average_after=load_average(),
        extension_sha256_after=extension_fingerprint(),
        total_seconds=round(time.monotonic() - began, 1),
    )
    if env["extension_sha256_before"] != env["extension_sha256_after"]:
        progress("warning: jobpool's extension was rebuilt during the run: the figures mix two builds")
    stem = f"{started:%Y-%m-%d}" + ("" if profile.publishable else f"-{profile.name}")
    options.out.mkdir(parents=True, exist_ok=True)
    markdown = report(profile, sections, env, started)
    (options.out / f"{stem}.md").write_text(markdown)
    (options.out / f"{stem}.json").write_text(figures_json(profile, sections, env, started))
    if "drain" in sections:
        plot = options.plot or (PUBLISHED_PLOT if profile.publishable else options.out / f"{stem}.png")
        caption = (
            f"jobpool vs RQ {VERSIONS['rq']} and Dramatiq {VERSIONS['dramatiq']}, drains, "
            f"{env['nproc']} CPUs, {started:%Y-%m-%d}"
        )
        draw_drain(asdict(sections["drain"]), caption, plot)
        progress(f"plot: {plot}")
    print(markdown)
    progress(f"figures: {options.out / stem}.json and .md ({env['total_seconds']:.0f} s in all)")
    return 0
