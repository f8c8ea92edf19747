"""Queue: a named list of job ids, ``<prefix>:queue:<name>``, and the producer's API.

Every enqueue is one round trip: the ``enqueue`` script saves the job hash and puts its id on
the queue, in the scheduled registry, or in the deferred registry (when a parent has not
finished), atomically. ``enqueue_many`` sends all its jobs in one pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from redis import Redis

from . import inline, job_placement, keys, queue_maintenance, scripts
from ._native import DEFAULT_JOB_TIMEOUT
from .callbacks import Callback
from .durations import parse_timeout
from .enqueue_options import EnqueueData, EnqueueOptions
from .exceptions import NoSuchJobError
from .job import Job, JobStatus
from .rate_limit import RateLimit
from .redis_values import as_text, as_texts
from .registry import (
    BaseRegistry,
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from .repeat import Repeat
from .retry import Retry
from .serializers import Serializer, resolve_serializer
from .timeouts import BaseDeathPenalty, UnixSignalDeathPenalty
from .timeutils import epoch_seconds
from .webhook import Webhook

if TYPE_CHECKING:
    from redis.client import Pipeline

RegistryT = TypeVar("RegistryT", bound=BaseRegistry)


class Queue:
    DEFAULT_TIMEOUT = DEFAULT_JOB_TIMEOUT  # RQ's, and the one the worker and its scripts use
    job_class: type[Job] = Job
    death_penalty_class: type[BaseDeathPenalty] = UnixSignalDeathPenalty
    """Kept for RQ's API (RQ's synchronous queue times callbacks with it); jobpool's inline run
    puts no timeout on the caller's thread (see ``jobpool.inline``)."""
    redis_queue_namespace_prefix = keys.queue("")
    """``<prefix>:queue:``, as RQ's class attribute."""
    redis_queues_keys = keys.QUEUES
    """``<prefix>:queues``, the set of every queue's key, as RQ's class attribute."""

    def __init__(
        self,
        name: str = "default",
        connection: Redis | None = None,
        default_timeout: int | str | None = None,
        is_async: bool = True,
        job_class: type[Job] | None = None,
        serializer: Serializer | str | None = None,
        death_penalty_class: type[BaseDeathPenalty] | None = UnixSignalDeathPenalty,
        **kwargs: Any,
    ):
        if connection is None:
            raise TypeError("Queue needs a Redis connection")
        if not isinstance(name, str) or not name:
            raise ValueError(f"A queue name must be a non-empty string, not {name!r}")
        self._is_async = is_async
        self.name = name
        self.connection = connection
        self.serializer = resolve_serializer(serializer)
        self.job_class = job_class or Job
        self.death_penalty_class = death_penalty_class or UnixSignalDeathPenalty
        self._default_timeout = parse_timeout(default_timeout) or self.DEFAULT_TIMEOUT
        self.key = keys.queue(name)
        self.redis_server_version: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def __lt__(self, other: Queue) -> bool:
        """Queues sort by name, as RQ's."""
        if not isinstance(other, Queue):
            raise TypeError("Cannot compare queues to other objects")
        return self.name < other.name

    @property
    def is_async(self) -> bool:
        """False: jobs run at enqueue, in this process (``jobpool.inline``), as RQ's synchronous
        queue runs them."""
        return self._is_async

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queue) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return True

    # ---- discovery ----------------------------------------------------------------------------

    @classmethod
    def all(
        cls,
        connection: Redis,
        job_class: type[Job] | None = None,
        serializer: Serializer | str | None = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
        **kwargs: Any,
    ) -> list[Queue]:
        """Every queue that has been enqueued to (the members of ``<prefix>:queues``)."""
        members = sorted(as_texts(connection.smembers(keys.QUEUES)))
        return [
            cls.from_queue_key(
                key,
                connection=connection,
                job_class=job_class,
                serializer=serializer,
                death_penalty_class=death_penalty_class,
            )
            for key in members
        ]

    @classmethod
    def from_queue_key(
        cls,
        queue_key: str,
        connection: Redis,
        job_class: type[Job] | None = None,
        serializer: Serializer | str | None = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
    ) -> Queue:
        name = keys.queue_name_from_key(queue_key)
        return cls(
            name,
            connection=connection,
            job_class=job_class,
            serializer=serializer,
            death_penalty_class=death_penalty_class,
        )

    @property
    def scheduler_pid(self) -> int | None:
        """The process id of the scheduler that moves this queue's due jobs (RQ's, or a jobpool
        pool's supervisor): the scheduler its lock names, looked up in its
        ``<prefix>:scheduler:<name>`` hash; None when no scheduler holds the lock."""
        name = self.connection.get(keys.scheduler_lock(self.name))
        if name is None:
            return None
        pid = self.connection.hget(keys.scheduler(as_text(name)), "pid")
        return int(pid) if pid else None

    # ---- contents --------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self.connection.llen(self.key))

    def is_empty(self) -> bool:
        return self.count == 0

    def get_job_ids(self, offset: int = 0, length: int = -1) -> list[str]:
        """``length`` ids from ``offset`` (-1: to the end; 0: none, as RQ)."""
        if length == 0:
            return []
        end = offset + length - 1 if length > 0 else -1
        return as_texts(self.connection.lrange(self.key, offset, end))

    @property
    def job_ids(self) -> list[str]:
        return self.get_job_ids()

    def get_jobs(self, offset: int = 0, length: int = -1) -> list[Job]:
        found = self.job_class.fetch_many(self.get_job_ids(offset, length), self.connection, self.serializer)
        return [job for job in found if job is not None]

    @property
    def jobs(self) -> list[Job]:
        return self.get_jobs()

    def fetch_job(self, job_id: str) -> Job | None:
        """The job if it exists and belongs to this queue (RQ drops its id otherwise)."""
        try:
            job = self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            self.remove(job_id)
            return None
        return job if job.origin == self.name else None

    def get_job_position(self, job_or_id: Job | str) -> int | None:
        job_id = job_or_id.id if isinstance(job_or_id, Job) else job_or_id
        position = self.connection.lpos(self.key, job_id)
        return int(position) if position is not None else None  # type: ignore[arg-type]

    def remove(self, job_or_id: Job | str, pipeline: Pipeline | None = None) -> int:
        job_id = job_or_id.id if isinstance(job_or_id, Job) else job_or_id
        connection = pipeline if pipeline is not None else self.connection
        return int(connection.lrem(self.key, 1, job_id))

    def push_job_id(self, job_id: str, pipeline: Pipeline | None = None, at_front: bool = False) -> None:
        """Pushes an id onto the queue and wakes an idle jobpool worker, as every push does (the
        scripts' ``push_job``): one script call, in ``pipeline`` if given."""
        scripts.run(
            "push",
            pipeline if pipeline is not None else self.connection,
            keys=[self.key, keys.wakeup(self.name)],
            args=[job_id, "1" if at_front else "0"],
        )

    def empty(self) -> int:
        """Removes every job in the queue, deleting their hashes; returns how many."""
        mark = scripts.ID_MARK
        removed = scripts.run(
            "empty_queue",
            self.connection,
            keys=[self.key],
            args=[keys.job(mark), keys.results(mark), keys.job_dependents(mark)],
        )
        return int(removed)

    def delete(self, delete_jobs: bool = True) -> None:
        """Deletes the queue (and, by default, its jobs)."""
        if delete_jobs:
            self.empty()
        with self.connection.pipeline() as pipe:
            pipe.srem(keys.QUEUES, self.key)
            pipe.delete(self.key, keys.wakeup(self.name))
            pipe.execute()

    # ---- registries ------------------------------------------------------------------------------

    def _registry(self, registry_class: type[RegistryT]) -> RegistryT:
        return registry_class(self.name, connection=self.connection, serializer=self.serializer)

    @property
    def started_job_registry(self) -> StartedJobRegistry:
        return self._registry(StartedJobRegistry)

    @property
    def finished_job_registry(self) -> FinishedJobRegistry:
        return self._registry(FinishedJobRegistry)

    @property
    def failed_job_registry(self) -> FailedJobRegistry:
        return self._registry(FailedJobRegistry)

    @property
    def deferred_job_registry(self) -> DeferredJobRegistry:
        return self._registry(DeferredJobRegistry)

    @property
    def scheduled_job_registry(self) -> ScheduledJobRegistry:
        return self._registry(ScheduledJobRegistry)

    @property
    def canceled_job_registry(self) -> CanceledJobRegistry:
        return self._registry(CanceledJobRegistry)

    @property
    def ready_job_registry(self) -> ReadyJobRegistry:
        return self._registry(ReadyJobRegistry)

    # ---- creating jobs -----------------------------------------------------------------------------

    def create_job(
        self,
        func: Any,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        timeout: int | str | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        failure_ttl: int | str | None = None,
        description: str | None = None,
        depends_on: Any = None,
        job_id: str | None = None,
        meta: dict[str, Any] | None = None,
        status: JobStatus = JobStatus.QUEUED,
        retry: Retry | None = None,
        repeat: Repeat | None = None,
        *,
        on_success: Callback | None = None,
        on_failure: Callback | None = None,
        on_stopped: Callback | None = None,
        group_id: str | None = None,
        webhooks: Sequence[Webhook] | None = None,
        rate_limit: RateLimit | None = None,
    ) -> Job:
        """A job for this queue, with the queue's default timeout when none is given."""
        options = EnqueueOptions.from_signature(locals())
        return self._create_job(func, args, kwargs, options, status=status, group_id=group_id)

    def _create_job(
        self,
        func: Any,
        args: tuple[Any, ...] | list[Any] | None,
        kwargs: dict[str, Any] | None,
        options: EnqueueOptions,
        status: JobStatus = JobStatus.QUEUED,
        group_id: str | None = None,
    ) -> Job:
        repeat, rate_limit = options.repeat, options.rate_limit
        if repeat is not None and not isinstance(repeat, Repeat):
            raise TypeError(f"repeat must be a Repeat, not {type(repeat).__name__}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit, not {type(rate_limit).__name__}")
        job = self.job_class.create(
            func,
            args=args,
            kwargs=kwargs,
            connection=self.connection,
            result_ttl=options.result_ttl,
            ttl=options.ttl,
            status=status,
            description=options.description,
            depends_on=options.depends_on,
            timeout=parse_timeout(options.timeout) or self._default_timeout,
            retry=options.retry,
            id=options.job_id,
            origin=self.name,
            meta=options.meta,
            failure_ttl=options.failure_ttl,
            serializer=self.serializer,
            group_id=group_id,
            on_success=options.on_success,
            on_failure=options.on_failure,
            on_stopped=options.on_stopped,
            webhooks=options.webhooks,
            for_worker=self._is_async,
        )
        if repeat is not None:
            job.repeats_left = repeat.times
            job.repeat_intervals = repeat.intervals
        if rate_limit is not None:
            job.rate_limit_key = rate_limit.key
            job.rate_limit_concurrency = rate_limit.concurrency
        return job

    prepare_data = staticmethod(EnqueueData)
    """``prepare_data(func, args=None, kwargs=None, timeout=None, ...)``: one job for
    ``enqueue_many``, RQ's ``EnqueueData``."""

    # ---- enqueueing ------------------------------------------------------------------------------

    def enqueue(self, f: Any, *args: Any, **kwargs: Any) -> Job:
        """Enqueues ``f(*args, **kwargs)``. RQ's reserved keywords (job_timeout, result_ttl, ttl,
        failure_ttl, depends_on, job_id, at_front, meta, description, retry, on_success,
        on_failure, on_stopped, repeat, rate_limit, webhooks, pipeline, unique, args, kwargs) are taken out of
        ``kwargs``."""
        options, call_args, call_kwargs = EnqueueOptions.pop_from(args, kwargs)
        return self._enqueue(f, call_args, call_kwargs, options)

    def enqueue_call(
        self,
        func: Any,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        timeout: int | str | None = None,
        result_ttl: int | str | None = None,
        ttl: int | str | None = None,
        failure_ttl: int | str | None = None,
        description: str | None = None,
        depends_on: Any = None,
        job_id: str | None = None,
        at_front: bool = False,
        meta: dict[str, Any] | None = None,
        retry: Retry | None = None,
        repeat: Repeat | None = None,
        on_success: Callback | None = None,
        on_failure: Callback | None = None,
        on_stopped: Callback | None = None,
        rate_limit: RateLimit | None = None,
        pipeline: Pipeline | None = None,
        unique: bool = False,
        webhooks: Sequence[Webhook] | None = None,
    ) -> Job:
        options = EnqueueOptions.from_signature(locals())
        return self._enqueue(func, args, kwargs, options)

    def _enqueue(
        self,
        func: Any,
        args: tuple[Any, ...] | list[Any] | None,
        kwargs: dict[str, Any] | None,
        options: EnqueueOptions,
    ) -> Job:
        job = self._create_job(func, args, kwargs, options)
        return self.enqueue_job(
            job, pipeline=options.pipeline, at_front=options.at_front, unique=options.unique
        )

    def enqueue_job(
        self, job: Job, pipeline: Pipeline | None = None, at_front: bool = False, unique: bool = False
    ) -> Job:
        """Saves ``job`` and puts it on this queue, or defers it until its parents finish; a job
        with a rate limit waits for a slot (status rate_limited) when its limit's are taken."""
        job_placement.check_key_prefixes(job, self.redis_queue_namespace_prefix)
        job_placement.check_unique(job, unique)
        if unique and job.has_rate_limit:
            raise ValueError("unique=True is not supported with rate-limited jobs")
        if job.has_rate_limit and not self._is_async:
            raise ValueError("rate_limit is not supported on synchronous queues (is_async=False)")
        if job.has_rate_limit and pipeline is not None:
            raise ValueError("rate-limited jobs cannot be enqueued with a pipeline")
        if unique:
            pipeline = None  # as RQ: a unique enqueue runs at once, so its DuplicateJobError can be raised
        if job.timeout is None and not job.dependency_ids:
            job.timeout = self._default_timeout  # as RQ fills it in when it queues a job
        if not self._is_async:
            return self._enqueue_inline(job, unique)
        return job_placement.save_and_place(
            self.connection, self.name, job, pipeline, at_front=at_front, unique=unique
        )

    def _enqueue_inline(self, job: Job, unique: bool) -> Job:
        """Saves ``job`` without putting it on the queue and runs it now, unless a parent has not
        finished (then it is deferred, as on any queue). A caller's pipeline is not used: the
        job runs at once, as in RQ."""
        job_placement.save_and_place(self.connection, self.name, job, None, unique=unique, inline=True)
        if job._status == JobStatus.QUEUED:
            inline.run(self.connection, self.name, job)
        return job

    def enqueue_many(
        self, job_datas: Iterable[EnqueueData], pipeline: Pipeline | None = None, group_id: str | None = None
    ) -> list[Job]:
        """Enqueues many jobs in one pipeline (one round trip, plus a script check). As RQ's,
        ``group_id`` is only written in the jobs' hashes: ``Group.enqueue_many`` also makes them
        the group's members."""
        return self._enqueue_many(job_datas, pipeline, group_id)

    def _enqueue_many(
        self,
        job_datas: Iterable[EnqueueData],
        pipeline: Pipeline | None,
        group_id: str | None = None,
        then: Callable[[list[Job], Pipeline], None] | None = None,
        execute: bool = False,
    ) -> list[Job]:
        """``enqueue_many``; ``then(jobs, pipe)`` adds commands after the jobs' to the same
        pipeline (the same transaction), and with ``execute`` a caller's ``pipeline`` is
        executed here too."""
        datas = list(job_datas)
        explicit_ids = [data.job_id for data in datas if data.job_id is not None]
        if len(explicit_ids) != len(set(explicit_ids)):
            raise ValueError("enqueue_many was given the same job_id more than once")
        jobs = [
            self._create_job(data.func, data.args, data.kwargs, EnqueueOptions.of(data), group_id=group_id)
            for data in datas
        ]
        # As RQ's: the jobs without dependencies first, so a job that depends on one of them
        # finds it saved (and waits for it).
        placed = [(job, data) for job, data in zip(jobs, datas, strict=True) if not job.dependency_ids]
        placed += [(job, data) for job, data in zip(jobs, datas, strict=True) if job.dependency_ids]
        own_pipeline = pipeline is None
        pipe = pipeline if pipeline is not None else self.connection.pipeline()
        if self._is_async:
            batch_ids = {job.id for job in jobs}
            for job, data in placed:
                job_placement.save_and_place(
                    self.connection, self.name, job, pipe, at_front=data.at_front, own_pipeline=own_pipeline
                )
                if not own_pipeline and batch_ids.intersection(job.dependency_ids):
                    job._status = JobStatus.DEFERRED  # its parent will be saved ahead of it, unfinished
        else:  # each runs now, as RQ's; the group's sets are written after them
            for job, data in placed:
                self.enqueue_job(job, at_front=data.at_front)
        if then is not None:
            then(jobs, pipe)
        if own_pipeline or execute:
            replies = pipe.execute()
            if own_pipeline and self._is_async:
                for (job, _), status in zip(placed, replies, strict=False):
                    job._status = JobStatus(status.decode())
        return job_placement.in_rqs_order([job for job, _ in placed])

    def enqueue_at(self, datetime: datetime, f: Any, *args: Any, **kwargs: Any) -> Job:
        """Schedules ``f(*args, **kwargs)`` to be enqueued at ``datetime`` (naive = local time)."""
        options, call_args, call_kwargs = EnqueueOptions.pop_from(args, kwargs)
        job = self._create_job(f, call_args, call_kwargs, options, status=JobStatus.SCHEDULED)
        if options.at_front:
            job.enqueue_at_front = True
        return self.schedule_job(job, datetime, pipeline=options.pipeline, unique=options.unique)

    def enqueue_in(self, time_delta: timedelta, func: Any, *args: Any, **kwargs: Any) -> Job:
        return self.enqueue_at(datetime.now(timezone.utc) + time_delta, func, *args, **kwargs)

    def schedule_job(
        self, job: Job, datetime: datetime, pipeline: Pipeline | None = None, unique: bool = False
    ) -> Job:
        """Saves ``job`` into this queue's scheduled registry, due at ``datetime``."""
        job_placement.check_key_prefixes(job, self.redis_queue_namespace_prefix)
        if job.dependency_ids:
            raise ValueError("A scheduled job cannot also have dependencies")
        job_placement.check_unique(job, unique)
        if unique:
            pipeline = None
        return job_placement.save_and_place(
            self.connection, self.name, job, pipeline, unique=unique, scheduled_at=epoch_seconds(datetime)
        )

    # ---- RQ's maintenance and synchronous-run API ------------------------------------------------

    @property
    def registry_cleaning_key(self) -> str:
        """RQ's key for "this queue's registries were cleaned lately" (see
        ``acquire_maintenance_lock``); a jobpool pool holds its own lock instead."""
        return keys.registry_cleaning(self.name)

    @property
    def intermediate_queue_key(self) -> str:
        """RQ's intermediate queue (jobs RQ's workers popped but not yet marked started); jobpool
        never fills it, as its take is one script."""
        return keys.intermediate_queue(self.key)

    def acquire_maintenance_lock(self) -> bool:
        """Takes RQ's registry-cleaning lock for 899 s, as RQ's; False if it is held."""
        return queue_maintenance.acquire_cleaning_lock(self.connection, self.name)

    def release_maintenance_lock(self) -> None:
        self.connection.delete(self.registry_cleaning_key)

    def get_redis_server_version(self) -> tuple[int, int, int]:
        """The Redis server's version as (major, minor, patch), read once per queue."""
        if self.redis_server_version is None:
            self.redis_server_version = queue_maintenance.redis_server_version(self.connection)
        return self.redis_server_version

    def compact(self) -> None:
        """Removes the ids of jobs whose hash is gone from the queue, keeping the others' order."""
        queue_maintenance.compact(self.connection, self.key)

    def enqueue_dependents(
        self, job: Job, exclude_job_id: str | None = None, refresh_job_status: bool = True
    ) -> dict[str, list[str]]:
        """Enqueues the deferred dependents of ``job`` whose parents are all met now (see
        ``queue_maintenance.enqueue_dependents``); returns their ids by queue name."""
        return queue_maintenance.enqueue_dependents(self.connection, job, exclude_job_id, refresh_job_status)

    def run_job(self, job: Job) -> Job:
        """Calls ``job`` now, in this process, and records its success as RQ's synchronous run
        does; the job's exception is raised, with nothing recorded."""
        inline.perform_and_record(self.connection, self.name, job)
        return job

    def run_sync(self, job: Job) -> Job:
        """Runs ``job`` now, in this process, as an ``is_async=False`` queue runs what it is
        given (see ``jobpool.inline``): marked started, then finished or failed."""
        return inline.run(self.connection, self.name, job)


BaseRegistry.queue_class = Queue
