"""RQ's registry of cron schedulers, ``<prefix>:cron_schedulers``: a sorted set of scheduler
names scored by their last heartbeat, as ``rq.cron_scheduler_registry`` keeps it."""

from __future__ import annotations

import time
from typing import Any, Protocol

from redis import Redis

from . import keys
from .exceptions import DuplicateSchedulerError, SchedulerNotFound
from .redis_values import as_texts


class RegisteredScheduler(Protocol):
    """What the registry reads of a cron scheduler (``cron.CronScheduler``, which sits above it:
    it registers itself here)."""

    @property
    def name(self) -> str: ...
    @property
    def connection(self) -> Redis: ...


DEFAULT_CRON_SCHEDULER_TTL = 120
"""RQ's: how long a cron scheduler's hash lives past its heartbeat, and when it counts as gone."""


def get_registry_key() -> str:
    return keys.CRON_SCHEDULERS


def register(cron_scheduler: RegisteredScheduler, pipeline: Any = None) -> None:
    """Adds the scheduler; DuplicateSchedulerError if its name is there already (checked only
    without a pipeline, whose reply comes later: as RQ's)."""
    connection = pipeline if pipeline is not None else cron_scheduler.connection
    added = connection.zadd(keys.CRON_SCHEDULERS, {cron_scheduler.name: time.time()}, nx=True)
    if added == 0:
        raise DuplicateSchedulerError(f"CronScheduler '{cron_scheduler.name}' is already registered")


def unregister(cron_scheduler: RegisteredScheduler, pipeline: Any = None) -> None:
    """Removes the scheduler; SchedulerNotFound if it was not there (without a pipeline)."""
    connection = pipeline if pipeline is not None else cron_scheduler.connection
    removed = connection.zrem(keys.CRON_SCHEDULERS, cron_scheduler.name)
    if removed == 0:
        raise SchedulerNotFound(f"CronScheduler '{cron_scheduler.name}' not found in registry")


def get_keys(connection: Redis) -> list[str]:
    """The schedulers' names, by last heartbeat, oldest first."""
    return as_texts(connection.zrange(keys.CRON_SCHEDULERS, 0, -1))


def cleanup(connection: Redis, threshold: int = DEFAULT_CRON_SCHEDULER_TTL) -> int:
    """Drops the schedulers whose last heartbeat is older than ``threshold`` seconds; how many."""
    return int(connection.zremrangebyscore(keys.CRON_SCHEDULERS, 0, time.time() - threshold))
