"""Fixtures: a private redis-server for the whole session, emptied before each test.

Set REDIS_URL to run the suite against a server of your own instead; its database is emptied
before each test, so point it at a scratch database.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from jobpool.embedded_redis import EmbeddedRedis

if TYPE_CHECKING:
    from support.pool_process import Pool

# Job functions live in tests/jobs.py; workers (RQ's, in these tests) import them from here.
sys.path.insert(0, str(Path(__file__).parent))

SUCCESS_RESULT_FIELDS = {
    b"type",
    b"worker_name",
    b"return_value",
    b"execution_id",
    b"execution_started_at",
    b"execution_ended_at",
}
"""The fields of a success entry in RQ 3.0's results stream (``rq:results:<job id>``)."""


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def pool_at(tmp_path: Path) -> Iterator[Callable[..., Pool]]:
    """Starts ``jobpool start`` subprocesses on the Redis at a URL (then the arguments as on the
    command line); kills them all at the end of the test."""
    from support.pool_process import Pool  # it uses wait_for, below

    started: list[Pool] = []

    def start(url: str, *args: str, environ: dict[str, str] | None = None) -> Pool:
        directory = tmp_path / f"pool{len(started)}"
        directory.mkdir()
        started.append(Pool(url, directory, *args, environ=environ))
        return started[-1]

    yield start
    for each in started:
        each.close()


@pytest.fixture
def pool(redis_url: str, pool_at: Callable[..., Pool]) -> Callable[..., Pool]:
    """Starts ``jobpool start`` subprocesses on the test's Redis (arguments as on the command
    line); kills them all at the end of the test."""
    return lambda *args, environ=None: pool_at(redis_url, *args, environ=environ)


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def run_rq_worker(connection: redis.Redis, *queue_names: str) -> None:
    """Drains the queues with RQ's own SimpleWorker, in this process (burst mode)."""
    import rq
    from rq.worker import SimpleWorker

    queues = [rq.Queue(name, connection=connection) for name in queue_names]
    SimpleWorker(queues, connection=connection).work(burst=True, logging_level="WARNING")


def wait_for(condition: Callable[[], object], deadline_seconds: float = 20.0, step: float = 0.02) -> None:
    """Polls ``condition()`` every ``step`` until it is true, failing after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"condition not met within {deadline_seconds} s")
