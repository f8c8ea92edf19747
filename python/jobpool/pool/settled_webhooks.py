"""Webhooks of the endings a pool's supervisor writes for a dead worker: the jobs whose records it
kept in the ledger (finished or failed before it died), and the job it was running (failed, as
RQ's worker fails a job whose work horse died, and sends its ``failed`` webhooks).

The supervisor runs no job code and waits on no endpoint: it only asks Redis which of those jobs
have webhooks (one round trip, and only when a worker died owning jobs); a process forked for
them reads the jobs and sends their webhooks.
"""

from __future__ import annotations

import logging

from redis import Redis

from .. import keys
from ..job import Job, JobStatus
from ..serializers import Serializer

logger = logging.getLogger("jobpool.webhook")

Settled = tuple[str, str, str | None]
"""An ending written for a dead worker: (job id, "finished" or "failed", the failure's reason;
None: the one its latest result holds)."""


def with_webhooks(connection: Redis, settled: list[Settled]) -> list[Settled]:
    """Those of ``settled`` whose job has webhooks."""
    if not settled:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for job_id, _, _ in settled:
            pipe.hexists(keys.job(job_id), "webhooks")
        present = pipe.execute()
    return [each for each, has in zip(settled, present, strict=True) if has]


def send(connection: Redis, settled: list[Settled], serializer: Serializer | None = None) -> None:
    """Sends each job's webhooks for how it ended, now (a job gone meanwhile sends none)."""
    for job_id, status, reason in settled:
        try:
            job = Job.fetch(job_id, connection=connection, serializer=serializer)
            if status == JobStatus.FAILED.value and reason is None:
                latest = job.latest_result()
                reason = latest.exc_string if latest is not None else None
            job.send_webhooks(status, exc_string=reason)
        except Exception:
            logger.exception("Job %s: could not send its webhooks", job_id)
