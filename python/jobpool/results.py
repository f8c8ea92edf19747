"""Result: one entry of a job's results stream ``<prefix>:results:<job_id>``, as RQ writes it.

Fields: ``type`` (1 successful, 2 failed, 3 stopped, 4 retried, 5 max retries exceeded),
``worker_name``, ``return_value`` (base64 of the serialized value, absent for None),
``exc_string`` (base64 of zlib of the traceback text), ``execution_id`` and the execution's
start and end as epoch floats. The stream entry id gives ``created_at``.
"""

from __future__ import annotations

import zlib
from base64 import b64decode
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from redis import Redis

from . import keys
from .exceptions import DeserializationError
from .redis_values import as_fields, as_text
from .result_encoding import (
    UNSERIALIZABLE_RETURN_VALUE,
    encode_return_value,
    encode_traceback,
    format_exception,
)
from .serializers import Serializer, resolve_serializer
from .timeutils import from_epoch, utcnow

if TYPE_CHECKING:
    from redis.client import Pipeline

    from .job_hash import JobFields

__all__ = [
    "RESULTS_KEPT",
    "UNSERIALIZABLE_RETURN_VALUE",
    "Result",
    "encode_return_value",
    "encode_traceback",
    "format_exception",
]

RESULTS_KEPT = 10
"""A results stream's length: each new result trims it to the newest ten (as RQ's)."""


