"""A pool's upkeep of RQ's shared data, end to end against a real ``jobpool start``: its
maintenance trims expired registry entries, and its heartbeat registers its workers again after
Redis has lost them."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import redis
import rq
import rq.registry

import jobs
from conftest import wait_for
from jobpool import Queue, keys
from jobpool.job import JobStatus
from jobpool.pool.heartbeat import HEARTBEAT_SECONDS
from jobpool.timeutils import epoch_seconds
from support.pool_process import Pool, jobpool
from support.redis_replies import Members


def test_the_pool_trims_expired_registry_entries(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    now = epoch_seconds()
    finished, failed = keys.registry("finished", "q"), keys.registry("failed", "q")
    # Jobs whose result_ttl or failure_ttl has passed: their hashes have expired, their entries stay.
    connection.zadd(finished, {f"old-{i}": now - 100 + i for i in range(40)})
    connection.zadd(failed, {f"old-{i}": now - 100 + i for i in range(10)})
    connection.zadd(finished, {"live": now + 600, "forever": "+inf"})
    connection.zadd(failed, {"live": now + 600})
    connection.zadd(keys.registry("canceled", "q"), {"canceled": now - 100})  # RQ keeps these
    # A dependent an RQ process left ready to enqueue (it died before pushing it).
    queue = rq.Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 1)
    ready = queue.enqueue(jobs.add, 2, 3, depends_on=parent)
    assert ready.get_status() == rq.job.JobStatus.DEFERRED
    connection.lrem(keys.queue("q"), 0, parent.id)
    parent.set_status(rq.job.JobStatus.FINISHED)
    with connection.pipeline() as pipe:
        rq.registry.ReadyJobRegistry("q", connection=connection).register_jobs([ready], pipe)
        pipe.execute()

    pool("-n", "1", "q").wait_for_message("READY=1")
    wait_for(lambda: connection.zcard(failed) == 1, deadline_seconds=15)  # the first maintenance
    assert connection.zrange(failed, 0, -1) == [b"live"]
    assert not [m for m in cast(Members, connection.zrange(finished, 0, -1)) if m.startswith(b"old-")]
    assert connection.zrange(keys.registry("canceled", "q"), 0, -1) == [b"canceled"]
    jobpool_job = Queue("q", connection=connection).fetch_job(ready.id)
    assert jobpool_job is not None
    wait_for(lambda: jobpool_job.get_status() == JobStatus.FINISHED)  # pushed, then run by the pool
    assert jobpool_job.return_value() == 5 and not connection.zcard(keys.registry("ready", "q"))
    assert set(connection.zrange(finished, 0, -1)) == {b"live", b"forever", ready.id.encode()}


def test_the_heartbeat_registers_the_workers_again_after_redis_lost_them(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    pids = sorted(worker.pid for worker in running.workers())
    assert sorted(cast(int, w.pid) for w in rq.Worker.all(connection=connection)) == pids

    connection.flushall()  # as a restart of Redis without persistence leaves it
    wait_for(lambda: len(rq.Worker.all(connection=connection)) == 2, deadline_seconds=HEARTBEAT_SECONDS + 3)
    workers = rq.Worker.all(queue=rq.Queue("q", connection=connection))
    assert sorted(cast(int, w.pid) for w in workers) == pids
    for worker in workers:
        assert worker.name.startswith("testpool.") and worker.queue_names() == ["q"]
        assert worker.get_state() == "idle" and worker.birth_date is not None and worker.hostname
        assert 0 < connection.ttl(worker.key) <= 60
    ours = jobpool("info", url=redis_url)
    assert ours.returncode == 0 and ours.stdout.count("testpool.") == 2, ours.stdout

    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2)  # and they work on
    wait_for(lambda: job.get_status() == JobStatus.FINISHED)
    job.refresh()
    assert job.worker_name and rq.Worker.find_by_key(keys.worker(job.worker_name), connection)
    assert sum(w.successful_job_count for w in rq.Worker.all(connection=connection)) == 1
