"""RateLimit: at most ``concurrency`` jobs of a key queued or running at once (RQ 3.0's
``rq.rate_limit``), in RQ's Redis data: ``<prefix>:rl:<key>`` (the limit's concurrency),
``<prefix>:rl:<key>:allowed`` (the jobs holding its slots), ``<prefix>:rl:<key>:rate_limited``
(the jobs waiting for one, status ``rate_limited``) and ``<prefix>:rl-keys``.

Every move is a script of rust/lua (their shared part is in lua/lib/library.lua): an enqueue saves
the job and makes it wait in one transaction (enqueue.lua, rate_limit_acquire.lua); the record of a
job's end (finish.lua, fail.lua, abandoned jobs included) frees its slot and promotes the oldest
waiting jobs in the same script run, so no slot is leaked by a worker killed as its job ends;
cancel and delete free it unless the job still runs (rate_limit_release.lua); a pool's maintenance
frees what nothing else could and forgets limits no job uses (rate_limit_cleanup.lua).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis import Redis

from . import keys, scripts
from .redis_values import as_texts
from .timeutils import epoch_seconds, utcformat, utcnow

if TYPE_CHECKING:
    from redis.client import Pipeline

    from .job_hash import JobFields


class RateLimit:
    """``key`` groups jobs; at most ``concurrency`` of them are queued or running at once."""

    def __init__(self, key: str, concurrency: int):
        if not key:
            raise ValueError("key must not be empty")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError("concurrency must be an integer of at least 1")
        self.key = key
        self.concurrency = concurrency


def promotion_templates() -> list[str]:
    """What the rate-limit scripts take to promote waiting jobs: job, queue and wake-up
    templates, then the rate-limit ones (see lua/lib/library.lua)."""
    mark = scripts.ID_MARK
    return [keys.job(mark), keys.queue(mark), keys.wakeup(mark), *keys.rate_limit_templates()]


def acquire(client: Any, job: JobFields) -> Any:
    """Runs rate_limit_acquire.lua for ``job`` on ``client`` (the enqueue's pipeline)."""
    now = utcnow()
    return scripts.run(
        "rate_limit_acquire",
        client,
        keys=[job.key],
        args=[
            job.id,
            job.rate_limit_key,
            job.rate_limit_concurrency,
            utcformat(now),
            epoch_seconds(now),
            *promotion_templates(),
        ],
    )


def release(connection: Redis | Pipeline, job_id: str, name: str) -> Any:
    """Takes a canceled or deleted job out of rate limit ``name`` (rate_limit_release.lua)."""
    now = utcnow()
    return scripts.run(
        "rate_limit_release",
        connection,
        keys=[keys.executions(job_id)],
        args=[job_id, name, utcformat(now), epoch_seconds(now), *promotion_templates()],
    )


class RateLimitRegistry:
    """The sets of one rate limit, as RQ's ``RateLimitRegistry`` reads them."""

    rl_keys_key = keys.RATE_LIMIT_KEYS

    def __init__(self, key: str, connection: Redis):
        self.key = key
        self.connection = connection

    @classmethod
    def all(cls, connection: Redis) -> list[RateLimitRegistry]:
        """Every rate limit in use (the members of ``<prefix>:rl-keys``)."""
        return [cls(name, connection) for name in sorted(as_texts(connection.smembers(cls.rl_keys_key)))]

    @classmethod
    def from_job(cls, job: JobFields) -> RateLimitRegistry:
        if not job.rate_limit_key:
            raise ValueError(f"Job {job.id} has no rate limit")
        return cls(job.rate_limit_key, job.connection)

    @property
    def config_key(self) -> str:
        return keys.rate_limit(self.key)

    @property
    def allowed_key(self) -> str:
        return keys.rate_limit_allowed(self.key)

    @property
    def rate_limited_key(self) -> str:
        return keys.rate_limit_waiting(self.key)

    @property
    def concurrency(self) -> int:
        """The limit's stored concurrency; 0 when unset."""
        value = self.connection.hget(self.config_key, "concurrency")
        return int(value) if value else 0

    def get_allowed_job_ids(self) -> list[str]:
        return as_texts(self.connection.zrange(self.allowed_key, 0, -1))

    def get_rate_limited_job_ids(self) -> list[str]:
        return as_texts(self.connection.zrange(self.rate_limited_key, 0, -1))

    def get_allowed_job_count(self) -> int:
        return int(self.connection.zcard(self.allowed_key))

    def get_rate_limited_job_count(self) -> int:
        return int(self.connection.zcard(self.rate_limited_key))

    def cancel(self, job_id: str) -> list[str]:
        """Takes ``job_id`` out of this limit: out of the waiting set, and its slot freed unless
        it is queued or started or has a live execution; returns the ids promoted."""
        return as_texts(release(self.connection, job_id, self.key))

    def cleanup(self) -> tuple[int, int, bool]:
        """RQ's maintenance of the limit (see rate_limit_cleanup.lua): (slots freed, jobs
        promoted, whether the limit was forgotten)."""
        return clean_rate_limits(self.connection, [self.key])[0][1:]


def clean_rate_limits(connection: Redis, names: list[str]) -> list[tuple[str, int, int, bool]]:
    """Runs the maintenance of the rate limits ``names`` (rate_limit_cleanup.lua), in one round
    trip; returns (name, slots freed, jobs promoted, forgotten) for each."""
    if not names:
        return []
    now = utcnow()
    templates = promotion_templates()
    args = [
        utcformat(now),
        epoch_seconds(now),
        *templates[:3],
        keys.executions(scripts.ID_MARK),
        *templates[3:],
    ]
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            scripts.run("rate_limit_cleanup", pipe, keys=[], args=[name, *args])
        replies = pipe.execute()
    return [
        (name, int(freed), int(promoted), bool(forgotten))
        for name, (freed, promoted, forgotten) in zip(names, replies, strict=True)
    ]
