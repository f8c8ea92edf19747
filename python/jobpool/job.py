"""Job: one call of a function, stored as RQ's job hash ``<prefix>:job:<id>``.

The hash layout and encodings are RQ 3.0's (see ``to_dict``/``restore``): a job written by
either library is read and run by the other. Fields jobpool does not model (those of a later RQ,
say) are kept as read and written back unchanged.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Coroutine, Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from redis import Redis

from . import keys, rate_limit, scripts
from .callbacks import DEFAULT_CALLBACK_TIMEOUT, Callback
from .durations import parse_timeout, parse_ttl
from .exceptions import (
    DeserializationError,
    InvalidJobDependency,
    InvalidJobId,
    InvalidJobOperation,
    NoSuchJobError,
    SerializationError,
    TimeoutFormatError,
)
from .functions import call_string, import_attribute, resolve_function_reference
from .redis_values import as_fields, as_text, as_texts
from .results import UNSERIALIZABLE_RETURN_VALUE
from .retry import Retry, check_intervals, check_retries, next_retry_interval
from .serializers import Serializer, resolve_serializer
from .timeutils import epoch_seconds, utcformat, utcnow, utcparse
from .webhook import Webhook, check_webhooks, decode_webhooks, encode_webhooks

if TYPE_CHECKING:
    from redis.client import Pipeline

    from .executions import Execution, ExecutionRegistry
    from .results import Result

__all__ = [
    "Callback",
    "Dependency",
    "Job",
    "JobStatus",
    "Retry",
    "cancel_job",
    "get_current_job",
    "requeue_job",
]

_ALLOWED_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

_current_job: ContextVar[Job | None] = ContextVar("jobpool_current_job", default=None)


class JobStatus(str, Enum):
    CREATED = "created"
    QUEUED = "queued"
    FINISHED = "finished"
    FAILED = "failed"
    STARTED = "started"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    STOPPED = "stopped"
    CANCELED = "canceled"
    READY_TO_ENQUEUE = "ready_to_enqueue"
    RATE_LIMITED = "rate_limited"


# The registries a job id may be a member of (the started registry holds executions instead).
_JOB_REGISTRIES = ("finished", "failed", "deferred", "scheduled", "canceled", "ready")


def validate_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str):
        raise InvalidJobId(f"A job id must be a string, not {type(job_id).__name__}")
    if not job_id or not _ALLOWED_ID_CHARS.issuperset(job_id):
        raise InvalidJobId(f"Job id {job_id!r} may only contain letters, digits, '_' and '-'")
    return job_id


class Dependency:
    """What a job waits for: ``Dependency(jobs, allow_failure=False, enqueue_at_front=False)``."""

    def __init__(
        self,
        jobs: Job | str | Sequence[Job | str],
        allow_failure: bool = False,
        enqueue_at_front: bool = False,
    ):
        listed = [jobs] if isinstance(jobs, (Job, str)) else list(jobs)
        if not listed:
            raise InvalidJobDependency("Dependency needs at least one job or job id")
        for item in listed:
            if not isinstance(item, (Job, str)):
                raise InvalidJobDependency(f"A dependency must be a Job or a job id, not {item!r}")
        self.dependencies = listed
        self.allow_failure = allow_failure
        self.enqueue_at_front = enqueue_at_front

    @property
    def job_ids(self) -> list[str]:
        return [item.id if isinstance(item, Job) else validate_job_id(item) for item in self.dependencies]


def parse_depends_on(depends_on: Any) -> tuple[list[str], bool | None, bool | None]:
    """(parent ids, allow failure, enqueue at front) from ``depends_on`` as users pass it: a Job,
    an id, a Dependency, or a list of those. As in RQ, the flags of any Dependency apply to the
    whole, and stay None (unwritten) when no Dependency is given."""
    items = depends_on if isinstance(depends_on, (list, tuple)) else [depends_on]
    parent_ids: list[str] = []
    allow_failure: bool | None = None
    enqueue_at_front: bool | None = None
    for item in items:
        if isinstance(item, Dependency):
            parent_ids.extend(item.job_ids)
            allow_failure = allow_failure or item.allow_failure
            enqueue_at_front = enqueue_at_front or item.enqueue_at_front
        elif isinstance(item, Job):
            parent_ids.append(item.id)
        elif isinstance(item, str):
            parent_ids.append(validate_job_id(item))
        else:
            raise InvalidJobDependency(f"depends_on takes Jobs, job ids or Dependency objects, not {item!r}")
    if not parent_ids:
        raise InvalidJobDependency("depends_on was given no job")
    return parent_ids, allow_failure, enqueue_at_front


class _Unread:
    """The function tuple of a fetched job before its data is decoded."""


_UNREAD = _Unread()


class _Timestamp:
    """A job timestamp attribute, kept as its hash text until first read (a worker restores a
    job per run and reads few of them)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.text_name = name, f"_{name}_text"

    def __get__(self, job: Any, owner: type | None = None) -> Any:
        if job is None:
            return self
        values = job.__dict__
        if self.name not in values:
            text = values.pop(self.text_name, None)
            values[self.name] = utcparse(text) if text else None
        return values[self.name]

    def __set__(self, job: Any, value: datetime | None) -> None:
        job.__dict__[self.name] = value
        job.__dict__.pop(self.text_name, None)

    @staticmethod
    def set_text(job: Any, name: str, text: str | None) -> None:
        """Sets attribute ``name`` from hash text, to be parsed when read."""
        job.__dict__.pop(name, None)
        job.__dict__[f"_{name}_text"] = text


