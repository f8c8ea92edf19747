"""Cron jobs, as RQ 3.0's ``rq.cron``: functions enqueued on an interval or a cron string by a
``CronScheduler``, configured by a module of ``register(...)`` calls (``jobpool cron CONFIG``,
like ``rq cron CONFIG``, or ``jobpool start --cron CONFIG``, which runs it in the pool's
supervisor).

The Redis data is RQ's (a cron job's history ``<prefix>:cron_job:<name>:jobs``, the registries
``<prefix>:cron_jobs`` and ``<prefix>:cron_schedulers``, a hash per scheduler), so RQ's classes
and tools see jobpool's cron schedulers. What jobpool adds: any number of schedulers, on any
number of hosts, may run the same configuration on one Redis, and each tick is enqueued once
(``cron_claims`` says how: a lock per configuration, and a transaction per tick).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from . import cron_scheduler_registry, keys, log_setup
from .cron_claims import LOCK_REFRESH_SECONDS, LastTick, hold_lock, read_last_ticks, release_lock
from .cron_config import import_config
from .cron_job import (
    DEFAULT_CRON_JOB_HISTORY_LIMIT,
    DEFAULT_RESULT_TTL,
    NOT_JSON_SERIALIZABLE,
    CronJob,
    get_cron_job_history_key,
    get_cron_job_ids,
    tick_id_of,
)
from .cron_job_registry import DEFAULT_CRON_JOB_HISTORY_TTL
from .cron_scheduler_registry import DEFAULT_CRON_SCHEDULER_TTL
from .cron_ticks import due_ticks
from .exceptions import SchedulerNotFound, StopRequested
from .redis_values import as_text
from .serializers import Serializer, resolve_serializer
from .timeutils import from_epoch, utcformat, utcnow, utcparse

__all__ = [  # rq.cron's names (CronJob and its helpers are cron_job's)
    "DEFAULT_CRON_JOB_HISTORY_LIMIT",
    "DEFAULT_CRON_JOB_HISTORY_TTL",
    "DEFAULT_CRON_SCHEDULER_TTL",
    "DEFAULT_RESULT_TTL",
    "NOT_JSON_SERIALIZABLE",
    "CronJob",
    "CronScheduler",
    "create_cron",
    "get_cron_job_history_key",
    "get_cron_job_ids",
    "register",
]

HEARTBEAT_SECONDS = 10.0
"""How often a scheduler refreshes its entry in RQ's registry (which drops it after 120 s)."""


