"""Dramatiq's worker pool, run as its users run it: ``dramatiq dramatiq_workload --processes N`` (its
default threads, 8 a process) with a Redis broker on the suite's private redis-server.

Dramatiq has no burst mode, so a drain goes: K messages enqueued with Dramatiq's own
``broker.enqueue`` (what ``actor.send()`` does: one script call each), the pool started, SIGTERM (its
warm shutdown) as soon as the K jobs have recorded their end, then a check that all K ran and that
Redis holds no message of the queue, acked or not, and none dead-lettered. The jobs' end times come
from the actors themselves (``dramatiq_workload``: a per-process file, no Redis traffic).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench import dramatiq_workload
from bench.pools import CpuSeconds, executable_beside_python, run_pool_to_end
from bench.suite_types import Context

VERSION = dramatiq.__version__
NAMESPACE = "dramatiq"
"""Its RedisBroker's default key prefix."""


@dataclass(frozen=True)
class DramatiqKind:
    """Dramatiq's pool in the drain section (it has no ``enqueue_many`` nor RQ's data, so it is not
    a ``pools.PoolKind``)."""

    name: str = "dramatiq"
    label: str = "Dramatiq"
    library: str = "dramatiq"

    def command(self, size: int) -> list[str]:
        return [executable_beside_python("dramatiq"), dramatiq_workload.__name__, "--processes", str(size)]

    def enqueue(self, url: str, jobs: int, workload: str) -> None:
        """``jobs`` messages for the actor named ``workload``, as ``actor.send()`` enqueues them."""
        broker = RedisBroker(url=url)
        try:
            for _ in range(jobs):
                message: dramatiq.Message[None] = dramatiq.Message(
                    queue_name=dramatiq_workload.QUEUE, actor_name=workload, args=(), kwargs={}, options={}
                )
                broker.enqueue(message)
        finally:
            broker.close()


DRAMATIQ = DramatiqKind()


def ends_directory(log_dir: Path, workload: str, size: int) -> Path:
    """Where the workers of one drain write their jobs' end times."""
    return log_dir / f"dramatiq-ends-{workload}-{size}"


def left_in_redis(admin: redis.Redis) -> dict[str, int]:
    """The queue's messages still in Redis: waiting, held (enqueued or unacked) or dead-lettered."""
    queue = f"{NAMESPACE}:{dramatiq_workload.QUEUE}"
    counts = {
        "waiting": int(admin.llen(queue)),
        "held": int(admin.hlen(f"{queue}.msgs")),
        "dead": int(admin.zcard(f"{queue}.XQ")),
    }
    return {what: count for what, count in counts.items() if count}


def drain_once(
    context: Context, workload: str, size: int, jobs: int
) -> tuple[float, CpuSeconds, list[float]]:
    """One drain of ``jobs`` messages by ``size`` processes; returns the wall time from the pool's
    start to its exit, the CPU time spent, and the jobs' end times (seconds since the epoch)."""
    admin = context.admin
    admin.flushdb()
    ends = ends_directory(context.log_dir, workload, size)
    shutil.rmtree(ends, ignore_errors=True)
    ends.mkdir()
    DRAMATIQ.enqueue(context.url, jobs, workload)
    wall_seconds, cpu = run_pool_to_end(
        DRAMATIQ.command(size),
        context.log_dir / f"drain-{DRAMATIQ.name}-{workload}-{size}.log",
        lambda: dramatiq_workload.ended_count(ends) >= jobs,
        context.redis_process,
        environment={dramatiq_workload.URL_VARIABLE: context.url, dramatiq_workload.ENDS_VARIABLE: str(ends)},
        stop_when_done=True,
    )
    times = dramatiq_workload.end_times(ends)
    left = left_in_redis(admin)
    if len(times) != jobs or left:
        raise RuntimeError(f"Dramatiq ran {len(times)} of {jobs} jobs; left in Redis: {left or 'none'}")
    return wall_seconds, cpu, times
