"""Memory: RSS, PSS and USS (psutil's ``memory_full_info``) of every process of a running pool of 2
(not burst) after it has run ``Profile.memory_jobs`` no-op jobs: jobpool's supervisor and workers
against RQ's worker-pool process and SimpleWorkers. One pool per run; the figure of a role (the
supervisor, a worker) is the median over runs and, within a run, over the workers.

PSS shares each page among the processes that map it, so it is the fair figure for forked workers
that share their parent's pages; RSS counts every shared page in full in every process.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import psutil
import redis

from bench.pools import (
    DRAIN_DEADLINE_SECONDS,
    JOBPOOL,
    POOL_KINDS,
    RQ_SIMPLE,
    PoolKind,
    RunningPool,
    finished_jobs,
)
from bench.reporting import EN_DASH, Spread, decimal_cell, progress, table
from bench.suite_types import Context, Target
from bench.workload import noop
from jobpool import keys

POOL_SIZE = 2
MEMORY_POOLS = (JOBPOOL, RQ_SIMPLE)
MIB = 2**20


@dataclass(frozen=True)
class ProcessMemory:
    role: str
    """``pool process`` (jobpool's supervisor, RQ's worker-pool process), ``worker``, or ``other``
    (RQ's scheduler, a worker's child)."""
    pid: int
    rss_bytes: int
    pss_bytes: int
    uss_bytes: int


def role_of(depth: int) -> str:
    return {0: "pool process", 1: "worker"}.get(depth, "other")


def memory_snapshot(pool: RunningPool) -> list[ProcessMemory]:
    snapshot = []
    for process, depth in pool.processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            info = process.memory_full_info()
            snapshot.append(ProcessMemory(role_of(depth), process.pid, info.rss, info.pss, info.uss))
    return snapshot


def wait_for_finished(admin: redis.Redis, kind: PoolKind, pool: RunningPool, jobs: int) -> None:
    registry = keys.registry("finished", kind.queue_name)
    deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
    while admin.zcard(registry) < jobs:
        pool.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{kind.label} pool: {jobs} jobs not finished in {DRAIN_DEADLINE_SECONDS:.0f} s"
            )
        time.sleep(0.05)


def measure_once(context: Context, kind: PoolKind) -> tuple[ProcessMemory, ...]:
    admin = context.admin
    admin.flushdb()
    jobs = context.profile.memory_jobs
    with RunningPool(kind, context.url, POOL_SIZE, context.log_dir) as pool:
        pool.wait_until_ready(admin)
        job_ids = kind.enqueue(admin, jobs, noop)
        wait_for_finished(admin, kind, pool, jobs)
        snapshot = memory_snapshot(pool)
    finished_jobs(admin, job_ids)
    return tuple(snapshot)


@dataclass(frozen=True)
class PoolMemory:
    pool: str
    """The pool kind's name."""
    workers: int
    runs: tuple[tuple[ProcessMemory, ...], ...]
    """Each run's snapshot of the pool's processes."""

    @property
    def kind(self) -> PoolKind:
        return POOL_KINDS[self.pool]

    def spread(self, role: str, field: str) -> Spread | None:
        """Per run, the median over that run's processes of the role; a run without one is left out
        (None: no run had one)."""
        medians = []
        for snapshot in self.runs:
            values = sorted(getattr(each, field) for each in snapshot if each.role == role)
            if values:
                medians.append(values[len(values) // 2] / MIB)
        return Spread.of(medians) if medians else None

    def whole_pool(self, field: str) -> Spread:
        return Spread.of(sum(getattr(each, field) for each in snapshot) / MIB for snapshot in self.runs)


@dataclass(frozen=True)
class Memory:
    name = "memory"
    jobs: int
    pools: tuple[PoolMemory, ...]

    def markdown(self) -> list[str]:
        rows = []
        for pool in self.pools:
            for role in ("pool process", "worker"):
                rows.append(
                    [
                        f"{pool.kind.label}: {role}",
                        *(
                            decimal_cell(pool.spread(role, f))
                            for f in ("rss_bytes", "pss_bytes", "uss_bytes")
                        ),
                    ]
                )
            rows.append(
                [
                    f"{pool.kind.label}: every process",
                    *(
                        decimal_cell(pool.whole_pool(field))
                        for field in ("rss_bytes", "pss_bytes", "uss_bytes")
                    ),
                ]
            )
        return [
            "## Memory",
            "",
            f"A pool of {POOL_SIZE} (not burst) after {self.jobs:,} no-op jobs, MiB (median of the runs, "
            f"min{EN_DASH}max). PSS shares each page among the processes mapping it: the fair figure "
            "for forked workers.",
            "",
            *table(["process", "RSS", "PSS", "USS"], rows),
        ]

    def targets(self) -> dict[str, Target]:
        return {}


def run(context: Context) -> Memory:
    snapshots: dict[str, list[tuple[ProcessMemory, ...]]] = {kind.name: [] for kind in MEMORY_POOLS}
    for index in range(context.profile.runs):
        for kind in MEMORY_POOLS:
            snapshot = measure_once(context, kind)
            workers = ", ".join(f"{each.pss_bytes / MIB:.1f}" for each in snapshot if each.role == "worker")
            progress(f"memory {index + 1}/{context.profile.runs}: {kind.label}: worker PSS {workers} MiB")
            snapshots[kind.name].append(snapshot)
    context.admin.flushdb()
    pools = tuple(PoolMemory(kind.name, POOL_SIZE, tuple(snapshots[kind.name])) for kind in MEMORY_POOLS)
    return Memory(context.profile.memory_jobs, pools)
