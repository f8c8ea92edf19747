"""RQ's registry of cron job names, ``<prefix>:cron_jobs``: a sorted set scored by each name's
last enqueue (epoch seconds), as ``rq.cron_job_registry`` keeps it."""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

from . import keys
from .redis_values import as_texts

DEFAULT_CRON_JOB_HISTORY_TTL = 31536000
"""RQ's: how long a cron job's history (and its name here) lasts without an enqueue (a year)."""


def get_registry_key() -> str:
    return keys.CRON_JOBS


def add(name: str, connection: Any, enqueue_timestamp: float | None = None) -> None:
    """Records (refreshes) a cron job's name; ``connection`` may be a pipeline."""
    connection.zadd(keys.CRON_JOBS, {name: enqueue_timestamp or time.time()})


def get_names(connection: Redis, cleanup: bool = True) -> list[str]:
    """The names, by last enqueue, oldest first; stale ones dropped first when ``cleanup``."""
    if cleanup:
        remove_stale_entries(connection)
    return as_texts(connection.zrange(keys.CRON_JOBS, 0, -1))


def remove_stale_entries(connection: Redis, threshold: int = DEFAULT_CRON_JOB_HISTORY_TTL) -> int:
    """Drops the names that enqueued nothing in ``threshold`` seconds; how many."""
    return int(connection.zremrangebyscore(keys.CRON_JOBS, 0, time.time() - threshold))
