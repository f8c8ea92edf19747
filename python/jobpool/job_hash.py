"""The job hash ``<prefix>:job:<id>`` and its codec: ``JobFields``, the fields of a job as RQ
3.0 stores them, encoded (``to_dict``) and decoded (``restore``) as RQ does, so that a job
written by either library is read and run by the other. Fields jobpool does not model (those
of a later RQ, say) are kept as read and written back unchanged.

``jobpool.job.Job`` is a ``JobFields`` with the job's behaviour (creating, saving, fetching,
cancelling, its results and registries); the modules below ``Job`` in the data model's layers
(results, rate limits, dependencies) take a ``JobFields``.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any, Literal, NamedTuple
from uuid import uuid4

from redis import Redis

from . import keys
from .callbacks import DEFAULT_CALLBACK_TIMEOUT
from .durations import parse_timeout, parse_ttl
from .exceptions import DeserializationError, InvalidJobId, SerializationError, TimeoutFormatError
from .functions import call_string, import_attribute
from .job_status import JobStatus
from .redis_values import as_fields
from .result_encoding import UNSERIALIZABLE_RETURN_VALUE, decode_exc_info
from .retry import check_intervals, check_retries
from .serializers import Serializer, resolve_serializer
from .timeutils import utcformat, utcnow, utcparse
from .webhook import Webhook, decode_webhooks, encode_webhooks

ALLOWED_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

CallbackKind = Literal["success", "failure", "stopped"]


class StoredCallback(NamedTuple):
    """A job's callback as its hash holds it: the function's dotted name and its timeout."""

    name: str
    timeout: int

    @property
    def func(self) -> Any:
        """The function (importing its module)."""
        return import_attribute(self.name)


def validate_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str):
        raise InvalidJobId(f"A job id must be a string, not {type(job_id).__name__}")
    if not job_id or not ALLOWED_ID_CHARS.issuperset(job_id):
        raise InvalidJobId(f"Job id {job_id!r} may only contain letters, digits, '_' and '-'")
    return job_id


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


class JobFields:
    """A job's fields as its hash holds them, and their encoding (see the module docstring)."""

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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobFields) and self.id == other.id

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

    def get_callback(self, kind: CallbackKind) -> StoredCallback | None:
        """The job's ``on_<kind>`` callback (its name and timeout), or None when it has none."""
        name: str | None = getattr(self, f"_{kind}_callback_name")
        if not name:
            return None
        timeout: int | None = getattr(self, f"_{kind}_callback_timeout")
        return StoredCallback(name, DEFAULT_CALLBACK_TIMEOUT if timeout is None else timeout)

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
        parse_job_ttl(self.ttl)
        if self.retries_left is not None:
            check_retries(self.retries_left)
        if self.retry_intervals is not None:
            check_intervals(self.retry_intervals)


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


def _restore_fields(job: JobFields, fields: dict[str, bytes]) -> None:
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
    job._exc_info = decode_exc_info(binary) if (binary := fields.get("exc_info")) else None
    if binary := fields.get("result"):
        try:
            job._legacy_result = job.serializer.loads(binary)
        except Exception:
            job._legacy_result = UNSERIALIZABLE_RETURN_VALUE
    # What jobpool does not model (fields of a later RQ, say), written back as read.
    job._other_fields = {name: value for name, value in fields.items() if name not in _MODELLED_FIELDS}


def parse_job_ttl(value: int | float | str | None) -> int | None:
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
