"""Registries: per-queue sorted sets of job ids, ``<prefix>:<kind>:<queue>``, as RQ keeps them.

Scores: finished and failed hold each job's expiry time, deferred and canceled the time it
arrived, scheduled the time it is due, and the started registry holds executions
(``<job_id>:<execution_id>``) scored by when their heartbeat lapses.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from redis import Redis

from . import keys
from .exceptions import InvalidJobOperation, NoSuchJobError
from .job import Job
from .recovery import recover_abandoned
from .redis_values import as_text, as_texts
from .registry_cleanup import clean_registries as clean_queue_registries
from .requeue import requeue_from
from .serializers import Serializer, resolve_serializer
from .timeouts import BaseDeathPenalty, UnixSignalDeathPenalty
from .timeutils import epoch_seconds, from_epoch

if TYPE_CHECKING:
    from redis.client import Pipeline


class QueueLike(Protocol):
    """What a registry takes from the queue it is made for (``Queue`` sits above registries)."""

    name: str
    connection: Redis
    serializer: Serializer


class ExecutionMember(Protocol):
    """An execution as the started registry holds it (``executions`` sits above registries)."""

    @property
    def composite_key(self) -> str: ...


class BaseRegistry:
    kind = ""
    job_class: type[Job] = Job
    death_penalty_class: type[BaseDeathPenalty] = UnixSignalDeathPenalty
    """Kept for RQ's API; jobpool's registries time nothing."""
    key_template = keys.PREFIX.replace("{", "{{").replace("}", "}}") + ":registry:{0}"
    """``<prefix>:<kind>:{0}``, as RQ's (``key_template.format(queue_name)`` is the key)."""
    queue_class: ClassVar[Any]
    """What ``get_queue`` makes: ``jobpool.queue.Queue``, which sits above registries in the data
    model's layers (its registry properties make them), so it enters itself here as it loads
    (the package loads it with itself)."""

    def __init__(
        self,
        name: str = "default",
        connection: Redis | None = None,
        job_class: type[Job] | None = None,
        queue: QueueLike | None = None,
        serializer: Serializer | str | None = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
        **kwargs: Any,
    ):
        if queue is not None:
            name, connection = queue.name, queue.connection
            serializer = serializer or queue.serializer
        if connection is None:
            raise TypeError(f"{type(self).__name__} needs a Redis connection")
        self.name = name
        self.connection = connection
        self.serializer = resolve_serializer(serializer)
        self.job_class = job_class or Job
        self.death_penalty_class = death_penalty_class or type(self).death_penalty_class
        self.key = self.key_template.format(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BaseRegistry) and type(self) is type(other) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __len__(self) -> int:
        return self.count

    def __contains__(self, item: Job | str) -> bool:
        job_id = item.id if isinstance(item, Job) else item
        return self.connection.zscore(self.key, job_id) is not None

    @property
    def count(self) -> int:
        return self.get_job_count()

    def get_job_count(self, cleanup: bool = True) -> int:
        if cleanup:
            self.cleanup()
        return int(self.connection.zcard(self.key))

    def cleanup(self, timestamp: float | None = None) -> None:
        """Drops what has expired; most registries keep everything."""

    def get_expired_job_ids(self, timestamp: float | None = None) -> list[str]:
        score = timestamp if timestamp is not None else epoch_seconds()
        return [self.parse_job_id(member) for member in self.connection.zrangebyscore(self.key, 0, score)]

    def get_job_ids(
        self, start: int = 0, end: int = -1, desc: bool = False, cleanup: bool = True
    ) -> list[str]:
        if cleanup:
            self.cleanup()
        return [
            self.parse_job_id(member) for member in self.connection.zrange(self.key, start, end, desc=desc)
        ]

    @staticmethod
    def parse_job_id(member: Any) -> str:
        return as_text(member)

    def get_queue(self) -> Any:
        return self.queue_class(self.name, connection=self.connection, serializer=self.serializer)

    def get_expiration_time(self, job: Job) -> datetime:
        score = self.connection.zscore(self.key, job.id)
        if score is None:
            raise NoSuchJobError(f"Job {job.id} is not in {self!r}")
        return from_epoch(float(score))

    def add(self, job: Job | str, ttl: int = 0, pipeline: Pipeline | None = None, xx: bool = False) -> int:
        """Adds ``job`` scored now + ``ttl`` (-1: for ever, ``+inf``; another negative ttl is the
        score itself), as RQ's ``add``; ``xx``: only if it is there already."""
        job_id = job.id if isinstance(job, Job) else job
        score: float | str = ttl if ttl < 0 else epoch_seconds() + ttl
        if score == -1:
            score = "+inf"
        connection = pipeline if pipeline is not None else self.connection
        return int(connection.zadd(self.key, {job_id: score}, xx=xx) or 0)

    def remove(self, job: Job | str, pipeline: Pipeline | None = None, delete_job: bool = False) -> int:
        job_id = job.id if isinstance(job, Job) else job
        connection = pipeline if pipeline is not None else self.connection
        removed = connection.zrem(self.key, job_id)
        if delete_job:
            target = (
                job
                if isinstance(job, Job)
                else self.job_class.fetch(job_id, self.connection, self.serializer)
            )
            target.delete(pipeline=pipeline)
        return int(removed)

    def requeue(self, job_or_id: Job | str, at_front: bool = False) -> Job:
        """Moves the job from this registry back onto its queue (a job with a rate limit: into
        its limit's waiting set, as RQ), atomically; InvalidJobOperation if it is not in this
        registry."""
        job = (
            job_or_id
            if isinstance(job_or_id, Job)
            else self.job_class.fetch(job_or_id, connection=self.connection, serializer=self.serializer)
        )
        moved = requeue_from(self.connection, self.key, job.id, job.origin, at_front)
        if not moved:
            raise InvalidJobOperation(f"Job {job.id} is not in {self!r}, so it cannot be requeued")
        job.refresh()
        return job


