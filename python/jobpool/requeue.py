"""Moving a job out of a registry back onto its queue (lua/requeue.lua): a failed job requeued,
or a job RQ left in its ready registry pushed. A job with a rate limit goes into its limit's
waiting set instead, as RQ's requeue puts it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from . import keys, scripts
from .rate_limit import promotion_templates
from .timeutils import epoch_seconds, utcformat, utcnow


def requeue_args(job_id: str, at_front: bool, queue_key: str, now: datetime) -> list[Any]:
    """The arguments of lua/requeue.lua, which moves a job out of a registry onto its queue."""
    return [
        job_id,
        "1" if at_front else "0",
        queue_key,
        utcformat(now),
        epoch_seconds(now),
        *promotion_templates(),
    ]


def requeue_from(
    client: Redis | Pipeline, registry_key: str, job_id: str, queue_name: str, at_front: bool = False
) -> Any:
    """Runs lua/requeue.lua on ``client``: the job moves from the registry at ``registry_key``
    onto queue ``queue_name`` only if it is in the registry (the reply says whether it moved)."""
    queue_key = keys.queue(queue_name)
    return scripts.run(
        "requeue",
        client,
        keys=[registry_key, keys.job(job_id), queue_key, keys.QUEUES, keys.wakeup(queue_name)],
        args=requeue_args(job_id, at_front, queue_key, utcnow()),
    )
