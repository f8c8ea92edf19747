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
from .redis_values import as_fields, as_texts
from .timeutils import from_epoch, utcnow

if TYPE_CHECKING:
    from .job import Job


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
            from .job import Job

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
        with job.connection.pipeline(transaction=False) as pipe:
            for execution_id in execution_ids:
                pipe.hgetall(keys.execution(job.id, execution_id))
            hashes = pipe.execute()
        executions = []
        for execution_id, raw in zip(execution_ids, hashes, strict=True):
            if raw:
                execution = cls(execution_id, job.id, job.connection)
                execution.restore(raw)
                execution._job = job
                executions.append(execution)
        return executions