class FinishedJobRegistry(BaseRegistry):
    kind = "finished"
    key_template = keys.positional_template("finished")

    def cleanup(self, timestamp: float | None = None) -> None:
        """Forgets jobs whose result_ttl has passed."""
        self.connection.zremrangebyscore(self.key, 0, timestamp if timestamp is not None else epoch_seconds())


class FailedJobRegistry(BaseRegistry):
    kind = "failed"
    key_template = keys.positional_template("failed")

    def cleanup(self, timestamp: float | None = None) -> None:
        """Forgets jobs whose failure_ttl has passed."""
        self.connection.zremrangebyscore(self.key, 0, timestamp if timestamp is not None else epoch_seconds())


class DeferredJobRegistry(BaseRegistry):
    kind = "deferred"
    key_template = keys.positional_template("deferred")


class CanceledJobRegistry(BaseRegistry):
    kind = "canceled"
    key_template = keys.positional_template("canceled")


class ReadyJobRegistry(BaseRegistry):
    """RQ 3.0's registry of dependents between their parent's finish and their enqueue; jobpool
    enqueues dependents atomically and never fills it, but reads what RQ leaves in it."""

    kind = "ready"
    key_template = keys.positional_template("ready")


class ScheduledJobRegistry(BaseRegistry):
    kind = "scheduled"
    key_template = keys.positional_template("scheduled")

    def schedule(self, job: Job, scheduled_datetime: datetime, pipeline: Pipeline | None = None) -> int:
        connection = pipeline if pipeline is not None else self.connection
        return int(connection.zadd(self.key, {job.id: epoch_seconds(scheduled_datetime)}) or 0)

    def get_jobs_to_schedule(self, timestamp: int | None = None, chunk_size: int = 1000) -> list[str]:
        score = timestamp if timestamp is not None else epoch_seconds()
        due = self.connection.zrangebyscore(self.key, 0, score, start=0, num=chunk_size)
        return [self.parse_job_id(member) for member in due]

    def get_scheduled_time(self, job_or_id: Job | str) -> datetime:
        job_id = job_or_id.id if isinstance(job_or_id, Job) else job_or_id
        score = self.connection.zscore(self.key, job_id)
        if score is None:
            raise NoSuchJobError(f"Job {job_id} is not scheduled")
        return from_epoch(float(score))

    def remove_jobs(self, timestamp: int | None = None, pipeline: Pipeline | None = None) -> int:
        connection = pipeline if pipeline is not None else self.connection
        score = timestamp if timestamp is not None else epoch_seconds()
        return int(connection.zremrangebyscore(self.key, 0, score))


