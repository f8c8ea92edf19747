"""A worker's entry in RQ's worker registry (``<prefix>:worker:<name>``, ``<prefix>:workers``,
``<prefix>:workers:<queue>``), so ``rq info`` and RQ dashboards see jobpool's workers."""

from __future__ import annotations

import os
import socket
import sys

from redis import Redis

from . import _native, keys
from .timeutils import utcformat, utcnow


def register_birth(
    connection: Redis, name: str, queue_names: list[str], ttl: int, replace: bool = False
) -> None:
    """Registers a new worker; ValueError if a live worker already has the name (as RQ), unless
    ``replace`` (a pool's supervisor owns its workers' names: an entry left by a pool that was
    killed, under the same --name, is stale)."""
    key = keys.worker(name)
    if not replace and connection.exists(key) and not connection.hexists(key, "death"):
        raise ValueError(f"There exists an active worker named {name!r} already")
    now = utcformat(utcnow())
    with connection.pipeline() as pipe:
        pipe.delete(key)
        born = [("birth", now), ("last_heartbeat", now), *fields(queue_names, os.getpid(), "started")]
        pipe.hset(key, mapping=dict(born))
        pipe.sadd(keys.WORKERS, key)
        for queue_name in queue_names:
            pipe.sadd(keys.queue_workers(queue_name), key)
        pipe.expire(key, ttl)
        pipe.execute()


def fields(queue_names: list[str], pid: int, state: str) -> list[tuple[str, str]]:
    """A worker's hash as its birth writes it, but for ``birth`` and ``last_heartbeat``."""
    return [
        ("queues", ",".join(queue_names)),
        ("pid", str(pid)),
        ("hostname", socket.gethostname()),
        ("ip_address", ""),
        ("version", f"jobpool {_native.__version__}"),
        ("python_version", sys.version),
        ("state", state),
    ]


def for_heartbeat(queue_names: list[str], pid: int, busy: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """A pool worker's registration as its supervisor's heartbeat writes it again, should
    Redis lose it (see ``Core.heartbeat``): its queues and its hash's fields."""
    return queue_names, fields(queue_names, pid, "busy" if busy else "idle")


def register_death(connection: Redis, name: str, queue_names: list[str]) -> None:
    key = keys.worker(name)
    with connection.pipeline() as pipe:
        pipe.srem(keys.WORKERS, key)
        for queue_name in queue_names:
            pipe.srem(keys.queue_workers(queue_name), key)
        pipe.hset(key, mapping={"death": utcformat(utcnow()), "state": "dead"})
        pipe.expire(key, 60)
        pipe.delete(keys.worker_executions(name))
        pipe.execute()


def set_state(connection: Redis, name: str, state: str) -> None:
    connection.hset(keys.worker(name), "state", state)
