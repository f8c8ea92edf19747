"""A cron job, as RQ 3.0's ``rq.cron.CronJob``: the function it enqueues and how often, checked
as it is made; its enqueue (with its records in RQ's cron data: its history and the registry of
cron jobs); when it is next due; and the fields RQ's tools read of it in its scheduler's hash.
``cron.CronScheduler`` holds them (and ``jobpool.cron`` names them, as ``rq.cron`` does)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from croniter import CroniterError
from redis import Redis
from redis.client import Pipeline

from . import cron_job_registry, keys
from .cron_claims import LastTick, enqueue_once
from .cron_job_registry import DEFAULT_CRON_JOB_HISTORY_TTL
from .cron_ticks import next_cron_time, next_tick
from .exceptions import InvalidCronJob
from .job import Job
from .queue import Queue
from .redis_values import as_text
from .serializers import Serializer
from .timeutils import from_epoch, utcformat, utcnow, utcparse
from .webhook import Webhook

logger = logging.getLogger("jobpool.cron")
"""Its scheduler's logger (RQ's cron jobs log their enqueues to ``rq.cron``'s)."""

DEFAULT_RESULT_TTL = 500
DEFAULT_CRON_JOB_HISTORY_LIMIT = 1000
"""RQ's: the most job ids a cron job's history keeps."""
NOT_JSON_SERIALIZABLE = "<not JSON serializable>"


def get_cron_job_history_key(name: str) -> str:
    """The sorted set of the ids of the jobs the named cron job enqueued."""
    return keys.cron_job_history(name)


def get_cron_job_ids(name: str, connection: Redis, start: int = 0, end: int = -1) -> list[str]:
    """The ids of the jobs the named cron job enqueued, newest first (``start``/``end``: zrange's)."""
    ids = connection.zrange(keys.cron_job_history(name), start, end, desc=True)
    return [as_text(job_id) for job_id in ids]