class StartedJobRegistry(BaseRegistry):
    """Running executions. Members are ``<job_id>:<execution_id>``; a job id is "in" the
    registry while any execution of it is."""

    kind = "started"
    key_template = keys.positional_template("started")

    def cleanup(self, timestamp: float | None = None) -> None:
        """Fails or retries the jobs of executions whose heartbeat lapsed (AbandonedJobError), or
        lapses by ``timestamp`` (epoch seconds), as RQ's."""
        recover_abandoned(self.connection, [self.name], serializer=self.serializer, lapsed_by=timestamp)

    @staticmethod
    def parse_job_id(member: Any) -> str:
        return as_text(member).split(":", 1)[0]

    def __contains__(self, item: Job | str) -> bool:
        job_id = item.id if isinstance(item, Job) else item
        return job_id in self.get_job_ids(cleanup=False)

    def get_job_and_execution_ids(
        self, start: int = 0, end: int = -1, desc: bool = False, cleanup: bool = False
    ) -> list[tuple[str, str]]:
        if cleanup:
            self.cleanup()
        pairs = []
        for member in self.connection.zrange(self.key, start, end, desc=desc):
            job_id, _, execution_id = as_text(member).partition(":")
            pairs.append((job_id, execution_id))
        return pairs

    def requeue(self, job_or_id: Job | str, at_front: bool = False) -> Job:
        raise InvalidJobOperation("Running jobs cannot be requeued from the started registry")

    def add_execution(
        self, execution: ExecutionMember, pipeline: Pipeline, ttl: int = 0, xx: bool = False
    ) -> Any:
        """Adds ``execution`` scored now + ``ttl`` (-1: for ever), in ``pipeline``, as RQ's."""
        score: float | str = "+inf" if ttl == -1 else ttl if ttl < 0 else epoch_seconds() + ttl
        return pipeline.zadd(self.key, {execution.composite_key: score}, xx=xx)

    def remove_execution(
        self,
        execution: ExecutionMember,
        job: Job | None = None,
        pipeline: Pipeline | None = None,
        delete_job: bool = False,
    ) -> None:
        """Takes ``execution`` out of the registry (``job`` and ``delete_job`` are unused, as in
        RQ's)."""
        connection = pipeline if pipeline is not None else self.connection
        connection.zrem(self.key, execution.composite_key)

    def remove_executions(self, job: Job, pipeline: Pipeline | None = None) -> None:
        """Takes the executions of ``job`` that its executions index lists out of the registry;
        their records stay, as RQ's."""
        execution_ids = as_texts(self.connection.zrange(keys.executions(job.id), 0, -1))
        if execution_ids:
            connection = pipeline if pipeline is not None else self.connection
            connection.zrem(self.key, *(f"{job.id}:{execution_id}" for execution_id in execution_ids))


def clean_registries(queue: QueueLike, exception_handlers: list[Any] | None = None) -> None:
    """RQ's ``clean_registries``: the queue's expired finished and failed entries dropped, what
    RQ left in its ready registry settled, and its abandoned executions failed or retried (see
    ``registry_cleanup`` and ``recovery``). jobpool has no exception handlers: the argument is
    accepted, as RQ's, and unused."""
    clean_queue_registries(queue.connection, [queue.name])
    StartedJobRegistry(queue=queue).cleanup()


Job.model_classes.update(started=StartedJobRegistry, failed=FailedJobRegistry, finished=FinishedJobRegistry)