class CronScheduler:
    """Enqueues its cron jobs when they are due. Any number of schedulers may run the same cron
    jobs on one Redis (one per pool, say): one of them, the holder of the configuration's lock,
    enqueues, and each tick is enqueued once whichever does (see ``cron_claims``)."""

    def __init__(
        self,
        connection: Redis,
        logging_level: str | int = logging.INFO,
        name: str = "",
        serializer: Serializer | str | None = None,
    ):
        self.connection = connection
        self._cron_jobs: list[CronJob] = []
        self.hostname: str = socket.gethostname()
        self.pid: int = os.getpid()
        self.name: str = name or f"{self.hostname}:{self.pid}:{uuid.uuid4().hex[:6]}"
        self.config_file: str = ""
        self.created_at: datetime = utcnow()
        self.serializer = resolve_serializer(serializer)
        self.holds_lock = False
        self._heartbeat_due = 0.0  # monotonic
        self.log = logging.getLogger(__name__)
        if not self.log.hasHandlers():
            level = logging_level if isinstance(logging_level, str) else logging.getLevelName(logging_level)
            log_setup.configure(level.upper())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    # ---- what it schedules -------------------------------------------------------------------

    def register(
        self,
        func: Callable[..., Any],
        queue_name: str,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        interval: float | None = None,
        cron: str | None = None,
        job_timeout: int | None = None,
        result_ttl: int = DEFAULT_RESULT_TTL,
        ttl: int | None = None,
        failure_ttl: int | None = None,
        meta: dict[str, Any] | None = None,
        webhooks: Sequence[Any] | None = None,
        name: str = "",
    ) -> CronJob:
        """Adds ``func`` to enqueue on ``queue_name`` every ``interval`` seconds or at each
        match of the ``cron`` string (local time); refused at once if either is wrong."""
        cron_job = CronJob(
            queue_name=queue_name,
            func=func,
            args=args,
            kwargs=kwargs,
            interval=interval,
            cron=cron,
            job_timeout=job_timeout,
            result_ttl=result_ttl,
            ttl=ttl,
            failure_ttl=failure_ttl,
            meta=meta,
            webhooks=webhooks,
            name=name,
        )
        cron_job.check_job(self.connection, self.serializer)
        twins = sum(1 for other in self._cron_jobs if tick_id_of(other, 0) == tick_id_of(cron_job, 0))
        cron_job.tick_id = tick_id_of(cron_job, twins)
        self._cron_jobs.append(cron_job)
        schedule = f"every {interval} seconds" if interval else f"with cron schedule '{cron}'"
        self.log.info("Registered '%s' to run on %s %s", cron_job.func_name, queue_name, schedule)
        return cron_job

    def get_jobs(self) -> list[CronJob]:
        return self._cron_jobs

    @property
    def config_id(self) -> str:
        """Names the lock of this set of cron jobs: schedulers that run the same ones share it."""
        tick_ids = "\n".join(sorted(cron_job.tick_id for cron_job in self._cron_jobs))
        return hashlib.sha1(tick_ids.encode()).hexdigest()[:16]

    def load_config_from_file(self, config_path: str) -> None:
        """Runs a configuration module (a file path, or a module path) and registers here what
        its ``jobpool.cron.register`` calls gave. A refused registration raises (RQ logs it and
        leaves the cron job out)."""
        self.config_file = config_path
        self.log.info("Loading cron configuration from %s", config_path)
        _job_data_registry.clear()
        try:
            import_config(config_path)
            for data in _job_data_registry:
                self.register(**data)
        finally:
            _job_data_registry.clear()
        self.log.info("Successfully registered %d cron jobs from '%s'", len(self._cron_jobs), config_path)

    # ---- enqueueing ----------------------------------------------------------------------------

    def enqueue_jobs(self) -> list[CronJob]:
        """Enqueues the ticks that are due, if this scheduler holds (or takes) its lock; the
        cron jobs enqueued, once a tick (a cron job that catches up on missed ticks is there
        once for each)."""
        if not self._cron_jobs:
            return []
        held_before, self.holds_lock = self.holds_lock, hold_lock(self.connection, self.config_id, self.name)
        if self.holds_lock != held_before:
            state = "holds the cron lock: it enqueues" if self.holds_lock else "lost the cron lock"
            self.log.info("CronScheduler %s %s (%d cron jobs)", self.name, state, len(self._cron_jobs))
        if not self.holds_lock:
            return []
        now = time.time()
        enqueued: list[CronJob] = []
        for cron_job, last in zip(self._cron_jobs, self._last_ticks(), strict=True):
            cron_job.observe(last)
            for tick in due_ticks(last.at, now, cron_job.interval, cron_job.cron):
                if cron_job.enqueue_tick(self.connection, tick, self.serializer) is None:
                    break  # another scheduler is at it: it enqueued this tick, and goes on
                cron_job.observe(LastTick(tick, enqueued=True))
                enqueued.append(cron_job)
        if enqueued:
            self.save()
        return enqueued

    def _last_ticks(self) -> list[LastTick]:
        """Each cron job's last tick; one seen for the first time counts from this scheduler's
        start (an interval job is due then, as RQ's are when its scheduler starts)."""
        started = self.created_at.timestamp()
        anchors = [started - (cron_job.interval or 0) for cron_job in self._cron_jobs]
        return read_last_ticks(self.connection, [cron_job.tick_id for cron_job in self._cron_jobs], anchors)

    def calculate_sleep_interval(self) -> float:
        """Seconds until the next cron job is due, at most LOCK_REFRESH_SECONDS (RQ's: 60), so
        that the lock is kept, or taken once its holder is gone."""
        next_times = [job.next_enqueue_time for job in self._cron_jobs if job.next_enqueue_time]
        if not self.holds_lock or not next_times:
            return LOCK_REFRESH_SECONDS
        until_next = (min(next_times) - utcnow()).total_seconds()
        # Not 0 for a tick found due but left to another scheduler: the next round reads afresh.
        return min(max(until_next, 0.01), LOCK_REFRESH_SECONDS)

    def run_due(self) -> float:
        """One round: enqueues what is due (lock permitting) and heartbeats when it is time;
        returns the seconds until the next round should run."""
        self.enqueue_jobs()
        if time.monotonic() >= self._heartbeat_due:
            self._heartbeat_due = time.monotonic() + HEARTBEAT_SECONDS
            if not self.holds_lock and self._cron_jobs:
                # What the holder enqueued, for this scheduler's hash as RQ's tools read it.
                for cron_job, last in zip(self._cron_jobs, self._last_ticks(), strict=True):
                    cron_job.observe(last)
                self.save()
            self.heartbeat()
        return self.calculate_sleep_interval()

    # ---- running on its own (jobpool cron) -----------------------------------------------------

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)

    def _request_stop(self, signum: int, frame: Any) -> None:
        self.log.info("CronScheduler %s: received shutdown signal %s", self.name, signum)
        raise StopRequested()

    def start(self) -> None:
        """Runs until SIGINT or SIGTERM: registers, enqueues what falls due, unregisters."""
        self.log.info("CronScheduler %s: starting...", self.name)
        self._install_signal_handlers()
        self.register_birth()
        try:
            while True:
                try:
                    wait = self.run_due()
                except RedisError as error:  # an outage does not end it: a round a second until it ends
                    self.log.warning("CronScheduler %s: cannot reach Redis now: %s", self.name, error)
                    wait = LOCK_REFRESH_SECONDS
                time.sleep(wait)
        except KeyboardInterrupt:
            self.log.info("CronScheduler %s: received KeyboardInterrupt", self.name)
        except StopRequested:
            self.log.info("CronScheduler %s: stop requested", self.name)
        finally:
            with suppress(SchedulerNotFound):
                self.register_death()
            self.log.info("CronScheduler %s: shutdown complete", self.name)

    # ---- RQ's records of it ---------------------------------------------------------------------

    @property
    def key(self) -> str:
        return keys.cron_scheduler(self.name)

    def to_dict(self) -> dict[str, str]:
        return {
            "hostname": self.hostname,
            "pid": str(self.pid),
            "name": self.name,
            "created_at": utcformat(self.created_at),
            "config_file": self.config_file or "",
            "cron_jobs": json.dumps([cron_job.to_dict() for cron_job in self._cron_jobs]),
        }

    def save(self, pipeline: Pipeline | None = None) -> None:
        pipe = pipeline if pipeline is not None else self.connection.pipeline()
        pipe.hset(self.key, mapping=self.to_dict())  # type: ignore[arg-type]
        pipe.expire(self.key, DEFAULT_CRON_SCHEDULER_TTL)
        if pipeline is None:
            pipe.execute()

    def restore(self, raw_data: dict[Any, Any]) -> None:
        fields = {as_text(name): as_text(value) for name, value in raw_data.items()}
        self.hostname = fields.get("hostname", "")
        self.pid = int(fields.get("pid", 0))
        self.name = fields.get("name", self.name)
        if fields.get("created_at"):
            self.created_at = utcparse(fields["created_at"])
        self.config_file = fields.get("config_file", "")
        try:
            described = json.loads(fields.get("cron_jobs") or "[]")
            self._cron_jobs = [CronJob.from_dict(data) for data in described]
        except (ValueError, KeyError, TypeError) as error:
            self.log.warning("Failed to restore cron jobs: %s", error)
            self._cron_jobs = []

    @classmethod
    def fetch(cls, name: str, connection: Redis) -> CronScheduler:
        raw = connection.hgetall(keys.cron_scheduler(name))
        if not raw:
            raise SchedulerNotFound(f"CronScheduler with name '{name}' not found")
        scheduler = cls(connection=connection, name=name)
        scheduler.restore(raw)
        return scheduler

    @classmethod
    def all(cls, connection: Redis, cleanup: bool = True) -> list[CronScheduler]:
        """Every registered scheduler (those silent for 120 s dropped first, when ``cleanup``)."""
        if cleanup:
            cron_scheduler_registry.cleanup(connection)
        schedulers = []
        for name in cron_scheduler_registry.get_keys(connection):
            with suppress(SchedulerNotFound):
                schedulers.append(cls.fetch(name, connection))
        return schedulers

    def register_birth(self) -> None:
        with self.connection.pipeline() as pipe:
            cron_scheduler_registry.register(self, pipe)
            self.save(pipe)
            pipe.execute()

    def register_death(self, pipeline: Pipeline | None = None) -> None:
        """Gives up the lock (another scheduler takes over at once) and leaves RQ's registry."""
        release_lock(self.connection, self.config_id, self.name)
        self.holds_lock = False
        cron_scheduler_registry.unregister(self, pipeline)

    def heartbeat(self) -> None:
        """Refreshes its registry entry and its hash's TTL (re-writing the hash if it lapsed)."""
        with self.connection.pipeline() as pipe:
            pipe.zadd(keys.CRON_SCHEDULERS, {self.name: time.time()})
            pipe.expire(self.key, DEFAULT_CRON_SCHEDULER_TTL)
            _, hash_lives = pipe.execute()
        if not hash_lives:  # it lapsed (the host slept past its TTL, say): written again
            self.save()

    @property
    def last_heartbeat(self) -> datetime | None:
        score = self.connection.zscore(keys.CRON_SCHEDULERS, self.name)
        return None if score is None else from_epoch(score)


