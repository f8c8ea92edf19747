"""One scenario run through RQ and through jobpool: the library by name, and a burst drain of a
queue by each library's in-process worker (RQ's SimpleWorker, jobpool's SimpleWorker: the same
kind of worker, so that the two runs' timestamps are as close as a comparison needs)."""

from __future__ import annotations

from typing import Any

import redis
import rq

import jobpool
from conftest import run_rq_worker


def library(name: str) -> Any:
    """``rq`` or ``jobpool``, by name."""
    return rq if name == "rq" else jobpool


def drain(name: str, connection: redis.Redis, queue: str = "q") -> None:
    """Runs ``queue`` empty in burst mode with the library ``name``'s SimpleWorker."""
    if name == "rq":
        run_rq_worker(connection, queue)
    else:
        jobpool.SimpleWorker([queue], connection=connection).work(burst=True)
