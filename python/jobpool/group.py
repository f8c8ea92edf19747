"""Group: jobs tracked together under one id, as RQ 3.0's ``rq.group.Group``.

The Redis data is RQ's: ``<prefix>:groups`` is the set of every group's id, ``<prefix>:group:<id>``
the set of its jobs' ids, and each job's hash holds its ``group_id``. None of them expires (RQ
gives them no TTL): maintenance (``clean_registries``, run by a pool's supervisor and as a
worker starts, at most once per ``MAINTENANCE_INTERVAL`` for a whole deployment, under RQ's
lock ``<prefix>:clean_groups``) drops the ids of jobs whose hash has expired or been deleted, and
the ids of groups left with no job.

Unlike RQ's, the cleanups read and write in a fixed number of round trips for any number of
groups and jobs, rather than some per group.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from redis import Redis

from . import keys
from .exceptions import NoSuchGroupError
from .job import Job
from .redis_values import as_texts

if TYPE_CHECKING:
    from redis.client import Pipeline

    from .queue import EnqueueData, Queue

MAINTENANCE_INTERVAL = 600
"""How often a deployment's groups are cleaned: RQ's workers' default maintenance interval."""


class Group:
    """A set of jobs with one id: ``Group.create(connection)``, then
    ``group.enqueue_many(queue, [Queue.prepare_data(...), ...])``."""

    REDIS_GROUP_NAME_PREFIX = keys.group("")
    """``<prefix>:group:``, as RQ's class attribute."""
    REDIS_GROUP_KEY = keys.GROUPS
    """``<prefix>:groups``, the set of every group's id."""
    REDIS_GROUP_CLEANING_KEY = keys.CLEAN_GROUPS
    """``<prefix>:clean_groups``, the lock one maintenance run at a time holds."""

    def __init__(self, connection: Redis, name: str | None = None):
        if connection is None:
            raise TypeError("Group needs a Redis connection")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"A group name must be a string, not {type(name).__name__}")
        self.name = name if name else uuid4().hex
        self.connection = connection
        self.key = keys.group(self.name)

    def __repr__(self) -> str:
        return f"Group(id={self.name})"

    # ---- creating and finding ---------------------------------------------------------------

    @classmethod
    def create(cls, connection: Redis, name: str | None = None) -> Group:
        """A group (a random id unless ``name``); nothing is written until jobs join it."""
        return cls(connection=connection, name=name)

    @classmethod
    def get_key(cls, name: str) -> str:
        """The key of the set of the group's job ids."""
        return keys.group(name)

    @classmethod
    def fetch(cls, name: str, connection: Redis) -> Group:
        """The group ``name``; NoSuchGroupError when it has no job (its set does not exist)."""
        group = cls(connection=connection, name=name)
        if not connection.exists(group.key):
            raise NoSuchGroupError(f"No such group: {name!r}")
        return group

    @classmethod
    def all(cls, connection: Redis) -> list[Group]:
        """Every group that has jobs, sorted by id; ids in ``<prefix>:groups`` of groups with no
        job left are dropped from it, as RQ's ``Group.all`` drops them."""
        names = sorted(as_texts(connection.smembers(keys.GROUPS)))
        if not names:
            return []
        gone = _missing(connection, [keys.group(name) for name in names])
        if gone:
            connection.srem(keys.GROUPS, *(names[index] for index in gone))
        return [
            cls(connection=connection, name=name) for index, name in enumerate(names) if index not in gone
        ]

    # ---- its jobs ---------------------------------------------------------------------------

    def enqueue_many(
        self, queue: Queue, job_datas: Iterable[EnqueueData], pipeline: Pipeline | None = None
    ) -> list[Job]:
        """Enqueues the jobs (``Queue.prepare_data``) on ``queue`` as members of this group: each
        job's ``group_id`` is the group's, and the group's set and ``<prefix>:groups`` get them
        in the same transaction. As RQ's, a ``pipeline`` given is executed here."""
        return queue._enqueue_many(job_datas, pipeline, group_id=self.name, then=self._add_jobs, execute=True)

    def _add_jobs(self, jobs: list[Job], pipeline: Pipeline) -> None:
        if jobs:
            pipeline.sadd(self.key, *(job.id for job in jobs))
            pipeline.sadd(keys.GROUPS, self.name)

    def get_jobs(self) -> list[Job]:
        """The group's jobs that still exist (the ids of those gone are dropped first)."""
        job_ids = self.cleanup()
        return [job for job in Job.fetch_many(job_ids, self.connection) if job is not None]

    def cleanup(self) -> list[str]:
        """Drops from the group the ids of jobs whose hash has expired or been deleted; returns
        the ids kept."""
        job_ids = sorted(as_texts(self.connection.smembers(self.key)))
        kept, gone = _split_existing(self.connection, job_ids)
        if gone:
            self.connection.srem(self.key, *gone)
        return kept

    def delete_job(self, job_id: str, pipeline: Pipeline | None = None) -> None:
        """Takes ``job_id`` out of the group (the job itself is left alone)."""
        (pipeline if pipeline is not None else self.connection).srem(self.key, job_id)

    # ---- maintenance ------------------------------------------------------------------------

    @classmethod
    def acquire_maintenance_lock(cls, connection: Redis, timeout: int) -> bool:
        """Whether this caller may clean the groups now: the lock is never released, it expires
        after ``timeout`` seconds, so the groups are cleaned at most once a window."""
        return bool(connection.set(keys.CLEAN_GROUPS, 1, nx=True, ex=timeout))

    @classmethod
    def clean_registries(cls, connection: Redis) -> None:
        """Drops, from every group, the ids of jobs that are gone, then drops from
        ``<prefix>:groups`` the groups left with no job (at most five round trips, whatever the
        number of groups and jobs; one when there is no group)."""
        names = sorted(as_texts(connection.smembers(keys.GROUPS)))
        if not names:
            return
        with connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.smembers(keys.group(name))
            members = [sorted(as_texts(ids)) for ids in pipe.execute()]
        job_ids = [job_id for ids in members for job_id in ids]
        _, gone = _split_existing(connection, job_ids)
        gone_ids = set(gone)
        with connection.pipeline(transaction=False) as pipe:
            for name, ids in zip(names, members, strict=True):
                expired = [job_id for job_id in ids if job_id in gone_ids]
                if expired:
                    pipe.srem(keys.group(name), *expired)
            for name in names:
                pipe.exists(keys.group(name))
            replies = pipe.execute()[-len(names) :]
        empty = [name for name, exists in zip(names, replies, strict=True) if not exists]
        if empty:
            connection.srem(keys.GROUPS, *empty)


def clean_groups_if_due(connection: Redis, interval: int = MAINTENANCE_INTERVAL) -> bool:
    """Cleans every group (``Group.clean_registries``) unless another process did within
    ``interval`` seconds, as RQ's workers' maintenance does; returns whether it did."""
    if not Group.acquire_maintenance_lock(connection, max(interval - 1, 1)):
        return False
    Group.clean_registries(connection)
    return True


def _split_existing(connection: Redis, job_ids: list[str]) -> tuple[list[str], list[str]]:
    """(ids whose job hash exists, ids whose hash is gone), each in the order given."""
    gone_at = set(_missing(connection, [keys.job(job_id) for job_id in job_ids]))
    kept = [job_id for index, job_id in enumerate(job_ids) if index not in gone_at]
    gone = [job_id for index, job_id in enumerate(job_ids) if index in gone_at]
    return kept, gone


def _missing(connection: Redis, names: list[str]) -> set[int]:
    """The indexes in ``names`` of the keys that do not exist (one round trip; none for none)."""
    if not names:
        return set()
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(name)
        replies: list[Any] = pipe.execute()
    return {index for index, exists in enumerate(replies) if not exists}