class Job:
    redis_job_namespace_prefix = keys.job("")
    """``<prefix>:job:``, as RQ's class attribute (the prefix is read once, at import)."""
    enqueued_at = _Timestamp()
    started_at = _Timestamp()
    ended_at = _Timestamp()
    last_heartbeat = _Timestamp()

    def __init__(
        self,
        id: str | None = None,
        connection: Redis | None = None,
        serializer: Serializer | str | None = None,
    ):
        if connection is None:
            raise TypeError("Job needs a Redis connection")
        self.connection: Redis = connection
        self.serializer: Serializer = resolve_serializer(serializer)
        self._id = validate_job_id(id) if id is not None else None
        self.created_at: datetime = utcnow()
        self._status: JobStatus | None = JobStatus.CREATED
        self._data: bytes | None = None
        self._func_name: str | _Unread | None = None
        self._instance: Any = None
        self._args: Any = ()
        self._kwargs: Any = {}
        self.origin = ""
        self.description: str | None = None
        self.enqueued_at = None
        self.started_at = None
        self.ended_at = None
        self.last_heartbeat = None
        self.worker_name: str | None = None
        self.group_id: str | None = None
        self.webhooks: list[Webhook] = []
        self.timeout: int | None = None
        self.result_ttl: int | None = None
        self.failure_ttl: int | None = None
        self.ttl: int | None = None
        self.meta: dict[str, Any] = {}
        self._unreadable_meta: bytes | None = None
        self._dependency_ids: list[str] = []
        self.allow_dependency_failures: bool | None = None
        self.enqueue_at_front: bool | None = None
        self.retries_left: int | None = None
        self.retry_intervals: list[int] | None = None
        self.enqueue_at_front_on_retry = False
        self.number_of_retries: int | None = None
        self.repeats_left: int | None = None
        self.repeat_intervals: list[int] | None = None
        self.rate_limit_key: str | None = None
        self.rate_limit_concurrency: int | None = None
        self._success_callback_name: str | None = None
        self._failure_callback_name: str | None = None
        self._stopped_callback_name: str | None = None
        self._success_callback_timeout: int | None = None
        self._failure_callback_timeout: int | None = None
        self._stopped_callback_timeout: int | None = None
        self._exc_info: str | None = None
        self._legacy_result: Any = None
        self._other_fields: dict[str, bytes] = {}
        self._cached_result: Result | None = None

    # ---- creation ------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        func: Any,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        connection: Redis | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        status: JobStatus | None = None,
        description: str | None = None,
        depends_on: Any = None,
        timeout: int | str | None = None,
        retry: Retry | None = None,
        id: str | None = None,
        origin: str = "",
        meta: dict[str, Any] | None = None,
        failure_ttl: int | str | None = None,
        serializer: Serializer | str | None = None,
        group_id: str | None = None,
        *,
        on_success: Callback | None = None,
        on_failure: Callback | None = None,
        on_stopped: Callback | None = None,
        webhooks: Sequence[Webhook] | None = None,
        for_worker: bool = True,
    ) -> Job:
        """A new job, validated and encoded but not saved: every bad input raises here,
        before anything is written. ``for_worker`` False: its producer runs it (see
        ``functions.resolve_function_reference``)."""
        args = () if args is None else args
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple or a list, not {type(args).__name__}")
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a dict, not {type(kwargs).__name__}")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
        job = cls(id=id, connection=connection, serializer=serializer)
        job.origin = origin
        job._instance, job._func_name = resolve_function_reference(func, for_worker)
        job._args, job._kwargs = args, kwargs
        for kind, callback in (("success", on_success), ("failure", on_failure), ("stopped", on_stopped)):
            if callback is None:
                continue
            if not isinstance(callback, Callback):
                callback = Callback(callback)
            setattr(job, f"_{kind}_callback_name", callback.name)
            setattr(job, f"_{kind}_callback_timeout", callback.timeout)
        job.timeout = parse_timeout(timeout)
        job.result_ttl = parse_ttl(result_ttl, "result_ttl")
        job.failure_ttl = parse_ttl(failure_ttl, "failure_ttl")
        job.ttl = _parse_job_ttl(ttl)
        job.meta = dict(meta or {})
        job.group_id = group_id
        job.webhooks = check_webhooks(webhooks)
        if retry is not None:
            if not isinstance(retry, Retry):
                raise TypeError(f"retry must be a Retry, not {type(retry).__name__}")
            job.retries_left = retry.max
            job.retry_intervals = retry.intervals
            job.enqueue_at_front_on_retry = retry.enqueue_at_front
        if depends_on is not None:
            job._dependency_ids, job.allow_dependency_failures, job.enqueue_at_front = parse_depends_on(
                depends_on
            )
        job.description = description or job.get_call_string()
        job._data = job._encode_data()
        job._serialize_meta()  # raises SerializationError now rather than at save time
        if status is not None:
            job._status = JobStatus(status)
        elif job._dependency_ids:
            job._status = JobStatus.DEFERRED
        return job

    # ---- identity and keys ---------------------------------------------------------------

    @property
    def id(self) -> str:
        if self._id is None:
            self._id = str(uuid4())
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = validate_job_id(value)

    @classmethod
    def key_for(cls, job_id: str) -> str:
        return keys.job(job_id)

    @classmethod
    def dependents_key_for(cls, job_id: str) -> str:
        return keys.job_dependents(job_id)

    @property
    def key(self) -> str:
        return keys.job(self.id)

    @property
    def dependents_key(self) -> str:
        return keys.job_dependents(self.id)

    @property
    def dependencies_key(self) -> str:
        return keys.job_dependencies(self.id)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, enqueued_at={self.enqueued_at!r})"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self.id}: {self.description}>"

    def get_ttl(self, default_ttl: int | None = None) -> int | None:
        """How long the job is kept while it waits: its ``ttl``, else ``default_ttl`` (as RQ)."""
        return default_ttl if self.ttl is None else self.ttl

    def get_result_ttl(self, default_ttl: int | None = None) -> int | None:
        """How long its result is kept: its ``result_ttl``, else ``default_ttl`` (as RQ)."""
        return default_ttl if self.result_ttl is None else self.result_ttl

    def dependencies_are_met(
        self,
        parent_job: Job | None = None,
        pipeline: Pipeline | None = None,
        exclude_job_id: str | None = None,
        refresh_job_status: bool = True,
    ) -> bool:
        """Whether every parent in the job's dependencies set lets it run, by RQ's rule: finished
        (or failed, for a job that allows failures); a parent whose hash is gone counts as met.
        ``parent_job`` is judged by its status as given (canceled or stopped: not met);
        ``exclude_job_id`` is left out; with ``pipeline`` the parents are WATCHed first."""
        connection = pipeline if pipeline is not None else self.connection
        if pipeline is not None:
            pipeline.watch(*(keys.job(parent) for parent in self.dependency_ids))
        parent_ids = {as_text(member) for member in connection.smembers(self.dependencies_key)}
        parent_ids.discard(exclude_job_id or "")
        allowed = {JobStatus.FINISHED.value} | (
            {JobStatus.FAILED.value} if self.allow_dependency_failures else set()
        )
        if parent_job is not None and parent_job.id != exclude_job_id:
            parent_ids.discard(parent_job.id)
            status = parent_job.get_status(refresh=refresh_job_status)
            if status is not None and JobStatus(status).value not in allowed:
                return False
        statuses = [connection.hget(keys.job(parent), "status") for parent in sorted(parent_ids)]
        return all(as_text(status) in allowed for status in statuses if status)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    # ---- the function call ----------------------------------------------------------------

    def _encode_data(self) -> bytes:
        if self.func_name is None:
            raise ValueError(
                f"Job {self.id}: no function, so its data cannot be built (as RQ: save a Job.create()d job)"
            )
        try:
            return self.serializer.dumps((self.func_name, self._instance, self._args, self._kwargs))
        except Exception as exc:
            raise SerializationError(
                f"Job {self.id}: {_serializer_name(self.serializer)} cannot encode the arguments: {exc}"
            ) from exc

    def _decode_data(self) -> None:
        if not isinstance(self._func_name, _Unread):
            return
        try:
            func_name, instance, args, kwargs = self.serializer.loads(self._data or b"")
        except Exception as exc:
            raise DeserializationError(
                f"Job {self.id}: its data cannot be decoded with {_serializer_name(self.serializer)}: {exc}"
            ) from exc
        self._func_name, self._instance, self._args, self._kwargs = func_name, instance, args, kwargs

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self._encode_data()
        return self._data

    @data.setter
    def data(self, value: bytes) -> None:
        """The serialized ``(func_name, instance, args, kwargs)``, decoded when first read."""
        self._data, self._func_name = value, _UNREAD

    @property
    def func_name(self) -> str | None:
        self._decode_data()
        return self._func_name  # type: ignore[return-value]

    @func_name.setter
    def func_name(self, value: str | None) -> None:
        self._decode_data()  # unlike RQ's setter, the arguments are kept (RQ's drops unread ones)
        self._func_name, self._data = value, None

    @property
    def instance(self) -> Any:
        self._decode_data()
        return self._instance

    @instance.setter
    def instance(self, value: Any) -> None:
        self._decode_data()
        self._instance, self._data = value, None

    @property
    def args(self) -> tuple[Any, ...] | list[Any]:
        self._decode_data()
        return self._args

    @args.setter
    def args(self, value: tuple[Any, ...] | list[Any]) -> None:
        self._decode_data()
        self._args, self._data = value, None

    @property
    def kwargs(self) -> dict[str, Any]:
        self._decode_data()
        return self._kwargs

    @kwargs.setter
    def kwargs(self, value: dict[str, Any]) -> None:
        self._decode_data()
        self._kwargs, self._data = value, None

    @property
    def func(self) -> Any:
        """The callable itself (importing its module)."""
        func_name = self.func_name
        if func_name is None:
            return None
        if self.instance is not None:
            return getattr(self.instance, func_name)
        return import_attribute(func_name)

    def get_call_string(self) -> str | None:
        return call_string(self.func_name, self.args, self.kwargs)

    def perform(self) -> Any:
        """Calls the function with the job's arguments, as the current job. A coroutine it
        returns (an ``async def`` job) runs to completion in a new event loop, as RQ runs it
        (``asyncio.run``): a timeout or stop raised inside the loop ends it like any job."""
        token = _current_job.set(self)
        try:
            value = self.func(*self.args, **self.kwargs)
            if isinstance(value, Coroutine):
                return asyncio.run(value)
            return value
        finally:
            _current_job.reset(token)

    # ---- callbacks ----------------------------------------------------------------------------

    def _callback(self, name: str | None) -> Any:
        return import_attribute(name) if name else None

    @property
    def success_callback(self) -> Any:
        return self._callback(self._success_callback_name)

    @property
    def failure_callback(self) -> Any:
        return self._callback(self._failure_callback_name)

    @property
    def stopped_callback(self) -> Any:
        return self._callback(self._stopped_callback_name)

    @property
    def success_callback_timeout(self) -> int:
        timeout = self._success_callback_timeout
        return DEFAULT_CALLBACK_TIMEOUT if timeout is None else timeout

    @property
    def failure_callback_timeout(self) -> int:
        timeout = self._failure_callback_timeout
        return DEFAULT_CALLBACK_TIMEOUT if timeout is None else timeout

    @property
    def stopped_callback_timeout(self) -> int:
        timeout = self._stopped_callback_timeout
        return DEFAULT_CALLBACK_TIMEOUT if timeout is None else timeout

    def send_webhooks(self, status: str, *, exc_string: str | None = None) -> None:
        """Sends, now, each of the job's webhooks for ``status`` (``finished`` or ``failed``;
        ``exc_string`` goes in a failed one's payload). Failures are logged, never raised."""
        for webhook in self.webhooks:
            if webhook.job_status == status:
                webhook.send(self, exc_string=exc_string)

    # ---- status ------------------------------------------------------------------------------

    def get_status(self, refresh: bool = True) -> JobStatus | None:
        """The job's status (as read from Redis with ``refresh``, else as last known). As RQ's:
        InvalidJobOperation when its hash (or its status) is gone, so a deleted job's ``is_*``
        raise it too."""
        if refresh:
            raw = self.connection.hget(self.key, "status")
            if not raw:
                raise InvalidJobOperation(f"Failed to retrieve status for job: {self.id}")
            self._status = JobStatus(as_text(raw))
        return self._status

    def set_status(self, status: JobStatus, pipeline: Pipeline | None = None) -> None:
        self._status = JobStatus(status)
        (pipeline if pipeline is not None else self.connection).hset(self.key, "status", self._status.value)

    @property
    def is_created(self) -> bool:
        return self.get_status() == JobStatus.CREATED

    @property
    def is_queued(self) -> bool:
        return self.get_status() == JobStatus.QUEUED

    @property
    def is_started(self) -> bool:
        return self.get_status() == JobStatus.STARTED

    @property
    def is_finished(self) -> bool:
        return self.get_status() == JobStatus.FINISHED

    @property
    def is_failed(self) -> bool:
        return self.get_status() == JobStatus.FAILED

    @property
    def is_deferred(self) -> bool:
        return self.get_status() == JobStatus.DEFERRED

    @property
    def is_scheduled(self) -> bool:
        return self.get_status() == JobStatus.SCHEDULED

    @property
    def is_stopped(self) -> bool:
        return self.get_status() == JobStatus.STOPPED

    @property
    def is_canceled(self) -> bool:
        return self.get_status() == JobStatus.CANCELED

    @property
    def is_ready_to_enqueue(self) -> bool:
        return self.get_status() == JobStatus.READY_TO_ENQUEUE

    @property
    def has_rate_limit(self) -> bool:
        """Whether the job has a rate limit (RQ's test: a key and a concurrency)."""
        return bool(self.rate_limit_key and self.rate_limit_concurrency)

    # ---- meta --------------------------------------------------------------------------------

    def _serialize_meta(self) -> bytes:
        if self._unreadable_meta is not None and self.meta == {"unserialized": self._unreadable_meta}:
            return self._unreadable_meta
        try:
            return self.serializer.dumps(self.meta)
        except Exception as exc:
            raise SerializationError(
                f"Job {self.id}: {_serializer_name(self.serializer)} cannot encode its meta: {exc}"
            ) from exc

    def get_meta(self, refresh: bool = True) -> dict[str, Any]:
        if refresh:
            raw = self.connection.hget(self.key, "meta")
            self.meta = self._decode_meta(raw) if isinstance(raw, bytes) and raw else {}
        return self.meta

    def save_meta(self) -> None:
        self.connection.hset(self.key, "meta", self._serialize_meta())

    def _decode_meta(self, raw: bytes) -> dict[str, Any]:
        try:
            self._unreadable_meta = None
            return self.serializer.loads(raw)
        except Exception:
            self._unreadable_meta = raw
            return {"unserialized": raw}

    # ---- the hash --------------------------------------------------------------------------

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, Any]:
        """The job hash's fields, encoded as RQ writes them."""
        fields: dict[str, Any] = dict(self._other_fields)
        fields.update(
            created_at=utcformat(self.created_at),
            data=zlib.compress(self.data),
            success_callback_name=self._success_callback_name or "",
            failure_callback_name=self._failure_callback_name or "",
            stopped_callback_name=self._stopped_callback_name or "",
            started_at=utcformat(self.started_at) if self.started_at else "",
            ended_at=utcformat(self.ended_at) if self.ended_at else "",
            last_heartbeat=utcformat(self.last_heartbeat) if self.last_heartbeat else "",
            worker_name=self.worker_name or "",
            group_id=self.group_id or "",
        )
        optional: dict[str, Any] = {
            "number_of_retries": self.number_of_retries,
            "retries_left": self.retries_left,
            "retry_intervals": json.dumps(self.retry_intervals) if self.retry_intervals is not None else None,
            "enqueue_at_front_on_retry": 1 if self.enqueue_at_front_on_retry else None,
            "repeats_left": self.repeats_left,
            "repeat_intervals": json.dumps(self.repeat_intervals)
            if self.repeat_intervals is not None
            else None,
            "rate_limit_key": self.rate_limit_key or None,
            "rate_limit_concurrency": self.rate_limit_concurrency or None,
            "origin": self.origin or None,
            "description": self.description,
            "enqueued_at": utcformat(self.enqueued_at) if self.enqueued_at else None,
            "timeout": self.timeout,
            "success_callback_timeout": self._success_callback_timeout,
            "failure_callback_timeout": self._failure_callback_timeout,
            "stopped_callback_timeout": self._stopped_callback_timeout,
            "result_ttl": self.result_ttl,
            "failure_ttl": self.failure_ttl,
            "ttl": self.ttl or None,
        }
        if include_result:
            if self._exc_info is not None:
                optional["exc_info"] = zlib.compress(self._exc_info.encode())
            if self._legacy_result is not None:
                optional["result"] = self.serializer.dumps(self._legacy_result)
        if self._dependency_ids:
            optional["dependency_id"] = self._dependency_ids[0]
            optional["dependency_ids"] = json.dumps(self._dependency_ids)
        if self.meta and include_meta:
            optional["meta"] = self._serialize_meta()
        if self.webhooks:
            optional["webhooks"] = encode_webhooks(self.webhooks)
        if self.allow_dependency_failures is not None:
            optional["allow_dependency_failures"] = int(self.allow_dependency_failures)
        if self.enqueue_at_front is not None:
            optional["enqueue_at_front"] = int(self.enqueue_at_front)
        fields.update((name, value) for name, value in optional.items() if value is not None)
        if self._status is not None:
            fields["status"] = self._status.value
        return fields

    def restore(self, raw: Any) -> None:
        """Loads the job from its hash; raises DeserializationError naming the job and the
        field when the hash is not one RQ or jobpool could have written."""
        fields = raw if _has_text_names(raw) else as_fields(raw)
        if "data" not in fields:
            raise DeserializationError(f"Job {self.id}: its hash has no data field")
        try:
            _restore_fields(self, fields)
        except DeserializationError:
            raise
        except (ValueError, TypeError, KeyError, zlib.error, UnicodeDecodeError) as exc:
            raise DeserializationError(f"Job {self.id}: its hash is corrupt ({exc})") from exc

    def _check_numbers(self) -> None:
        """Raises TimeoutFormatError or InvalidRetry for a number Redis or a worker would refuse
        (set on the job directly rather than through ``create``), before anything is written:
        the enqueue script would otherwise fail halfway, its first writes kept."""
        parse_timeout(self.timeout)
        parse_ttl(self.result_ttl, "result_ttl")
        parse_ttl(self.failure_ttl, "failure_ttl")
        _parse_job_ttl(self.ttl)
        if self.retries_left is not None:
            check_retries(self.retries_left)
        if self.retry_intervals is not None:
            check_intervals(self.retry_intervals)

    def save(
        self, pipeline: Pipeline | None = None, include_meta: bool = True, include_result: bool = True
    ) -> None:
        """Writes the whole hash (the job's TTL, if any, is applied)."""
        _parse_job_ttl(self.ttl)  # before the hash is written, so an EXPIRE cannot fail after it
        connection = pipeline if pipeline is not None else self.connection
        connection.hset(self.key, mapping=self.to_dict(include_meta, include_result))  # type: ignore[arg-type]
        if self.ttl:
            connection.expire(self.key, self.ttl)

    def refresh(self) -> None:
        raw = self.connection.hgetall(self.key)
        if not raw:
            raise NoSuchJobError(f"No such job: {self.id}")
        self.restore(raw)

    @classmethod
    def fetch(cls, id: str, connection: Redis, serializer: Serializer | str | None = None) -> Job:
        """The job with this id (or ``<job_id>:<execution_id>``); NoSuchJobError if there is none."""
        job_id = id.split(":", 1)[0] if isinstance(id, str) else id
        if not isinstance(job_id, str) or not _ALLOWED_ID_CHARS.issuperset(job_id) or not job_id:
            raise NoSuchJobError(f"No such job: {id!r} (not a valid job id)")
        job = cls(job_id, connection=connection, serializer=serializer)
        job.refresh()
        return job

    @classmethod
    def fetch_many(
        cls, job_ids: Iterable[str], connection: Redis, serializer: Serializer | str | None = None
    ) -> list[Job | None]:
        """The jobs for these ids in one round trip, None where there is none."""
        ids = list(job_ids)
        with connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            hashes = pipe.execute()
        jobs: list[Job | None] = []
        for job_id, raw in zip(ids, hashes, strict=True):
            if not raw:
                jobs.append(None)
                continue
            job = cls(job_id, connection=connection, serializer=serializer)
            job.restore(raw)
            jobs.append(job)
        return jobs

    @classmethod
    def exists(cls, job_id: str, connection: Redis) -> bool:
        return bool(connection.exists(keys.job(job_id)))

    # ---- dependencies ----------------------------------------------------------------------

    @property
    def dependency_ids(self) -> list[str]:
        return list(self._dependency_ids)

    @property
    def dependency(self) -> Job | None:
        """The first job this one depends on (RQ's legacy single dependency)."""
        if not self._dependency_ids:
            return None
        return Job.fetch(self._dependency_ids[0], self.connection, self.serializer)

    def fetch_dependencies(self) -> list[Job]:
        return [job for job in Job.fetch_many(self._dependency_ids, self.connection, self.serializer) if job]

    @property
    def dependent_ids(self) -> list[str]:
        return sorted(as_texts(self.connection.smembers(self.dependents_key)))

    # ---- results and executions -------------------------------------------------------------

    def latest_result(self, timeout: int = 0) -> Result | None:
        from .results import Result

        return Result.fetch_latest(self, serializer=self.serializer, timeout=timeout)

    def results(self) -> list[Result]:
        from .results import Result

        return Result.all(self, serializer=self.serializer)

    def return_value(self, refresh: bool = False) -> Any:
        """The value the latest successful execution returned (None before one exists)."""
        from .results import Result

        if refresh or self._cached_result is None:
            self._cached_result = self.latest_result()
        if self._cached_result is not None and self._cached_result.type == Result.Type.SUCCESSFUL:
            return self._cached_result.return_value
        return None

    @property
    def result(self) -> Any:
        """Deprecated in RQ: the return value (from the results stream, or a legacy hash field)."""
        if self._legacy_result is not None:
            return self._legacy_result
        return self.return_value(refresh=True)

    @property
    def exc_info(self) -> str | None:
        """The traceback text of the latest failure (from the results stream, or the hash)."""
        from .results import Result

        latest = self.latest_result()
        if latest is not None and latest.type == Result.Type.FAILED:
            return latest.exc_string
        return self._exc_info

    def get_executions(self) -> list[Execution]:
        from .executions import Execution

        return Execution.all_of(self)

    @property
    def execution_registry(self) -> ExecutionRegistry:
        from .executions import ExecutionRegistry

        return ExecutionRegistry(self.id, connection=self.connection)

    def get_position(self) -> int | None:
        """Where the job stands in its queue (0 is next), or None if it is not in it."""
        position = self.connection.lpos(keys.queue(self.origin), self.id)
        return int(position) if position is not None else None  # type: ignore[arg-type]

    def _registry(self, class_name: str) -> Any:
        from . import registry

        registry_class = getattr(registry, class_name)
        return registry_class(
            self.origin, connection=self.connection, job_class=type(self), serializer=self.serializer
        )

    @property
    def started_job_registry(self) -> Any:
        return self._registry("StartedJobRegistry")

    @property
    def failed_job_registry(self) -> Any:
        return self._registry("FailedJobRegistry")

    @property
    def finished_job_registry(self) -> Any:
        return self._registry("FinishedJobRegistry")

    # ---- retries ------------------------------------------------------------------------------

    @property
    def should_retry(self) -> bool:
        """Whether a failure now would run the job again (it has retries left)."""
        return bool(self.retries_left and self.retries_left > 0)

    def get_retry_interval(self) -> int:
        """Seconds before the job's next retry (0: back onto its queue at once), by RQ's rule:
        0 for a job without retry intervals; InvalidJobOperation for one with intervals and no
        retries left (RQ's fails an assert)."""
        if self.retry_intervals is None:
            return 0
        if not self.should_retry:
            raise InvalidJobOperation(f"Job {self.id} has no retries left")
        return next_retry_interval(self.retry_intervals, self.retries_left or 0)

    # ---- state changes --------------------------------------------------------------------------

    def cancel(
        self,
        pipeline: Pipeline | None = None,
        enqueue_dependents: bool = False,
        remove_from_dependencies: bool = False,
    ) -> None:
        """Takes the job out of its queue and registries into the canceled registry. With
        ``enqueue_dependents``, as in RQ, this job no longer holds its dependents back: each
        whose other parents are met is enqueued, in the same transaction."""
        status = self.get_status()
        if status == JobStatus.CANCELED:
            raise InvalidJobOperation(f"Cannot cancel already canceled job: {self.id}")
        if pipeline is not None and self.has_rate_limit:
            # As RQ: its slot would be freed only once the caller executes the pipeline.
            raise InvalidJobOperation("Cannot cancel a rate-limited job with a caller-supplied pipeline")
        pipe = pipeline if pipeline is not None else self.connection.pipeline()
        pipe.lrem(keys.queue(self.origin), 0, self.id)
        for kind in _JOB_REGISTRIES:
            pipe.zrem(keys.registry(kind, self.origin), self.id)
        self._remove_executions(pipe, delete=False)
        self.set_status(JobStatus.CANCELED, pipeline=pipe)
        pipe.zadd(keys.registry("canceled", self.origin), {self.id: epoch_seconds()})
        if remove_from_dependencies:
            for parent_id in self._dependency_ids:
                pipe.srem(keys.job_dependents(parent_id), self.id)
        if enqueue_dependents:
            release_dependents(pipe, self.id, skip_parent=True)
        if self.has_rate_limit:
            self._leave_rate_limit(pipe, running=status == JobStatus.STARTED)
        if pipeline is None:
            pipe.execute()

    def _leave_rate_limit(self, pipeline: Pipeline, running: bool) -> None:
        """Takes the job out of its rate limit, in ``pipeline`` after its cancel or delete: out of
        the waiting set, and its slot freed unless it is still running. A running job's slot is
        freed by its worker's record of its end (lua/finish.lua, fail.lua) when it is canceled,
        by the pool's maintenance (rate_limit.clean_rate_limits) when it is deleted, as RQ's
        cleanup frees it."""
        assert self.rate_limit_key
        if running:
            pipeline.zrem(keys.rate_limit_waiting(self.rate_limit_key), self.id)
        else:
            rate_limit.release(pipeline, self.id, self.rate_limit_key)

    def _remove_executions(self, pipeline: Pipeline, delete: bool) -> None:
        """Takes the job's executions out of the started registry, in ``pipeline`` (one script,
        so a worker cannot take the job between reading them and removing them), as RQ does for a
        started job it cancels or deletes; with ``delete``, deletes them too. The worker running
        the job then records nothing about it when it ends."""
        scripts.run(
            "remove_executions",
            pipeline,
            keys=[keys.executions(self.id), keys.registry("started", self.origin)],
            args=[
                self.id,
                keys.execution(self.id, scripts.ID_MARK),
                keys.worker_executions(scripts.ID_MARK),
                "1" if delete else "0",
            ],
        )

    def requeue(self, at_front: bool = False) -> Job:
        """Puts a failed job back on its queue (InvalidJobOperation if it is not failed)."""
        from .registry import FailedJobRegistry

        return FailedJobRegistry(self.origin, connection=self.connection, serializer=self.serializer).requeue(
            self, at_front=at_front
        )

    def delete(
        self,
        pipeline: Pipeline | None = None,
        remove_from_queue: bool = True,
        delete_dependents: bool = False,
    ) -> None:
        """Deletes the job's hash, results and dependency sets, and its id from its queue,
        registries and group (and its rate limit: see ``_leave_rate_limit``; with a caller's
        pipeline, as RQ, only its waiting entry goes, the pool's maintenance freeing its slot)."""
        running = False
        if self.has_rate_limit and pipeline is None:
            running = self.get_status() == JobStatus.STARTED
        pipe = pipeline if pipeline is not None else self.connection.pipeline()
        if delete_dependents:
            self.delete_dependents(pipeline=pipe)
        if remove_from_queue:
            pipe.lrem(keys.queue(self.origin), 0, self.id)
        for kind in _JOB_REGISTRIES:
            pipe.zrem(keys.registry(kind, self.origin), self.id)
        self._remove_executions(pipe, delete=True)
        for parent_id in self._dependency_ids:
            pipe.srem(keys.job_dependents(parent_id), self.id)
        if self.group_id:
            pipe.srem(keys.group(self.group_id), self.id)
        pipe.delete(self.key, self.dependents_key, self.dependencies_key, keys.results(self.id))
        if self.has_rate_limit:
            self._leave_rate_limit(pipe, running=running or pipeline is not None)
        if pipeline is None:
            pipe.execute()

    def delete_dependents(self, pipeline: Pipeline | None = None) -> None:
        """Deletes the jobs that depend on this one (as ``delete``, leaving their ids on their
        queues, as RQ's), and this job's set of dependents."""
        pipe = pipeline if pipeline is not None else self.connection.pipeline()
        for dependent in Job.fetch_many(self.dependent_ids, self.connection, self.serializer):
            if dependent is not None:
                dependent.delete(pipeline=pipe, remove_from_queue=False)
        pipe.delete(self.dependents_key)
        if pipeline is None:
            pipe.execute()