def _safe_json_dumps(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return NOT_JSON_SERIALIZABLE


class CronJob:
    """A function to enqueue on an interval (seconds) or a cron string. ``name`` (default: the
    function's dotted name) names its history; several cron jobs may share one."""

    def __init__(
        self,
        queue_name: str,
        func: Callable[..., Any] | None = None,
        func_name: str | None = None,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        interval: float | None = None,
        cron: str | None = None,
        job_timeout: int | None = None,
        result_ttl: int = DEFAULT_RESULT_TTL,
        ttl: int | None = None,
        failure_ttl: int | None = None,
        meta: dict[str, Any] | None = None,
        webhooks: Sequence[Webhook] | None = None,
        name: str = "",
    ):
        if interval and cron:
            raise InvalidCronJob("Cannot specify both interval and cron parameters")
        if not interval and not cron:
            raise InvalidCronJob("Must specify either interval or cron parameter")
        if webhooks and (
            not isinstance(webhooks, Sequence)
            or not all(isinstance(webhook, Webhook) for webhook in webhooks)
        ):
            raise TypeError("webhooks must be a sequence of Webhook instances")  # RQ's words
        if func is not None:
            if not callable(func):
                raise InvalidCronJob(f"func must be a callable, not {func!r}")
            self.func: Callable[..., Any] | None = func
            self.func_name: str = f"{func.__module__}.{func.__name__}"
        elif func_name:
            self.func = None
            self.func_name = func_name
        else:
            raise InvalidCronJob("Either func or func_name must be provided")
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0
        ):
            raise InvalidCronJob(f"interval must be a positive number of seconds, not {interval!r}")
        if not isinstance(queue_name, str) or not queue_name:
            raise InvalidCronJob(f"queue_name must be a non-empty string, not {queue_name!r}")
        self.name: str = name or self.func_name
        self.args: tuple[Any, ...] = tuple(args or ())
        self.kwargs: dict[str, Any] = kwargs or {}
        self.interval = interval
        self.cron = cron
        self.queue_name = queue_name
        self.next_enqueue_time: datetime | None = None
        self.latest_enqueue_time: datetime | None = None
        if cron:
            if not isinstance(cron, str):
                raise InvalidCronJob(f"cron must be a cron string, not {cron!r}")
            try:
                self.next_enqueue_time = self.get_next_enqueue_time()
            except CroniterError as error:
                raise InvalidCronJob(f"Invalid cron string {cron!r}: {error}") from error
        options = {
            "job_timeout": job_timeout,
            "result_ttl": result_ttl,
            "ttl": ttl,
            "failure_ttl": failure_ttl,
            "meta": meta,
            "webhooks": list(webhooks) if webhooks else None,
        }
        self.job_options: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        self.tick_id = tick_id_of(self, occurrence=0)
        """Names the cron job's last tick in Redis (``cron_claims``); a scheduler numbers the
        cron jobs it holds twice (same name, queue and schedule) apart."""

    def check_job(self, connection: Redis, serializer: Serializer | str | None = None) -> None:
        """Builds (but does not save) the job a tick would enqueue, so that what a worker could
        not run (a lambda, arguments that do not serialize, a bad TTL) is refused now."""
        options = dict(self.job_options)
        timeout = options.pop("job_timeout", None)
        Job.create(
            self.func,
            args=self.args,
            kwargs=self.kwargs,
            connection=connection,
            timeout=timeout,
            serializer=serializer,
            **options,
        )

    @property
    def job_history_key(self) -> str:
        return get_cron_job_history_key(self.name)

    def enqueue(self, connection: Redis, serializer: Serializer | str | None = None) -> Job:
        """Enqueues the job now, and records it in the cron job's history (as RQ's: no tick, so
        nothing stops another scheduler enqueueing it too)."""
        with connection.pipeline() as pipe:
            job = self._add_enqueue(pipe, connection, serializer, score=time.time())
            pipe.execute()
        return job

    def enqueue_tick(
        self, connection: Redis, tick: float, serializer: Serializer | str | None = None
    ) -> Job | None:
        """Enqueues the job for ``tick`` (epoch seconds) unless a scheduler has already: the job
        and the tick are recorded together, once (see ``cron_claims``). The job, or None."""
        enqueued: list[Job] = []

        def write(pipe: Pipeline) -> None:
            enqueued.append(self._add_enqueue(pipe, connection, serializer, score=tick))

        if not enqueue_once(connection, self.tick_id, tick, write):
            return None
        logger.info(
            "Enqueued cron job %s (%s) to queue %s", self.name, utcformat(from_epoch(tick)), self.queue_name
        )
        return enqueued[0]

    def _add_enqueue(
        self, pipe: Pipeline, connection: Redis, serializer: Serializer | str | None, score: float
    ) -> Job:
        """Adds to ``pipe`` the job's enqueue (jobpool's usual enqueue script) and its records
        in RQ's cron data; ``score``: its place in the history."""
        if self.func is None:
            raise InvalidCronJob(
                "CronJob has no function to enqueue. It may have been created for monitoring purposes."
            )
        queue = Queue(self.queue_name, connection=connection, serializer=serializer)
        # args and kwargs are explicit, so that the function's own keywords may share job options' names
        job = queue.enqueue(self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipe)
        history = self.job_history_key
        pipe.zadd(history, {job.id: score})
        pipe.zremrangebyrank(history, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
        pipe.expire(history, DEFAULT_CRON_JOB_HISTORY_TTL)
        cron_job_registry.add(self.name, pipe, enqueue_timestamp=time.time())
        return job

    def get_job_ids(self, connection: Redis, start: int = 0, end: int = -1) -> list[str]:
        return get_cron_job_ids(self.name, connection, start, end)

    def get_next_enqueue_time(self) -> datetime:
        """The next time it is due: the cron string's next match after its latest enqueue (or
        now), or its latest enqueue plus the interval (``datetime.max`` before any, as RQ's)."""
        if self.cron:
            return next_cron_time(self.cron, self.latest_enqueue_time or utcnow())
        if self.interval and self.latest_enqueue_time:
            return self.latest_enqueue_time + timedelta(seconds=self.interval)
        return datetime.max

    def should_run(self) -> bool:
        """Whether it is due now, by this object's own times (an interval job that never ran is)."""
        if not self.latest_enqueue_time and not self.cron:
            return True
        if self.next_enqueue_time:
            return utcnow() >= self.next_enqueue_time
        return False

    def set_enqueue_time(self, time: datetime) -> None:
        self.latest_enqueue_time = time
        self.next_enqueue_time = self.get_next_enqueue_time()

    def observe(self, last: LastTick) -> None:
        """Takes the times it shows from its last tick in Redis (enqueued by any scheduler)."""
        if last.enqueued:
            self.latest_enqueue_time = from_epoch(last.at)
        self.next_enqueue_time = from_epoch(next_tick(last.at, self.interval, self.cron))

    def to_dict(self) -> dict[str, Any]:
        """The fields RQ's ``CronJob.to_dict`` writes (in its scheduler's hash)."""
        fields: dict[str, Any] = {
            "func_name": self.func_name,
            "name": self.name,
            "queue_name": self.queue_name,
            "args": _safe_json_dumps(self.args) if self.args else None,
            "kwargs": _safe_json_dumps(self.kwargs) if self.kwargs else None,
            "interval": self.interval,
            "cron": self.cron,
            "latest_enqueue_time": utcformat(self.latest_enqueue_time) if self.latest_enqueue_time else None,
            "next_enqueue_time": utcformat(self.next_enqueue_time) if self.next_enqueue_time else None,
        }
        for option, value in self.job_options.items():
            if option == "meta":
                fields[option] = _safe_json_dumps(value)
            elif option == "webhooks":
                fields[option] = json.dumps([webhook.to_dict() for webhook in value])
            else:
                fields[option] = value
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CronJob:
        """A cron job as a scheduler's hash describes it: for monitoring (it has no function)."""

        def decoded(field: str) -> Any:
            value = data.get(field)
            return json.loads(value) if value and value != NOT_JSON_SERIALIZABLE else value

        args = decoded("args")
        cron_job = cls(
            queue_name=data["queue_name"],
            func_name=data["func_name"],
            name=data.get("name", ""),
            args=tuple(args) if isinstance(args, list) else args,
            kwargs=decoded("kwargs"),
            interval=data.get("interval"),
            cron=data.get("cron"),
            job_timeout=data.get("job_timeout"),
            result_ttl=data.get("result_ttl", DEFAULT_RESULT_TTL),
            ttl=data.get("ttl"),
            failure_ttl=data.get("failure_ttl"),
            meta=decoded("meta"),
            webhooks=[Webhook.from_dict(each) for each in decoded("webhooks") or []],
        )
        if data.get("latest_enqueue_time"):
            cron_job.latest_enqueue_time = utcparse(data["latest_enqueue_time"])
        if data.get("next_enqueue_time"):
            cron_job.next_enqueue_time = utcparse(data["next_enqueue_time"])
        return cron_job


def tick_id_of(cron_job: CronJob, occurrence: int) -> str:
    """``<name>:<digest of queue, schedule and occurrence>``: the same on every scheduler that
    runs the same configuration, and apart for cron jobs that differ in any of these."""
    interval = "" if cron_job.interval is None else repr(float(cron_job.interval))
    schedule = f"{cron_job.queue_name}\0{interval}\0{cron_job.cron or ''}\0{occurrence}"
    return f"{cron_job.name}:{hashlib.sha1(schedule.encode()).hexdigest()[:12]}"