_job_data_registry: list[dict[str, Any]] = []
"""What a configuration module's ``register`` calls gave, until a scheduler takes it."""


def register(
    func: Callable[..., Any],
    queue_name: str,
    args: tuple[Any, ...] | None = None,
    kwargs: dict[str, Any] | None = None,
    interval: float | None = None,
    cron: str | None = None,
    job_timeout: int | None = None,
    result_ttl: int = DEFAULT_RESULT_TTL,
    ttl: int | None = None,
    failure_ttl: int | None = None,
    meta: dict[str, Any] | None = None,
    webhooks: Sequence[Any] | None = None,
    name: str = "",
) -> dict[str, Any]:
    """In a configuration module: schedules ``func`` (see ``CronScheduler.register``) for the
    scheduler that loads the module. A wrong schedule is refused at once, at the line that is
    wrong; the rest (the function, its arguments, the TTLs) as the scheduler loads the module.
    RQ's scheduler logs a registration it refuses, and leaves the cron job out."""
    job_data: dict[str, Any] = {
        "func": func,
        "queue_name": queue_name,
        "args": args,
        "kwargs": kwargs,
        "interval": interval,
        "cron": cron,
        "job_timeout": job_timeout,
        "result_ttl": result_ttl,
        "ttl": ttl,
        "failure_ttl": failure_ttl,
        "meta": meta,
        "webhooks": webhooks,
        "name": name,
    }
    CronJob(**job_data)  # a wrong schedule is refused here
    _job_data_registry.append(job_data)
    return job_data


def create_cron(connection: Redis) -> CronScheduler:
    """A scheduler with the cron jobs ``register`` has been given (which it takes)."""
    scheduler = CronScheduler(connection=connection)
    job_definitions = list(_job_data_registry)
    _job_data_registry.clear()
    for data in job_definitions:
        scheduler.register(**data)
    return scheduler