# The hash fields jobpool reads into attributes; any other field is kept as read.
_MODELLED_FIELDS = frozenset(
    [
        "data",
        "created_at",
        "origin",
        "worker_name",
        "description",
        "enqueued_at",
        "started_at",
        "ended_at",
        "last_heartbeat",
        "group_id",
        "webhooks",
        "timeout",
        "result_ttl",
        "failure_ttl",
        "ttl",
        "status",
        "success_callback_name",
        "failure_callback_name",
        "stopped_callback_name",
        "success_callback_timeout",
        "failure_callback_timeout",
        "stopped_callback_timeout",
        "dependency_ids",
        "dependency_id",
        "allow_dependency_failures",
        "enqueue_at_front",
        "meta",
        "number_of_retries",
        "retries_left",
        "retry_intervals",
        "enqueue_at_front_on_retry",
        "repeats_left",
        "repeat_intervals",
        "rate_limit_key",
        "rate_limit_concurrency",
        "exc_info",
        "result",
    ]
)
_BINARY_FIELDS = frozenset(("data", "meta", "exc_info", "result"))


def _restore_fields(job: Job, fields: dict[str, bytes]) -> None:
    """Sets the job's attributes from its hash. Written for speed: a worker runs it per job."""
    raw_data = fields["data"]
    try:
        job._data = zlib.decompress(raw_data)
    except zlib.error:
        job._data = raw_data  # RQ falls back to uncompressed data
    job._func_name = _UNREAD
    text = {name: value.decode() for name, value in fields.items() if value and name not in _BINARY_FIELDS}
    get = text.get
    job.created_at = utcparse(value) if (value := get("created_at")) else utcnow()
    job.origin = get("origin", "")
    job.worker_name = get("worker_name")
    job.description = get("description")
    for name in ("enqueued_at", "started_at", "ended_at", "last_heartbeat"):
        _Timestamp.set_text(job, name, get(name))
    job.group_id = get("group_id")
    job.webhooks = decode_webhooks(job.id, value) if (value := get("webhooks")) else []
    job.timeout = parse_timeout(value, limit=None) if (value := get("timeout")) else None
    job.result_ttl = int(value) if (value := get("result_ttl")) else None
    job.failure_ttl = int(value) if (value := get("failure_ttl")) else None
    job.ttl = int(value) if (value := get("ttl")) else None
    job._status = JobStatus(value) if (value := get("status")) else JobStatus.CREATED
    job._success_callback_name = get("success_callback_name")
    job._failure_callback_name = get("failure_callback_name")
    job._stopped_callback_name = get("stopped_callback_name")
    job._success_callback_timeout = int(value) if (value := get("success_callback_timeout")) else None
    job._failure_callback_timeout = int(value) if (value := get("failure_callback_timeout")) else None
    job._stopped_callback_timeout = int(value) if (value := get("stopped_callback_timeout")) else None
    if value := get("dependency_ids"):
        job._dependency_ids = json.loads(value)
    else:
        job._dependency_ids = [value] if (value := get("dependency_id")) else []
    job.allow_dependency_failures = bool(int(value)) if (value := get("allow_dependency_failures")) else None
    job.enqueue_at_front = bool(int(value)) if (value := get("enqueue_at_front")) else None
    job.meta = job._decode_meta(binary) if (binary := fields.get("meta")) else {}
    job.number_of_retries = int(value) if (value := get("number_of_retries")) else None
    job.retries_left = int(value) if (value := get("retries_left")) else None
    job.retry_intervals = json.loads(value) if (value := get("retry_intervals")) else None
    job.enqueue_at_front_on_retry = bool(int(value)) if (value := get("enqueue_at_front_on_retry")) else False
    job.repeats_left = int(value) if (value := get("repeats_left")) else None
    job.repeat_intervals = json.loads(value) if (value := get("repeat_intervals")) else None
    job.rate_limit_key = get("rate_limit_key")
    job.rate_limit_concurrency = int(value) if (value := get("rate_limit_concurrency")) else None
    job._exc_info = _decode_exc_info(binary) if (binary := fields.get("exc_info")) else None
    if binary := fields.get("result"):
        try:
            job._legacy_result = job.serializer.loads(binary)
        except Exception:
            job._legacy_result = UNSERIALIZABLE_RETURN_VALUE
    # What jobpool does not model (fields of a later RQ, say), written back as read.
    job._other_fields = {name: value for name, value in fields.items() if name not in _MODELLED_FIELDS}


