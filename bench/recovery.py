"""Recovery: how long after a busy worker is SIGKILLed its job is settled (recorded as failed, or put
back to be run again), and how soon the pool is whole again.

Each pool of 2 (not burst) is started once; for each kill, once the pool is whole (its workers all
alive and registered), one job ``time.sleep(30)`` is enqueued with the pool's own library, and once
the job is ``started`` the process running it gets SIGKILL: jobpool's worker (its pid is in the
worker hash the job names); RQ's default worker's work horse (the forked child of that worker, in a
process group of its own: RQ's worker waits for it and fails its job when it dies); RQ's
SimpleWorker itself (it runs jobs in its own process). The job's status is then read every
POLL_SECONDS until it is ``failed`` (or ``queued``/``scheduled``, or ``started`` by another
worker), timed from just before the kill: a figure is late by at most a poll and a round trip.

The kill comes within milliseconds of the job's start, while jobpool's supervisor, with an idle
worker in the pool, waits on Redis (BLPOP, up to 0.25 s): SIGCHLD cuts that wait short, and the
supervisor reaps the dead worker and settles its job at once. The killed workers are young, so
jobpool replaces them only after its crash-loop back-off (0.5 s for a worker that died within 5 s
of its start, twice as long each time for the same slot): "whole again" shows that delay.

RQ has nothing watching a dead SimpleWorker's job: its started-registry entry lapses once the job's
heartbeat TTL has (its timeout, 180 s by default, plus 60 s), and a worker's maintenance (every 10
minutes) then fails it. So that pool gets one kill, reported as "not recovered within" the bound
(``Profile.recovery_bound_seconds``, the same for every pool).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import psutil
import redis

from bench.pools import JOBPOOL, POOL_KINDS, RQ_FORK, RQ_SIMPLE, PoolKind, RunningPool
from bench.reporting import EN_DASH, Spread, decimal_cell, progress, table
from bench.suite_types import Context, Target
from jobpool import keys
from jobpool.job import Job, JobStatus

POOL_SIZE = 2
SLEEP_SECONDS = 30
"""The job, ``time.sleep(SLEEP_SECONDS)``: busy for longer than any wait here."""
POLL_SECONDS = 0.005
WHOLE_EVERY_POLLS = 5
"""After a kill, whether the pool is whole again is checked every this many polls."""
START_DEADLINE_SECONDS = 10.0
WHOLE_DEADLINE_SECONDS = 30.0
"""How long a pool may take to be whole again before the next kill (jobpool delays the respawn of
a worker that died within 5 s of its start: 0.5 s, then twice as long each time, for that slot)."""
SETTLED_TARGET_SECONDS = 1.0
"""Target: every jobpool job whose worker was killed is settled within this (its supervisor settles
a dead worker's jobs on the tick it reaps it; it waits on Redis at most 0.25 s between ticks)."""
SETTLED_STATUSES = (JobStatus.FAILED, JobStatus.QUEUED, JobStatus.SCHEDULED)


@dataclass(frozen=True)
class Victim:
    """What a pool kind's kill hits."""

    label: str
    depth: int
    """Its depth in ``RunningPool.processes()``."""
    kills_one: bool
    """One kill only (RQ's SimpleWorker: its job is never settled within the bound)."""


VICTIMS = {
    JOBPOOL.name: Victim("worker", 1, False),
    RQ_FORK.name: Victim("work horse", 2, False),
    RQ_SIMPLE.name: Victim("worker", 1, True),
}
RECOVERY_POOLS = (JOBPOOL, RQ_FORK, RQ_SIMPLE)


@dataclass(frozen=True)
class Kill:
    """One SIGKILL and what followed within the bound."""

    recovered_seconds: float | None
    """From just before the kill to the read that saw the job settled; None: not within the bound."""
    status: str
    """The job's status when it was seen settled, or at the bound."""
    reason: str
    """The first line of the failure the job's latest result records, if any."""
    pool_whole_again_seconds: float | None
    """From the kill until the pool was whole again (a killed worker respawned and registered);
    None for a killed work horse (RQ forks one per job), or when not within the bound."""


@dataclass(frozen=True)
class PoolRecovery:
    """Made by ``PoolRecovery.of``."""

    pool: str
    """The pool kind's name."""
    workers: int
    killed: str
    """What the kills hit (``Victim.label``)."""
    bound_seconds: float
    recovered_seconds: Spread | None
    """Recovery seconds over the kills, when every job was settled within the bound."""
    kills: tuple[Kill, ...]

    @classmethod
    def of(cls, kind: PoolKind, bound_seconds: float, kills: tuple[Kill, ...]) -> PoolRecovery:
        recovered = [kill.recovered_seconds for kill in kills]
        settled = [seconds for seconds in recovered if seconds is not None]
        spread = Spread.of(settled) if settled and len(settled) == len(recovered) else None
        return cls(kind.name, POOL_SIZE, VICTIMS[kind.name].label, bound_seconds, spread, kills)

    @property
    def kind(self) -> PoolKind:
        return POOL_KINDS[self.pool]

    @property
    def victim(self) -> Victim:
        return VICTIMS[self.pool]

    @property
    def all_recovered(self) -> bool:
        return all(kill.recovered_seconds is not None for kill in self.kills)


def milliseconds_cell(seconds: list[float]) -> str:
    return decimal_cell(Spread.of(seconds) if seconds else None, 1, 1000)


def recovered_cell(pool: PoolRecovery) -> str:
    done = [kill.recovered_seconds for kill in pool.kills if kill.recovered_seconds is not None]
    late = len(pool.kills) - len(done)
    if not late:
        return milliseconds_cell(done)
    missed = f"not recovered within {pool.bound_seconds:g} s"
    return f"{milliseconds_cell(done)}; {late} of {len(pool.kills)} {missed}" if done else missed


def replaced_cell(pool: PoolRecovery) -> str:
    if pool.victim.depth != 1:
        return "-"
    done = [kill.pool_whole_again_seconds for kill in pool.kills if kill.pool_whole_again_seconds is not None]
    if len(done) < len(pool.kills):
        return (
            f"not within {pool.bound_seconds:g} s"
            if not done
            else f"{milliseconds_cell(done)} (not every time)"
        )
    return milliseconds_cell(done)


@dataclass(frozen=True)
class Recovery:
    name = "recovery"
    workers: int
    job: str
    pools: tuple[PoolRecovery, ...]

    def markdown(self) -> list[str]:
        rows = [
            [
                pool.kind.label,
                pool.victim.label,
                str(len(pool.kills)),
                recovered_cell(pool),
                ", ".join(sorted({kill.status for kill in pool.kills})),
                replaced_cell(pool),
            ]
            for pool in self.pools
        ]
        return [
            "## Recovery after SIGKILL of a busy worker",
            "",
            f"A pool of {POOL_SIZE} (not burst) runs `time.sleep({SLEEP_SECONDS})`; once the job has "
            "started, the process running it gets SIGKILL, and the job's status is read every "
            f"{POLL_SECONDS * 1000:g} ms until it is failed or requeued: ms from the kill, the median of "
            f"the kills (min{EN_DASH}max); then, once the pool is whole again (the killed worker "
            "replaced and registered), the next kill.",
            "",
            *table(
                [
                    "pool",
                    "killed",
                    "kills",
                    "job settled after, ms",
                    "job status",
                    "pool whole again after, ms",
                ],
                rows,
            ),
        ]

    def targets(self) -> dict[str, Target]:
        pool = next((pool for pool in self.pools if pool.pool == JOBPOOL.name), None)
        if pool is None:
            return {}
        worst = max((kill.recovered_seconds or 0.0 for kill in pool.kills), default=0.0)
        met = pool.all_recovered and worst < SETTLED_TARGET_SECONDS
        measured = (
            f"max {worst * 1000:.0f} ms over {len(pool.kills)} kill(s)"
            if pool.all_recovered
            else recovered_cell(pool)
        )
        return {
            "dead_workers_job_settled_within_1_s": Target(
                goal=f"every job of a SIGKILLed jobpool worker is failed or requeued within "
                f"{SETTLED_TARGET_SECONDS:g} s of the kill",
                measured=measured,
                met=met,
            )
        }


def registered_pids(admin: redis.Redis) -> set[int]:
    """The pids in the worker hashes of the worker registry (RQ's and jobpool's alike)."""
    names = list(admin.smembers(keys.WORKERS))
    with admin.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hget(name, "pid")
        pids = pipe.execute()
    return {int(pid) for pid in pids if pid}


def is_alive(process: psutil.Process) -> bool:
    """Running, not a zombie (a killed worker its pool has not reaped yet)."""
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def is_whole(admin: redis.Redis, pool: RunningPool) -> bool:
    """Whether the pool has its workers, each alive and registered."""
    workers = {process.pid for process, depth in pool.processes() if depth == 1 and is_alive(process)}
    return len(workers) == pool.size and workers <= registered_pids(admin)


def wait_until_whole(admin: redis.Redis, pool: RunningPool) -> None:
    deadline = time.monotonic() + WHOLE_DEADLINE_SECONDS
    while not is_whole(admin, pool):
        pool.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{pool.kind.label} pool not whole again within {WHOLE_DEADLINE_SECONDS:.0f} s"
            )
        time.sleep(POLL_SECONDS * WHOLE_EVERY_POLLS)


