"""An idle supervisor's Redis work leaves nothing behind in Python's heap.

The idle soak (``bench/soak.py``, an hour) is the real check that an idle pool's memory is flat;
this is its cheap, deterministic part for every test run: the calls the supervisor's loop makes
while its workers are idle (the wait on the wake-up lists, the command relay, the scheduler,
maintenance, the heartbeat, the look at held jobs), made many times in this process against the
test Redis, must not grow the Python objects alive afterwards. A leak of the size once reported
from outside (1.3 MB an hour, about 360 bytes for each second of an idle loop, in which each of
these calls is made at least once) would add about 100 KB over the rounds below.

Python's own allocations only (tracemalloc); the Rust core's are covered by the soak.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import redis

from jobpool import keys
from jobpool.pool.children import Child
from jobpool.pool.scheduler import enqueue_due_jobs
from jobpool.pool.supervisor import Supervisor
from jobpool.pool.wakeup_wait import IDLE_WAIT_SECONDS

WARMUP_ROUNDS = 30
ROUNDS = 300
MOST_BYTES_LEFT = 24 * 1024
"""What the rounds may leave alive: caches settling, nothing that grows with the rounds."""


@pytest.fixture
def idle_supervisor(redis_url: str, connection: redis.Redis) -> Iterator[Supervisor]:
    """A supervisor of two idle workers that are only pipes (nothing is forked)."""
    pool = Supervisor(redis_url, ["q"], 2, name="idle-memory")
    pipes = []
    for slot in range(2):
        report_read, report_write = os.pipe()
        nudge_read, nudge_write = os.pipe()
        os.set_blocking(nudge_write, False)
        pipes += [report_read, report_write, nudge_read, nudge_write]
        name = f"idle-memory.{slot}.1"
        child = Child(slot, 40_000 + slot, name, report_read, nudge_write, time.monotonic())
        child.reported.ready = True
        pool.children[child.pid] = child
    yield pool
    for fd in pipes:
        os.close(fd)
    pool.relay.channels.drop()
    pool.connection.close()
    pool.wakeups.connection.close()


def idle_round(pool: Supervisor, connection: redis.Redis) -> None:
    """One pass of what the idle loop does with Redis (a marker first, so that the wait on the
    wake-up lists returns at once rather than after its timeout)."""
    connection.rpush(keys.wakeup("q"), "1")
    pool.held.due_in()
    pool.wakeups.wait(IDLE_WAIT_SECONDS)
    pool.relay.relay()
    pool.held.reclaim_slow()
    pool.held.put_back()
    enqueue_due_jobs(pool.connection, pool.queue_names, pool.name)
    pool.maintenance.run()
    pool.heartbeat.beat()
    pool.status_line()


def test_idle_rounds_leave_no_python_objects_behind(
    idle_supervisor: Supervisor, connection: redis.Redis
) -> None:
    for _ in range(WARMUP_ROUNDS):
        idle_round(idle_supervisor, connection)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(ROUNDS):
            idle_round(idle_supervisor, connection)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < MOST_BYTES_LEFT, f"{ROUNDS} idle rounds left {after - before} bytes alive"
