"""RQ's own classes and CLI read a pool's jobs right while they run and after they end.

A pool's workers take jobs without RQ's per-execution records (the execution hash, the job's
executions index, the worker's executions set): most jobs end within a millisecond, and those
records would cost three keys each. The supervisor writes them, within half a second, for the
executions still running; these tests read a job that runs longer with RQ's code, as a
dashboard or an admin script would, and again after it ends, and check quick jobs leave no
records behind.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import redis
import rq.job
import rq.registry
import rq.worker

import jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.job import JobStatus
from support.pool_process import Pool


def rq_executions(connection: redis.Redis, job_id: str) -> list[rq.job.Execution]:
    return rq.job.Job.fetch(job_id, connection=connection).get_executions()


def test_rq_reads_a_running_pool_job_and_its_end(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    pool("-n", "1", "q").wait_for_message("READY=1")
    job = Queue("q", connection=connection).enqueue(jobs.sleep_for, 2.5)
    wait_for(lambda: job.get_status() == JobStatus.STARTED)
    wait_for(lambda: bool(rq_executions(connection, job.id)), deadline_seconds=5)
    (execution,) = rq_executions(connection, job.id)
    started = rq.registry.StartedJobRegistry("q", connection=connection)
    assert started.get_job_ids() == [job.id]
    assert started.get_job_and_execution_ids() == [(job.id, execution.id)]
    (worker,) = rq.worker.Worker.all(connection=connection)
    assert execution.worker_name == worker.name and worker.get_state() == "busy"
    assert worker.get_current_job_id() == job.id
    assert [e.id for e in worker.get_current_executions()] == [execution.id]
    rq_job = rq.job.Job.fetch(job.id, connection=connection)
    assert rq_job.started_at is not None
    assert abs(execution.created_at.timestamp() - rq_job.started_at.timestamp()) < 0.5
    info = subprocess.run(
        [sys.executable, "-m", "rq.cli", "info", "-u", redis_url, "q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert info.returncode == 0 and "busy" in info.stdout, info.stdout

    wait_for(lambda: job.get_status() == JobStatus.FINISHED, deadline_seconds=10)
    assert rq_executions(connection, job.id) == []
    assert started.get_job_ids() == [] and started.count == 0
    finished = rq.registry.FinishedJobRegistry("q", connection=connection)
    assert finished.get_job_ids() == [job.id]
    assert rq.job.Job.fetch(job.id, connection=connection).return_value() == 2.5
    assert not connection.keys(f"rq:execution:{job.id}:*")
    assert not connection.exists(f"rq:worker:{worker.name}:executions")


def test_quick_pool_jobs_never_write_execution_records(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """Quick jobs end before the supervisor's next pass: their records are never written (no
    key of theirs is left, and RQ's readers find the same as for a job recorded and cleaned)."""
    queue = Queue("q", connection=connection)
    quick = [queue.enqueue(jobs.add, i, i) for i in range(200)]
    assert pool("-n", "2", "--burst", "q").wait() == 0
    assert all(job.get_status() == JobStatus.FINISHED for job in quick)
    assert not connection.keys("rq:execution:*") and not connection.keys("rq:executions:*")
    assert rq_executions(connection, quick[0].id) == []
    assert rq.registry.StartedJobRegistry("q", connection=connection).count == 0