def wait_until_started(admin: redis.Redis, pool: RunningPool, job_id: str) -> str:
    """Waits until the job is started; returns the name of the worker running it."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        job = Job.fetch(job_id, admin)
        if job.get_status(refresh=False) == JobStatus.STARTED and job.worker_name:
            return job.worker_name
        pool.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{pool.kind.label}: job {job_id} not started within {START_DEADLINE_SECONDS:.0f} s"
            )
        time.sleep(POLL_SECONDS)


def victim_process(admin: redis.Redis, pool: RunningPool, worker_name: str) -> psutil.Process:
    """The process running the job of ``worker_name``: the worker (its pid from its hash) or, for
    RQ's default worker, its work horse (its child in a process group of its own). Checked to be
    one of the pool's processes, at the expected depth."""
    raw = admin.hget(keys.worker(worker_name), "pid")
    if not raw:
        raise RuntimeError(f"{pool.kind.label}: worker {worker_name} has no pid in its hash")
    worker_pid = int(raw)
    found = {process.pid: (process, depth) for process, depth in pool.processes()}
    if worker_pid not in found or found[worker_pid][1] != 1:
        raise RuntimeError(f"{pool.kind.label}: worker pid {worker_pid} is not one of the pool's workers")
    worker = found[worker_pid][0]
    if VICTIMS[pool.kind.name].depth == 1:
        return worker
    horses = []
    for child in worker.children():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            if child.pid in found and os.getpgid(child.pid) == child.pid:
                horses.append(child)
    if len(horses) != 1:
        raise RuntimeError(f"{pool.kind.label}: worker {worker_pid} has {len(horses)} work horses, not 1")
    return horses[0]


