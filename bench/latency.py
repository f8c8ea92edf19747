"""Pickup latency: how long a job waits for a worker of an idle-ish pool, at a steady light load.

A pool of 2 (not burst) is started once per pool kind and warmed up (a few jobs run and waited for,
so first connections and imports do not count). Then, for each of ``Profile.runs`` runs, one client
thread enqueues no-op jobs at ``Profile.latency_rate`` per second for ``Profile.latency_seconds``
with the pool's own library, on a deadline schedule (job i is due at start + i / rate, so a late
enqueue does not delay the ones after it), and records the wall clock (``time.time()``) right after
each ``enqueue`` returned. Once every job has finished, the latency of a job is its own
``started_at`` (written by the worker that took it) minus that moment; the job's ``enqueued_at``
(stamped by the client just before it sends the job) to ``started_at`` is recorded too. Both are the
machine's one clock, yet a latency can be negative: Redis has the job, and a worker may start it,
before the client's ``enqueue`` call has returned (more so with few CPUs, where the client may wait
for one). Such figures are reported as they are.

Where the time goes differs: jobpool's idle workers make no Redis calls, its supervisor waits on a
wake-up list for the whole pool and nudges one idle worker, which then takes the job (two hops);
RQ's workers each wait in BLPOP on the queue itself (one hop), and its default worker then forks a
work horse, which marks the job started. What ``started_at`` marks differs a little too: jobpool's
worker writes it as it takes the job (in the same script), and its function starts a little later
(about a millisecond, on a 2-CPU machine, by the results' ``execution_started_at``); RQ's worker
(or horse) writes it just before it runs the function.

RQ's default worker (a fork per job) drains only about 100 no-op jobs per second in a pool of 2, so
it gets a lower rate (FORK_RATE) to keep its load light, and only profiles with
``latency_of_fork_pool`` measure it (it would not fit the quick profile's time).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from bench.pools import FETCH_CHUNK, JOBPOOL, POOL_KINDS, RQ_FORK, RQ_SIMPLE, PoolKind, RunningPool
from bench.reporting import EN_DASH, Spread, decimal_cell, number, progress, table
from bench.suite_types import Context, Profile, Target
from bench.workload import noop
from jobpool.job import Job, JobStatus

POOL_SIZE = 2
FORK_RATE = 20.0
"""Jobs per second for RQ's default worker (at most the profile's rate): about a fifth of what a
pool of 2 of them drains (at 200 jobs/s, RQ's SimpleWorker pool runs at about half its drain rate,
jobpool's at a twentieth)."""
WARM_UP_JOBS = 10
"""Jobs run (at the run's rate) and waited for before the measured runs, once per pool."""
FINISH_DEADLINE_SECONDS = 60.0
"""How long after its last enqueue a run waits for its jobs to finish before it fails."""
POLL_SECONDS = 0.05
P99_TARGET_MS = 5.0
"""Target: jobpool's p99 pickup latency (the median over runs) is under this, at light load."""


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values``, linearly interpolated between the two nearest
    ranks (as numpy's default); with few values, p99 is close to the maximum."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """Percentiles and more of one run's latencies, in ms; made by ``Summary.of``."""

    p50: float
    p90: float
    p99: float
    max: float
    min: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        listed = list(values)
        return cls(
            percentile(listed, 0.50),
            percentile(listed, 0.90),
            percentile(listed, 0.99),
            max(listed),
            min(listed),
            statistics.fmean(listed),
        )


STATISTICS = ("p50", "p99", "max")
"""The statistics of a run whose spread over the runs is reported."""


@dataclass(frozen=True)
class LatencyRun:
    """One run of steady load; made by ``LatencyRun.of``."""

    jobs: int
    rate_per_second: float
    pickup_ms: Summary
    """From ``enqueue`` returning in the client to the job's ``started_at``."""
    enqueued_at_to_started_at_ms: Summary
    """From the job's ``enqueued_at`` to its ``started_at`` (both written in Redis's job hash)."""
    negative_pickups: int
    client_max_behind_schedule_ms: float
    """The most an enqueue was late against its schedule (the client kept pace if this is small)."""

    @classmethod
    def of(
        cls, rate: float, pickup_ms: Sequence[float], queued_ms: Sequence[float], client_behind_ms: float
    ) -> LatencyRun:
        """From the jobs' latencies in ms (``queued_ms``: from their ``enqueued_at``), in enqueue order."""
        return cls(
            len(pickup_ms),
            rate,
            Summary.of(pickup_ms),
            Summary.of(queued_ms),
            sum(1 for value in pickup_ms if value < 0),
            client_behind_ms,
        )

    def statistic(self, name: str, from_enqueued_at: bool = False) -> float:
        summary = self.enqueued_at_to_started_at_ms if from_enqueued_at else self.pickup_ms
        return float(getattr(summary, name))


@dataclass(frozen=True)
class Spreads:
    """The spread over runs of p50, p99 and max (``STATISTICS``), in ms."""

    p50: Spread
    p99: Spread
    max: Spread

    @classmethod
    def of(cls, runs: Sequence[LatencyRun], from_enqueued_at: bool) -> Spreads:
        spreads = (Spread.of(run.statistic(name, from_enqueued_at) for run in runs) for name in STATISTICS)
        return cls(*spreads)


@dataclass(frozen=True)
class PoolLatency:
    """Made by ``PoolLatency.of``."""

    pool: str
    """The pool kind's name."""
    workers: int
    rate_per_second: float
    seconds_per_run: float
    ready_seconds: float
    pickup_ms: Spreads
    enqueued_at_to_started_at_ms: Spreads
    runs: tuple[LatencyRun, ...]

    @classmethod
    def of(
        cls, kind: PoolKind, rate: float, seconds: float, ready_seconds: float, runs: tuple[LatencyRun, ...]
    ) -> PoolLatency:
        return cls(
            kind.name,
            POOL_SIZE,
            rate,
            seconds,
            ready_seconds,
            Spreads.of(runs, from_enqueued_at=False),
            Spreads.of(runs, from_enqueued_at=True),
            runs,
        )

    @property
    def kind(self) -> PoolKind:
        return POOL_KINDS[self.pool]


@dataclass(frozen=True)
class Latency:
    name = "latency"
    workers: int
    runs: int
    seconds_per_run: float
    pools: tuple[PoolLatency, ...]

    def markdown(self) -> list[str]:
        rates = ", ".join(f"{pool.kind.label} {number(pool.rate_per_second)}" for pool in self.pools)
        rows = [
            [
                pool.kind.label,
                number(pool.rate_per_second),
                *(decimal_cell(getattr(pool.pickup_ms, name), 2) for name in STATISTICS),
                decimal_cell(pool.enqueued_at_to_started_at_ms.p99, 2),
            ]
            for pool in self.pools
        ]
        return [
            "## Pickup latency",
            "",
            f"A pool of {POOL_SIZE} (not burst, warmed up) under a steady light load: one client enqueues "
            f"no-op jobs at a fixed rate ({rates} jobs/s) for {number(self.seconds_per_run)} s, "
            f"{self.runs} run(s); "
            "a job's latency is from `enqueue` returning to the job's own `started_at`. Per run p50, "
            f"p99 and max, in ms: the median of the runs (min{EN_DASH}max). The last column counts from "
            "the job's `enqueued_at` instead (stamped by the client just before it sends the job), so "
            "the enqueue's round trip counts too.",
            "",
            *table(["pool", "jobs/s", "p50 ms", "p99 ms", "max ms", "p99 ms from `enqueued_at`"], rows),
            *self.negative_note(),
        ]

    def negative_note(self) -> list[str]:
        counts = [(pool.kind.label, sum(run.negative_pickups for run in pool.runs)) for pool in self.pools]
        named = ", ".join(f"{label} {count:,} of {self.jobs_of(label):,}" for label, count in counts if count)
        if not named:
            return []
        return [
            "",
            f"Negative latencies ({named} jobs): the job started before `enqueue` returned in the "
            "client (Redis had it; the client was still finishing the call).",
        ]

    def jobs_of(self, label: str) -> int:
        return sum(run.jobs for pool in self.pools if pool.kind.label == label for run in pool.runs)

    def targets(self) -> dict[str, Target]:
        pool = next((pool for pool in self.pools if pool.pool == JOBPOOL.name), None)
        if pool is None:
            return {}
        p99 = pool.pickup_ms.p99.median
        return {
            "pickup_p99_under_5_ms": Target(
                goal=f"jobpool's p99 pickup latency (median of the runs) < {number(P99_TARGET_MS)} ms "
                f"at {number(pool.rate_per_second)} jobs/s on a pool of {POOL_SIZE}",
                measured=f"{p99:.2f} ms",
                met=p99 < P99_TARGET_MS,
            )
        }


def enqueue_paced(
    kind: PoolKind, connection: redis.Redis, rate: float, jobs: int
) -> tuple[list[str], list[float], float]:
    """Enqueues ``jobs`` no-op jobs, job i at start + i / rate; returns their ids, the wall clock
    right after each ``enqueue`` returned, and the most an enqueue was behind schedule (seconds)."""
    queue = kind.queue_class(kind.queue_name, connection=connection)
    ids: list[str] = []
    returned: list[float] = []
    behind = 0.0
    start = time.perf_counter()
    for index in range(jobs):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            behind = max(behind, -delay)
        job = queue.enqueue(noop)
        returned.append(time.time())
        ids.append(job.id)
    return ids, returned, behind


def wait_until_finished(admin: redis.Redis, pool: RunningPool, job_ids: list[str]) -> list[Job]:
    """Polls until every job has finished (reading only those not finished yet); returns them, in
    the order of ``job_ids``. Raises if one fails, or if they are not done in time."""
    done: dict[str, Job] = {}
    waiting = list(job_ids)
    deadline = time.monotonic() + FINISH_DEADLINE_SECONDS
    while waiting:
        pool.check_alive()
        still: list[str] = []
        for start in range(0, len(waiting), FETCH_CHUNK):
            chunk = waiting[start : start + FETCH_CHUNK]
            for job_id, job in zip(chunk, Job.fetch_many(chunk, admin), strict=True):
                status = job.get_status(refresh=False) if job is not None else None
                if job is not None and status == JobStatus.FINISHED:
                    done[job_id] = job
                elif status == JobStatus.FAILED or job is None:
                    raise RuntimeError(f"{pool.kind.label}: job {job_id} is {status or 'gone'}")
                else:
                    still.append(job_id)
        waiting = still
        if waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{pool.kind.label}: {len(waiting)} of {len(job_ids)} jobs not finished "
                    f"{FINISH_DEADLINE_SECONDS:.0f} s after the last enqueue"
                )
            time.sleep(POLL_SECONDS)
    return [done[job_id] for job_id in job_ids]


def measure_run(
    kind: PoolKind, client: redis.Redis, admin: redis.Redis, pool: RunningPool, rate: float, seconds: float
) -> LatencyRun:
    jobs = max(1, round(rate * seconds))
    ids, returned, behind = enqueue_paced(kind, client, rate, jobs)
    finished = wait_until_finished(admin, pool, ids)
    pickup, queued = [], []
    for job, returned_at in zip(finished, returned, strict=True):
        if job.started_at is None or job.enqueued_at is None:
            raise RuntimeError(f"{kind.label}: finished job {job.id} has no started_at or enqueued_at")
        started = job.started_at.timestamp()
        pickup.append((started - returned_at) * 1000)
        queued.append((started - job.enqueued_at.timestamp()) * 1000)
    return LatencyRun.of(rate, pickup, queued, behind * 1000)


def rate_of(kind: PoolKind, profile: Profile) -> float:
    return min(profile.latency_rate, FORK_RATE) if kind is RQ_FORK else profile.latency_rate


def measure_pool(context: Context, kind: PoolKind) -> PoolLatency:
    """One pool, started once, warmed up, then ``Profile.runs`` runs. Redis is flushed before the
    pool starts, not between runs (that would remove the running workers' registrations); a run's
    jobs have all finished before the next starts."""
    profile, admin = context.profile, context.admin
    rate = rate_of(kind, profile)
    admin.flushdb()
    client = redis.Redis.from_url(context.url)
    try:
        with RunningPool(kind, context.url, POOL_SIZE, context.log_dir) as pool:
            ready = pool.wait_until_ready(admin)
            ids, _, _ = enqueue_paced(kind, client, rate, WARM_UP_JOBS)
            wait_until_finished(admin, pool, ids)
            runs = []
            for index in range(profile.runs):
                run = measure_run(kind, client, admin, pool, rate, profile.latency_seconds)
                figures = ", ".join(f"{name} {run.statistic(name):.2f}" for name in STATISTICS)
                progress(
                    f"latency {index + 1}/{profile.runs}: {kind.label}: {run.jobs} jobs at "
                    f"{number(rate)}/s: {figures} ms"
                )
                runs.append(run)
    finally:
        client.close()
    return PoolLatency.of(kind, rate, profile.latency_seconds, ready, tuple(runs))


def run(context: Context) -> Latency:
    kinds = (JOBPOOL, RQ_SIMPLE, *((RQ_FORK,) if context.profile.latency_of_fork_pool else ()))
    pools = tuple(measure_pool(context, kind) for kind in kinds)
    context.admin.flushdb()
    return Latency(POOL_SIZE, context.profile.runs, context.profile.latency_seconds, pools)
