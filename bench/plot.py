"""The suite's picture: drain throughput against pool size, one panel per workload, a line per pool
(jobpool, RQ SimpleWorker, RQ default worker, Dramatiq at the sizes it ran), the median with the
min-max spread as error bars, on a log scale (the pools differ by orders of magnitude)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from bench.drain import DRAIN_POOLS, LABELS

STYLES = {
    "jobpool": ("tab:blue", "o"),
    "jobpool-prefetch-0": ("tab:cyan", "D"),
    "rq-simple": ("tab:orange", "s"),
    "rq-fork": ("tab:gray", "^"),
    "dramatiq": ("tab:green", "v"),
}


def draw_drain(figures: dict[str, Any], caption: str, path: Path) -> Path:
    """Draws the drain section's JSON (``asdict(drain)``, or as read back from a results file) to a
    PNG at ``path``."""
    workloads = figures["workloads"]
    sizes = figures["pool_sizes"]
    figure, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4.2), squeeze=False)
    for axis, workload in zip(axes[0], workloads, strict=True):
        for kind in DRAIN_POOLS:
            cells = figures["figures"][workload].get(kind.name, {})
            measured = [size for size in sizes if str(size) in cells]
            if not measured:
                continue
            spreads = [cells[str(size)]["steady_jobs_per_second"] for size in measured]
            medians = [spread["median"] for spread in spreads]
            below = [spread["median"] - spread["min"] for spread in spreads]
            above = [spread["max"] - spread["median"] for spread in spreads]
            colour, marker = STYLES[kind.name]
            axis.errorbar(
                measured,
                medians,
                yerr=[below, above],
                label=kind.label,
                color=colour,
                marker=marker,
                capsize=3,
            )
        axis.set_title(LABELS[workload])
        axis.set_xlabel("pool size (workers)")
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes, [str(size) for size in sizes])
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("jobs per second")
    axes[0][0].legend(loc="best", fontsize="small")
    figure.suptitle(caption, fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
