"""Job: one call of a function, stored as RQ's job hash ``<prefix>:job:<id>``.

The hash's fields and their encoding are ``job_hash.JobFields``, which ``Job`` extends with
what a job does: creating, saving and fetching it, its status, dependencies, results and
registries, cancelling, requeueing and deleting it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from redis import Redis

from . import keys, rate_limit, scripts
from .callbacks import Callback
from .dependencies import Dependency, parse_depends_on, release_dependents
from .durations import parse_timeout, parse_ttl
from .exceptions import InvalidJobOperation, NoSuchJobError
from .functions import resolve_function_reference
from .job_hash import ALLOWED_ID_CHARS, JobFields, parse_job_ttl
from .job_status import JobStatus
from .redis_values import as_text, as_texts
from .requeue import requeue_from
from .results import Result
from .retry import Retry, next_retry_interval
from .serializers import Serializer
from .timeutils import epoch_seconds
from .webhook import Webhook, check_webhooks

if TYPE_CHECKING:
    from redis.client import Pipeline

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

_current_job: ContextVar[Job | None] = ContextVar("jobpool_current_job", default=None)

# The registries a job id may be a member of (the started registry holds executions instead).
_JOB_REGISTRIES = ("finished", "failed", "deferred", "scheduled", "canceled", "ready")


class Job(JobFields):
    model_classes: ClassVar[dict[str, Any]] = {}
    """The classes above Job in the data model's layers that a job hands out: its registries
    (``started``, ``failed``, ``finished``), its ``execution`` and ``executions`` index. They
    hold and fetch jobs, so Job cannot import them (tests/test_import_layers.py): their modules,
    which the package loads with itself, enter them here as they load."""

    def __init__(
        self,
        id: str | None = None,
        connection: Redis | None = None,
        serializer: Serializer | str | None = None,
    ):
        super().__init__(id, connection, serializer)
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
        job.ttl = parse_job_ttl(ttl)
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

    def get_meta(self, refresh: bool = True) -> dict[str, Any]:
        if refresh:
            raw = self.connection.hget(self.key, "meta")
            self.meta = self._decode_meta(raw) if isinstance(raw, bytes) and raw else {}
        return self.meta

    def save_meta(self) -> None:
        self.connection.hset(self.key, "meta", self._serialize_meta())

    def save(
        self, pipeline: Pipeline | None = None, include_meta: bool = True, include_result: bool = True
    ) -> None:
        """Writes the whole hash (the job's TTL, if any, is applied)."""
        parse_job_ttl(self.ttl)  # before the hash is written, so an EXPIRE cannot fail after it
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
        if not isinstance(job_id, str) or not ALLOWED_ID_CHARS.issuperset(job_id) or not job_id:
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
        return Result.fetch_latest(self, serializer=self.serializer, timeout=timeout)

    def results(self) -> list[Result]:
        return Result.all(self, serializer=self.serializer)

    def return_value(self, refresh: bool = False) -> Any:
        """The value the latest successful execution returned (None before one exists)."""
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
        latest = self.latest_result()
        if latest is not None and latest.type == Result.Type.FAILED:
            return latest.exc_string
        return self._exc_info

    def get_executions(self) -> list[Any]:
        return self.model_classes["execution"].all_of(self)

    @property
    def execution_registry(self) -> Any:
        return self.model_classes["executions"](self.id, connection=self.connection)

    def get_position(self) -> int | None:
        """Where the job stands in its queue (0 is next), or None if it is not in it."""
        position = self.connection.lpos(keys.queue(self.origin), self.id)
        return int(position) if position is not None else None  # type: ignore[arg-type]

    def _registry(self, kind: str) -> Any:
        return self.model_classes[kind](
            self.origin, connection=self.connection, job_class=type(self), serializer=self.serializer
        )

    @property
    def started_job_registry(self) -> Any:
        return self._registry("started")

    @property
    def failed_job_registry(self) -> Any:
        return self._registry("failed")

    @property
    def finished_job_registry(self) -> Any:
        return self._registry("finished")

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
        failed = keys.registry("failed", self.origin)
        if not requeue_from(self.connection, failed, self.id, self.origin, at_front):
            raise InvalidJobOperation(
                f"Job {self.id} is not in FailedJobRegistry({self.origin!r}), so it cannot be requeued"
            )
        self.refresh()
        return self

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