def settled(job: Job | None, killed_worker: str) -> bool:
    if job is None:
        return True  # gone: nothing is left to run it (not expected: the jobs keep their hashes)
    status = job.get_status(refresh=False)
    if status in SETTLED_STATUSES:
        return True
    return status == JobStatus.STARTED and bool(job.worker_name) and job.worker_name != killed_worker


def failure_reason(job: Job | None) -> str:
    if job is None:
        return ""
    with contextlib.suppress(Exception):  # a job's result that cannot be read is only not described
        text = job.exc_info or ""
        return text.strip().splitlines()[0][:120] if text.strip() else ""
    return ""


def fetch(admin: redis.Redis, job_id: str) -> Job | None:
    jobs = Job.fetch_many([job_id], admin)
    return jobs[0]


def kill_and_watch(
    admin: redis.Redis, pool: RunningPool, job_id: str, bound: float
) -> tuple[Kill, list[psutil.Process]]:
    """Kills the process running the job, watches the job (and the pool) for at most ``bound``
    seconds; returns what it saw and the killed process's children (orphaned now: RQ's scheduler,
    when the killed SimpleWorker ran it), for the caller to end."""
    victim = VICTIMS[pool.kind.name]
    worker_name = wait_until_started(admin, pool, job_id)
    process = victim_process(admin, pool, worker_name)
    orphans = process.children(recursive=True)
    killed_at = time.monotonic()
    process.kill()
    recovered: float | None = None
    replaced: float | None = None
    job = None
    polls = 0
    while True:
        job = fetch(admin, job_id)
        now = time.monotonic()
        if recovered is None and settled(job, worker_name):
            recovered = now - killed_at
        if (
            victim.depth == 1
            and replaced is None
            and polls % WHOLE_EVERY_POLLS == 0
            and is_whole(admin, pool)
        ):
            replaced = time.monotonic() - killed_at
        done = recovered is not None and (victim.depth != 1 or replaced is not None)
        if done or now - killed_at > bound:
            break
        polls += 1
        time.sleep(POLL_SECONDS)
    status = job.get_status(refresh=False) if job is not None else None
    kill = Kill(recovered, status.value if status else "gone", failure_reason(job), replaced)
    return kill, orphans


def measure_pool(context: Context, kind: PoolKind) -> PoolRecovery:
    admin = context.admin
    victim = VICTIMS[kind.name]
    bound = context.profile.recovery_bound_seconds
    kills = 1 if victim.kills_one else context.profile.recovery_kills
    admin.flushdb()
    queue = kind.queue_class(kind.queue_name, connection=admin)
    orphans: list[psutil.Process] = []
    done: list[Kill] = []
    try:
        with RunningPool(kind, context.url, POOL_SIZE, context.log_dir) as pool:
            pool.wait_until_ready(admin)
            for index in range(kills):
                wait_until_whole(admin, pool)
                job = queue.enqueue(time.sleep, SLEEP_SECONDS)
                kill, left = kill_and_watch(admin, pool, job.id, bound)
                orphans += left
                done.append(kill)
                seen = (
                    f"after {kill.recovered_seconds * 1000:.1f} ms"
                    if kill.recovered_seconds is not None
                    else "at the bound"
                )
                progress(
                    f"recovery {index + 1}/{kills}: {kind.label}: killed its {victim.label}; job "
                    f"{kill.status} {seen} (bound {bound:g} s)"
                )
            if victim.depth == 1:
                # Not stopped while a killed worker's replacement is pending: jobpool's supervisor
                # does not exit on SIGTERM then (the pending respawn is never cleared).
                wait_until_whole(admin, pool)
    finally:
        for orphan in orphans:
            with contextlib.suppress(psutil.NoSuchProcess):
                orphan.kill()
    return PoolRecovery.of(kind, bound, tuple(done))


def run(context: Context) -> Recovery:
    pools = tuple(measure_pool(context, kind) for kind in RECOVERY_POOLS)
    context.admin.flushdb()
    return Recovery(POOL_SIZE, f"time.sleep({SLEEP_SECONDS})", pools)
