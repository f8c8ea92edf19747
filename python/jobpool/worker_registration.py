"""A worker's entry in RQ's worker registry (``<prefix>:worker:<name>``, ``<prefix>:workers``,
``<prefix>:workers:<queue>``), so ``rq info`` and RQ dashboards see jobpool's workers."""

from __future__ import annotations

import logging
import os
import socket
import sys

from redis import Redis
from redis.exceptions import ResponseError

from . import _native, keys
from .timeutils import utcformat, utcnow

logger = logging.getLogger("jobpool.worker")


def register_birth(
    connection: Redis, name: str, queue_names: list[str], ttl: int, replace: bool = False
) -> str:
    """Registers a new worker and returns its ``ip_address``; ValueError if a live worker
    already has the name (as RQ), unless ``replace`` (a pool's supervisor owns its workers'
    names: an entry left by a pool that was killed, under the same --name, is stale)."""
    key = keys.worker(name)
    if not replace and connection.exists(key) and not connection.hexists(key, "death"):
        raise ValueError(f"There exists an active worker named {name!r} already")
    ip_address = client_address(connection, name)
    now = utcformat(utcnow())
    with connection.pipeline() as pipe:
        pipe.delete(key)
        born = [
            ("birth", now),
            ("last_heartbeat", now),
            *fields(queue_names, os.getpid(), "idle"),
            ("ip_address", ip_address),
        ]
        pipe.hset(key, mapping=dict(born))
        pipe.sadd(keys.WORKERS, key)
        for queue_name in queue_names:
            pipe.sadd(keys.queue_workers(queue_name), key)
        pipe.expire(key, ttl)
        pipe.execute()
    return ip_address


def client_address(connection: Redis, name: str) -> str:
    """The worker's address as Redis sees its connection (``ip:port``), found as RQ's workers
    find it: the connection is named after the worker (``CLIENT SETNAME``), then ``CLIENT INFO``
    (Redis 6.2), else its entry in ``CLIENT LIST``; ``unknown`` where the server refuses those."""
    try:
        connection.client_setname(name)
    except ResponseError:  # a name with spaces, or a server without CLIENT SETNAME
        logger.warning("CLIENT SETNAME refused for worker %s: its ip_address is unknown", name)
        return "unknown"
    try:
        return str(connection.client_info()["addr"])
    except ResponseError:
        pass
    try:
        found = [client["addr"] for client in connection.client_list() if client.get("name") == name]
    except ResponseError:
        found = []
    return str(found[0]) if found else "unknown"


def fields(queue_names: list[str], pid: int, state: str) -> list[tuple[str, str]]:
    """A worker's hash as its birth writes it, but for ``birth``, ``last_heartbeat`` and
    ``ip_address`` (only the worker's own connection can learn it)."""
    return [
        ("queues", ",".join(queue_names)),
        ("pid", str(pid)),
        ("hostname", socket.gethostname()),
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
        pipe.hset(key, "death", utcformat(utcnow()))
        pipe.expire(key, 60)
        pipe.delete(keys.worker_executions(name))
        pipe.execute()
