"""Execution: one run of a job by a worker, ``<prefix>:execution:<job_id>:<execution_id>``.

The hash holds ``id``, ``job_id``, ``created_at`` and ``last_heartbeat`` (epoch floats) and
``worker_name``; ``<prefix>:executions:<job_id>`` indexes a job's executions. Workers write them;
this module reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis import Redis

from . import keys
from .job import Job
from .redis_values import as_fields, as_texts
from .registry import BaseRegistry
from .timeutils import epoch_seconds, from_epoch, utcnow

if TYPE_CHECKING:
    from redis.client import Pipeline


class Execution:
    def __init__(self, id: str, job_id: str, connection: Redis, worker_name: str = ""):
        self.id = id
        self.job_id = job_id
        self.connection = connection
        self.worker_name = worker_name
        self.created_at: datetime = utcnow()
        self.last_heartbeat: datetime = self.created_at
        self._job: Job | None = None

    def __repr__(self) -> str:
        return f"Execution({self.composite_key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Execution) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def key(self) -> str:
        return keys.execution(self.job_id, self.id)

    @property
    def composite_key(self) -> str:
        return f"{self.job_id}:{self.id}"

    @property
    def job(self) -> Job:
        if self._job is None:
            self._job = Job.fetch(self.job_id, connection=self.connection)
        return self._job

    @classmethod
    def from_composite_key(cls, composite_key: str, connection: Redis) -> Execution:
        job_id, _, execution_id = composite_key.partition(":")
        return cls(execution_id, job_id, connection)

    @classmethod
    def fetch(cls, id: str, job_id: str, connection: Redis) -> Execution:
        execution = cls(id, job_id, connection)
        execution.refresh()
        return execution

    def refresh(self) -> None:
        raw = self.connection.hgetall(self.key)
        if not raw:
            raise ValueError(f"Execution {self.id} of job {self.job_id} not found")
        self.restore(raw)

    def restore(self, raw: Any) -> None:
        fields = as_fields(raw)
        self.job_id = fields.get("job_id", b"").decode() or self.job_id
        self.created_at = from_epoch(float(fields["created_at"]))
        self.last_heartbeat = from_epoch(float(fields["last_heartbeat"]))
        self.worker_name = fields.get("worker_name", b"").decode()

    @classmethod
    def all_of(cls, job: Job) -> list[Execution]:
        """The job's current executions, in one round trip after reading the index."""
        execution_ids = as_texts(job.connection.zrange(keys.executions(job.id), 0, -1))
        executions = cls._load(job.id, execution_ids, job.connection)
        for execution in executions:
            execution._job = job
        return executions

    @classmethod
    def _load(cls, job_id: str, execution_ids: list[str], connection: Redis) -> list[Execution]:
        """The executions of ``job_id`` with these ids whose hashes exist, in one round trip."""
        with connection.pipeline(transaction=False) as pipe:
            for execution_id in execution_ids:
                pipe.hgetall(keys.execution(job_id, execution_id))
            hashes = pipe.execute()
        executions = []
        for execution_id, raw in zip(execution_ids, hashes, strict=True):
            if raw:
                execution = cls(execution_id, job_id, connection)
                execution.restore(raw)
                executions.append(execution)
        return executions


class ExecutionRegistry(BaseRegistry):
    """RQ's index of a job's executions, ``<prefix>:executions:<job_id>``: execution ids scored
    by when their heartbeat lapses, plus 60 s (workers write it, jobpool's in its scripts)."""

    key_template = keys.positional_template("executions", "job_id")

    def __init__(self, job_id: str, connection: Redis):  # as RQ's: no queue, name or serializer
        self.connection = connection
        self.job_id = job_id
        self.key = self.key_template.format(job_id)

    def __repr__(self) -> str:
        return f"ExecutionRegistry({self.job_id!r})"

    def cleanup(self, timestamp: float | None = None, exception_handlers: list[Any] | None = None) -> None:
        """Drops the ids of executions lapsed by ``timestamp`` (default: now)."""
        self.connection.zremrangebyscore(self.key, 0, timestamp if timestamp is not None else epoch_seconds())

    def add(self, execution: Execution, ttl: int, pipeline: Pipeline, xx: bool = False) -> Any:  # type: ignore[override]
        """Adds ``execution`` (in ``pipeline``) lapsing in ``ttl`` + 60 s, and keeps the index that
        long, as RQ's."""
        pipeline.zadd(self.key, {execution.id: epoch_seconds() + ttl + 60}, xx=xx)
        pipeline.expire(self.key, ttl + 60)

    def remove(self, execution: Execution, pipeline: Pipeline) -> Any:  # type: ignore[override]
        return pipeline.zrem(self.key, execution.id)

    def get_execution_ids(self, start: int = 0, end: int = -1) -> list[str]:
        """The ids (after ``cleanup``), the soonest to lapse first."""
        self.cleanup()
        return as_texts(self.connection.zrange(self.key, start, end))

    def get_executions(self, start: int = 0, end: int = -1) -> list[Execution]:
        """The executions whose hashes exist (RQ's raises ValueError for one whose hash is gone)."""
        return Execution._load(self.job_id, self.get_execution_ids(start, end), self.connection)

    def delete(self, job: Job, pipeline: Pipeline) -> None:
        """Deletes the job's executions (hashes, started-registry members, worker entries) and
        this index, in ``pipeline`` (one script: see ``Job.delete``)."""
        job._remove_executions(pipeline, delete=True)


Job.model_classes.update(execution=Execution, executions=ExecutionRegistry)
