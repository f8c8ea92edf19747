"""Reading workers from RQ's worker registry: ``Worker.all()``, ``Worker.count()``,
``Worker.find_by_key()``, a worker's state, counters and current job, as RQ 3.0's ``Worker``
reads them, for monitoring (``rq info``'s views, django-rq's stats page and ``/metrics``).

What it reads is the registry every worker writes, whoever runs it: RQ's workers, a standalone
``jobpool.Worker`` and a ``jobpool start`` pool's workers. ``WorkerInfo`` is the base of
``jobpool.Worker``: the worker loop lives in ``worker.py``.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from redis import Redis

from . import _native, keys
from .executions import Execution
from .job import Job
from .queue import Queue
from .redis_values import as_fields, as_text, as_texts
from .serializers import Serializer
from .timeutils import utcparse

W = TypeVar("W", bound="WorkerInfo")

VERSION = f"jobpool {_native.__version__}"
"""What a jobpool worker writes as its ``version`` (RQ writes its own version number)."""


class WorkerStatus(str, Enum):
    """A worker's ``state``, as RQ names them (a worker hash from before its first state reads
    ``?``)."""

    STARTED = "started"
    SUSPENDED = "suspended"
    BUSY = "busy"
    IDLE = "idle"


class WorkerInfo:
    """A worker as its registry entry, ``<prefix>:worker:<name>``, describes it."""

    redis_worker_namespace_prefix = keys.worker("")
    redis_workers_keys = keys.WORKERS
    queue_class: type[Queue] = Queue
    job_class: type[Job] = Job

    name: str
    connection: Redis
    serializer: Serializer
    queues: list[Queue]

    def _init_info(self, prepare_for_work: bool) -> None:
        """What is known of a worker before its registry entry is read (``refresh``): for a
        worker about to work, this process; for one about to be read, nothing."""
        self.hostname: str | None = socket.gethostname() if prepare_for_work else None
        self.pid: int | None = os.getpid() if prepare_for_work else None
        # As RQ's: the address Redis sees this worker's connection at; set as it registers.
        self.ip_address: str | None = None
        self.version = VERSION
        self.python_version = sys.version
        self._state = "starting"
        self.birth_date: datetime | None = None
        self.last_heartbeat: datetime | None = None
        self.successful_job_count = 0
        self.failed_job_count = 0
        self.total_working_time: float = 0
        self._executions: list[Execution] = []

    @property
    def key(self) -> str:
        return keys.worker(self.name)

    # ---- finding workers ----------------------------------------------------------------------

    @classmethod
    def all(
        cls: type[W],
        connection: Redis | None = None,
        job_class: type[Job] | None = None,
        queue_class: type[Queue] | None = None,
        queue: Queue | None = None,
        serializer: Serializer | str | None = None,
    ) -> list[W]:
        """Every live worker (listening on ``queue``, if given), read from the registry."""
        if queue is not None:
            connection = queue.connection
        workers = [
            cls.find_by_key(key, _required(connection), job_class, queue_class, serializer)
            for key in _worker_keys(connection, queue)
        ]
        return [worker for worker in workers if worker is not None]

    @classmethod
    def all_keys(cls, connection: Redis | None = None, queue: Queue | None = None) -> list[str]:
        """The registry keys (``<prefix>:worker:<name>``) of every live worker, or of ``queue``'s."""
        return list(_worker_keys(connection, queue))

    @classmethod
    def count(cls, connection: Redis | None = None, queue: Queue | None = None) -> int:
        """How many live workers there are, or listen on ``queue``."""
        return len(_worker_keys(connection, queue))

    @classmethod
    def find_by_key(
        cls: type[W],
        worker_key: str,
        connection: Redis,
        job_class: type[Job] | None = None,
        queue_class: type[Queue] | None = None,
        serializer: Serializer | str | None = None,
    ) -> W | None:
        """The worker registered under ``worker_key``, read from Redis; None if its entry is gone
        (its key then leaves the set of live workers, as RQ does). ValueError for a key that is
        not a worker key under the prefix."""
        prefix = cls.redis_worker_namespace_prefix
        if not isinstance(worker_key, str) or not worker_key.startswith(prefix):
            raise ValueError(f"Not a valid RQ worker key: {worker_key!r}")
        if not connection.exists(worker_key):
            connection.srem(cls.redis_workers_keys, worker_key)
            return None
        worker = cls(  # type: ignore[call-arg]  # the constructor is Worker's, as in RQ
            [],
            worker_key[len(prefix) :],
            connection=connection,
            job_class=job_class,
            queue_class=queue_class,
            serializer=serializer,
            prepare_for_work=False,
        )
        worker.refresh()
        return worker

    # ---- what a registry entry says ----------------------------------------------------------------

    def refresh(self) -> None:
        """Reads the worker's registry entry again (nothing changes if it is gone)."""
        raw = self.connection.hgetall(self.key)
        if not raw:
            return
        data = {name: value.decode(errors="replace") for name, value in as_fields(raw).items()}
        self.hostname = data.get("hostname") or None
        self.ip_address = data.get("ip_address") or None
        self.pid = int(data["pid"]) if data.get("pid") else None
        self.version = data.get("version") or VERSION
        self.python_version = data.get("python_version") or sys.version
        self._state = data.get("state", "?")
        self.last_heartbeat = utcparse(data["last_heartbeat"]) if data.get("last_heartbeat") else None
        self.birth_date = utcparse(data["birth"]) if data.get("birth") else None
        self.failed_job_count = int(data["failed_job_count"]) if data.get("failed_job_count") else 0
        self.successful_job_count = (
            int(data["successful_job_count"]) if data.get("successful_job_count") else 0
        )
        self.total_working_time = float(data["total_working_time"]) if data.get("total_working_time") else 0
        if data.get("queues"):
            self.queues = [
                self.queue_class(name, connection=self.connection, serializer=self.serializer)
                for name in data["queues"].split(",")
            ]

    def queue_names(self) -> list[str]:
        """The names of the worker's queues, in priority order."""
        return [queue.name for queue in self.queues]

    def queue_keys(self) -> list[str]:
        """The Redis keys of the worker's queues."""
        return [queue.key for queue in self.queues]

    def get_state(self) -> str:
        """The worker's state when it was last read (``refresh``): a ``WorkerStatus`` value."""
        return self._state

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Writes the worker's state to its registry entry."""
        self._state = state
        (pipeline if pipeline is not None else self.connection).hset(self.key, "state", state)

    @property
    def state(self) -> str:
        """RQ's deprecated spelling of ``get_state()`` (and, assigned, of ``set_state()``)."""
        warnings.warn(
            "worker.state is deprecated, use worker.get_state() instead.", DeprecationWarning, stacklevel=2
        )
        return self.get_state()

    @state.setter
    def state(self, state: str) -> None:
        warnings.warn(
            "worker.state is deprecated, use worker.set_state() instead.", DeprecationWarning, stacklevel=2
        )
        self.set_state(state)

    # ---- what it runs --------------------------------------------------------------------------

    @property
    def executions_key(self) -> str:
        return keys.worker_executions(self.name)

    def get_current_executions(self, refresh: bool = False) -> list[Execution]:
        """The executions the worker runs, from its executions set (``refresh``: read again).
        A pool worker's job appears here once its supervisor has written RQ's records of it,
        within half a second of its start; a quicker job never does."""
        if self._executions and not refresh:
            return self._executions
        members = sorted(as_texts(self.connection.smembers(self.executions_key)))
        executions = [Execution.from_composite_key(member, connection=self.connection) for member in members]
        with self.connection.pipeline(transaction=False) as pipe:
            for execution in executions:
                pipe.hgetall(execution.key)
            hashes = pipe.execute()
        live = []
        for execution, raw in zip(executions, hashes, strict=True):
            if raw:
                execution.restore(raw)
                live.append(execution)
        self._executions = live
        return live

    @property
    def execution(self) -> Execution | None:
        """One of the worker's current executions; None when it runs none."""
        executions = self.get_current_executions(refresh=True)
        return executions[0] if executions else None

    def get_current_job_id(self) -> str | None:
        """The id of the job the worker runs, None when it runs none."""
        execution = self.execution
        return execution.job_id if execution else None

    def get_current_job(self) -> Job | None:
        """The job the worker runs, None when it runs none (NoSuchJobError if it is gone)."""
        execution = self.execution
        if execution is None:
            return None
        return self.job_class.fetch(execution.job_id, connection=self.connection, serializer=self.serializer)

    @property
    def death_date(self) -> datetime | None:
        """When the worker stopped, if it has (its entry lives on for 60 s after)."""
        death = self.connection.hget(self.key, "death")
        return utcparse(as_text(death)) if death is not None else None

    def __eq__(self, other: object) -> bool:
        """Workers are the same worker when their names are (as RQ compares them)."""
        if not isinstance(other, WorkerInfo):
            raise TypeError("Cannot compare workers to other types (of workers)")
        return self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)


def _required(connection: Redis | None) -> Redis:
    if connection is None:
        raise TypeError("A Redis connection (or a queue, which has one) is required")
    return connection


def _worker_keys(connection: Redis | None, queue: Queue | None) -> set[str]:
    """The keys of every live worker (the set ``<prefix>:workers``), or of ``queue``'s."""
    if queue is not None:
        return set(as_texts(queue.connection.smembers(keys.queue_workers(queue.name))))
    return set(as_texts(_required(connection).smembers(keys.WORKERS)))
