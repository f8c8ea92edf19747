"""What ``jobpool info`` shows, read from Redis in one go: each queue's counts per registry, the
live workers (as RQ's worker registry describes them) and whether workers are suspended.

It only reads. ``rq info`` first cleans the queues' registries and the worker registry; jobpool
leaves that to the pools' maintenance (and to RQ's workers), so watching changes nothing. The
reads of a draw go in two pipelined round trips, whatever the number of queues and workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from redis import Redis

from . import keys
from .queue import Queue
from .redis_values import as_fields, as_text, as_texts
from .timeutils import utcformat, utcnow, utcparse

REGISTRIES = ("started", "finished", "failed", "deferred", "scheduled", "canceled")
"""The registries counted for each queue, after its own length (``queued``), in the order
``jobpool info`` shows them."""

COUNTS = ("queued", *REGISTRIES)


@dataclass(frozen=True)
class QueueCounts:
    name: str
    counts: dict[str, int]
    """``queued`` (the queue's length) and each of ``REGISTRIES``' job count."""
    worker_names: list[str]
    """The live workers that listen on the queue (``<prefix>:workers:<queue>``), as RQ's
    ``Worker.all(queue=...)`` finds them."""


@dataclass(frozen=True)
class WorkerSummary:
    name: str
    state: str
    queue_names: list[str]
    current_job_id: str | None
    successful_job_count: int
    failed_job_count: int
    total_working_time: float
    birth_date: datetime | None
    last_heartbeat: datetime | None
    hostname: str | None
    pid: int | None


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    suspended: bool
    suspension_ttl: int | None
    """Seconds until the suspension expires by itself (``suspend --duration``); None when it
    does not, or when workers are not suspended."""
    queues: list[QueueCounts]
    workers: list[WorkerSummary]


def read_snapshot(connection: Redis, queue_names: list[str]) -> Snapshot:
    """The queues named (every queue in ``<prefix>:queues`` when none are), the workers that
    listen on them (every live worker when none are named), and the suspension."""
    names = queue_names or [queue.name for queue in Queue.all(connection)]
    with connection.pipeline(transaction=False) as pipe:
        pipe.ttl(keys.SUSPENDED)
        pipe.smembers(keys.WORKERS)
        for name in names:
            pipe.llen(keys.queue(name))
            for registry in REGISTRIES:
                pipe.zcard(keys.registry(registry, name))
            pipe.smembers(keys.queue_workers(name))
        replies = iter(pipe.execute())
    ttl = int(next(replies))  # -2: no key; -1: no expiry
    all_worker_keys = as_texts(next(replies))
    queues: list[QueueCounts] = []
    for name in names:
        counts = {count: int(next(replies)) for count in COUNTS}
        queue_worker_keys = as_texts(next(replies))
        queues.append(QueueCounts(name, counts, sorted(map(_worker_name, queue_worker_keys), key=natural)))
    if queue_names:
        worker_names = {worker for queue in queues for worker in queue.worker_names}
    else:
        worker_names = {_worker_name(key) for key in all_worker_keys}
    return Snapshot(
        taken_at=utcnow(),
        suspended=ttl != -2,
        suspension_ttl=ttl if ttl >= 0 else None,
        queues=queues,
        workers=_read_workers(connection, sorted(worker_names, key=natural)),
    )


def _read_workers(connection: Redis, names: list[str]) -> list[WorkerSummary]:
    """The workers whose registry entry is still there, each with its current job: the first
    (by member) of its executions whose hash exists, as RQ's ``Worker.get_current_job_id()``."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.worker(name))
            pipe.smembers(keys.worker_executions(name))
        replies = iter(pipe.execute())
    entries = [(name, as_fields(next(replies)), sorted(as_texts(next(replies)))) for name in names]
    with connection.pipeline(transaction=False) as pipe:
        for _, _, members in entries:
            for member in members:
                job_id, _, execution_id = member.partition(":")
                pipe.exists(keys.execution(job_id, execution_id))
        live = iter(pipe.execute())
    workers = []
    for name, fields, members in entries:
        running = [member.partition(":")[0] for member in members if next(live)]
        if fields:  # an entry gone since the set was read: the worker has just died
            workers.append(_summary(name, fields, running[0] if running else None))
    return workers


def _summary(name: str, fields: dict[str, bytes], current_job_id: str | None) -> WorkerSummary:
    text = {field: value.decode(errors="replace") for field, value in fields.items()}
    queues = text.get("queues", "")
    return WorkerSummary(
        name=name,
        state=text.get("state", "?"),
        queue_names=queues.split(",") if queues else [],
        current_job_id=current_job_id,
        successful_job_count=_int(text.get("successful_job_count")) or 0,
        failed_job_count=_int(text.get("failed_job_count")) or 0,
        total_working_time=_float(text.get("total_working_time")) or 0.0,
        birth_date=_date(text.get("birth")),
        last_heartbeat=_date(text.get("last_heartbeat")),
        hostname=text.get("hostname") or None,
        pid=_int(text.get("pid")),
    )


def _worker_name(key: str) -> str:
    return as_text(key)[len(keys.worker("")) :]


def _int(text: str | None) -> int | None:
    """A number from a worker's hash; None when it is missing or not a number (a worker hash
    is written by other programs too: one bad field should not hide the rest)."""
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _date(text: str | None) -> datetime | None:
    try:
        return utcparse(text) if text else None
    except ValueError:
        return None


def iso(moment: datetime | None) -> str | None:
    """A time as RQ writes it in its hashes (ISO 8601, UTC, ``Z``)."""
    return utcformat(moment) if moment is not None else None


_DIGITS = re.compile(r"(\d+)")


def natural(name: str) -> list[tuple[int, int | str]]:
    """Sorts names as people read them: ``web1.2.3`` before ``web1.10.11``."""
    return [(1, int(part)) if part.isdigit() else (0, part) for part in _DIGITS.split(name)]
