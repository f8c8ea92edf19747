"""JobStatus: the ``status`` field of a job hash, RQ 3.0's values."""

from __future__ import annotations

from enum import Enum


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