class Result:
    class Type(Enum):
        SUCCESSFUL = 1
        FAILED = 2
        STOPPED = 3
        RETRIED = 4
        MAX_RETRIES_EXCEEDED = 5

    def __init__(
        self,
        job_id: str,
        type: Result.Type,
        connection: Redis,
        id: str | None = None,
        created_at: datetime | None = None,
        return_value: Any = None,
        exc_string: str | None = None,
        worker_name: str = "",
        serializer: Serializer | str | None = None,
        execution_id: str | None = None,
        execution_started_at: datetime | None = None,
        execution_ended_at: datetime | None = None,
    ):
        self.job_id = job_id
        self.type = type
        self.connection = connection
        self.id = id
        self.created_at = created_at if created_at is not None else utcnow()
        self.return_value = return_value
        self.exc_string = exc_string
        self.worker_name = worker_name
        self.serializer = resolve_serializer(serializer)
        self.execution_id = execution_id
        self.execution_started_at = execution_started_at
        self.execution_ended_at = execution_ended_at

    def __repr__(self) -> str:
        return f"Result(id={self.id}, type={self.type.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __bool__(self) -> bool:
        return bool(self.id)

    @classmethod
    def get_key(cls, job_id: str) -> str:
        return keys.results(job_id)

    # ---- writing ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        job: JobFields,
        type: Result.Type,
        ttl: int | None,
        return_value: Any = None,
        exc_string: str | None = None,
        worker_name: str = "",
        pipeline: Pipeline | None = None,
        execution_id: str | None = None,
        execution_started_at: datetime | None = None,
        execution_ended_at: datetime | None = None,
    ) -> Result:
        """A new result of ``job``, saved (see ``save`` for ``ttl``)."""
        result = cls(
            job.id,
            type,
            connection=job.connection,
            return_value=return_value,
            exc_string=exc_string,
            worker_name=worker_name,
            serializer=job.serializer,
            execution_id=execution_id,
            execution_started_at=execution_started_at,
            execution_ended_at=execution_ended_at,
        )
        result.save(ttl=ttl, pipeline=pipeline)
        return result

    @classmethod
    def create_failure(
        cls,
        job: JobFields,
        ttl: int | None,
        exc_string: str | None,
        worker_name: str = "",
        pipeline: Pipeline | None = None,
        execution_id: str | None = None,
        execution_started_at: datetime | None = None,
        execution_ended_at: datetime | None = None,
    ) -> Result:
        return cls.create(
            job,
            cls.Type.FAILED,
            ttl,
            exc_string=exc_string,
            worker_name=worker_name,
            pipeline=pipeline,
            execution_id=execution_id,
            execution_started_at=execution_started_at,
            execution_ended_at=execution_ended_at,
        )

    @classmethod
    def create_retried(
        cls,
        job: JobFields,
        ttl: int | None,
        return_value: Any,
        worker_name: str,
        execution_id: str,
        execution_started_at: datetime,
        execution_ended_at: datetime,
        pipeline: Pipeline | None = None,
    ) -> Result:
        return cls.create(
            job,
            cls.Type.RETRIED,
            ttl,
            return_value=return_value,
            worker_name=worker_name,
            pipeline=pipeline,
            execution_id=execution_id,
            execution_started_at=execution_started_at,
            execution_ended_at=execution_ended_at,
        )

    @classmethod
    def create_max_retries_exceeded(
        cls,
        job: JobFields,
        ttl: int | None,
        return_value: Any,
        worker_name: str,
        execution_id: str,
        execution_started_at: datetime,
        execution_ended_at: datetime,
        pipeline: Pipeline | None = None,
    ) -> Result:
        return cls.create(
            job,
            cls.Type.MAX_RETRIES_EXCEEDED,
            ttl,
            return_value=return_value,
            worker_name=worker_name,
            pipeline=pipeline,
            execution_id=execution_id,
            execution_started_at=execution_started_at,
            execution_ended_at=execution_ended_at,
        )

    def save(self, ttl: int | None, pipeline: Pipeline | None = None) -> str | None:
        """Appends the result to its job's stream (trimmed to the newest ten) and returns its id
        (None in a pipeline: the id is known once it runs). ``ttl``: the stream's expiry in
        seconds; -1 keeps it for ever, None leaves its expiry as it is, 0 or less deletes it."""
        key = self.get_key(self.job_id)
        connection = pipeline if pipeline is not None else self.connection
        entry_id = connection.xadd(key, self.serialize(), maxlen=RESULTS_KEPT)  # type: ignore[arg-type]
        if pipeline is None:
            self.id = as_text(entry_id)
        if ttl == -1:
            connection.persist(key)
        elif ttl is not None:
            connection.expire(key, ttl)
        return self.id

    def serialize(self) -> dict[str, Any]:
        """The stream entry's fields, as RQ writes them (see the module docstring)."""
        data: dict[str, Any] = {"type": self.type.value, "worker_name": self.worker_name}
        if self.exc_string is not None:
            data["exc_string"] = encode_traceback(self.exc_string)[1].decode()
        encoded = encode_return_value(self.serializer, self.return_value)
        if encoded is not None:
            data["return_value"] = encoded.decode()
        if self.execution_id:
            data["execution_id"] = self.execution_id
        if self.execution_started_at:
            data["execution_started_at"] = self.execution_started_at.timestamp()
        if self.execution_ended_at:
            data["execution_ended_at"] = self.execution_ended_at.timestamp()
        return data

    # ---- reading ------------------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        job_id: str,
        result_id: str,
        payload: Any,
        connection: Redis,
        serializer: Serializer | str | None = None,
    ) -> Result:
        fields = as_fields(payload)
        serializer = resolve_serializer(serializer)
        try:
            return_value = fields.get("return_value")
            exc_string = fields.get("exc_string")
            started, ended = fields.get("execution_started_at"), fields.get("execution_ended_at")
            return cls(
                job_id,
                cls.Type(int(fields["type"])),
                connection=connection,
                id=result_id,
                created_at=from_epoch(int(result_id.split("-")[0]) / 1000),
                return_value=serializer.loads(b64decode(return_value)) if return_value is not None else None,
                exc_string=zlib.decompress(b64decode(exc_string)).decode() if exc_string else None,
                worker_name=fields["worker_name"].decode() if fields.get("worker_name") else "",
                serializer=serializer,
                execution_id=fields["execution_id"].decode() if fields.get("execution_id") else None,
                execution_started_at=from_epoch(float(started)) if started else None,
                execution_ended_at=from_epoch(float(ended)) if ended else None,
            )
        except Exception as exc:
            raise DeserializationError(f"Job {job_id}: result {result_id} cannot be decoded: {exc}") from exc

    @classmethod
    def all(cls, job: JobFields, serializer: Serializer | str | None = None) -> list[Result]:
        """Every stored result of the job, newest first."""
        entries: Any = job.connection.xrevrange(cls.get_key(job.id), "+", "-")
        return [
            cls.restore(job.id, as_text(entry_id), payload, job.connection, serializer or job.serializer)
            for entry_id, payload in entries
        ]

    @classmethod
    def count(cls, job: JobFields) -> int:
        return int(job.connection.xlen(cls.get_key(job.id)))

    @classmethod
    def delete_all(cls, job: JobFields) -> None:
        job.connection.delete(cls.get_key(job.id))

    @classmethod
    def fetch(cls, job: JobFields, serializer: Serializer | str | None = None) -> Result | None:
        """RQ 3.0's ``Result.fetch``, which returns None whatever the job has (it takes no
        result id to look up): use ``fetch_latest`` or ``all``."""
        return None

    @classmethod
    def fetch_latest(
        cls, job: JobFields, serializer: Serializer | str | None = None, timeout: int = 0
    ) -> Result | None:
        """The newest result; with a timeout (seconds), waits that long for a first one."""
        key = cls.get_key(job.id)
        if timeout:
            response: Any = job.connection.xread({key: "0-0"}, block=int(timeout * 1000))
            if not response:
                return None
            entry_id, payload = response[0][1][-1]
        else:
            entries: Any = job.connection.xrevrange(key, "+", "-", count=1)
            if not entries:
                return None
            entry_id, payload = entries[0]
        return cls.restore(job.id, as_text(entry_id), payload, job.connection, serializer or job.serializer)