def _parse_job_ttl(value: int | float | str | None) -> int | None:
    """A job's ttl: positive (-1 would expire the hash at once and strand its id in the queue)."""
    ttl = parse_ttl(value, "ttl")
    if ttl is not None and ttl <= 0:
        raise TimeoutFormatError(
            f"ttl (the longest a job may wait in its queue) must be positive, got {value!r}"
        )
    return ttl


def _has_text_names(raw: Any) -> bool:
    """Whether ``raw`` is already a dict of str names to bytes (as the Rust core returns it)."""
    return isinstance(raw, dict) and isinstance(next(iter(raw), ""), str)


def _serializer_name(serializer: Serializer) -> str:
    return getattr(serializer, "__name__", type(serializer).__name__)


def dependents_templates() -> list[str]:
    """The key templates the scripts that release dependents take (see lua/lib/library.lua)."""
    mark = scripts.ID_MARK
    return [
        keys.job(mark),
        keys.job_dependencies(mark),
        keys.queue(mark),
        keys.registry("deferred", mark),
        keys.wakeup(mark),
    ]


def release_dependents(
    client: Any, job_id: str, skip_parent: bool = False, met_parent: str | None = None
) -> Any:
    """Enqueues the dependents of ``job_id`` whose dependencies are all met now (one script).
    With ``skip_parent``, ``job_id`` itself counts as met (RQ's rule when it is canceled with
    enqueue_dependents); or, given ``met_parent``, that parent does (RQ's ``exclude_job_id``)."""
    counted_met = met_parent if met_parent is not None else job_id if skip_parent else ""
    return scripts.run(
        "release_dependents",
        client,
        keys=[keys.job_dependents(job_id), keys.QUEUES],
        args=[
            *dependents_templates(),
            utcformat(utcnow()),
            "1" if counted_met else "0",
            counted_met or job_id,
            *keys.rate_limit_templates(),
            epoch_seconds(),
        ],
    )


def get_current_job() -> Job | None:
    """The job being performed in this context, or None outside a job."""
    return _current_job.get()


def cancel_job(
    job_id: str,
    connection: Redis,
    serializer: Serializer | str | None = None,
    enqueue_dependents: bool = False,
) -> None:
    Job.fetch(job_id, connection=connection, serializer=serializer).cancel(
        enqueue_dependents=enqueue_dependents
    )


def requeue_job(job_id: str, connection: Redis, serializer: Serializer | str | None = None) -> Job:
    return Job.fetch(job_id, connection=connection, serializer=serializer).requeue()


def _decode_exc_info(stored: bytes) -> str:
    """exc_info as RQ reads it: zlib-compressed, or plain text as very old RQ wrote it."""
    try:
        return zlib.decompress(stored).decode(errors="replace")
    except zlib.error:
        return stored.decode(errors="replace")
