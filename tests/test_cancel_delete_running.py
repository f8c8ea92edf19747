"""Canceling or deleting a job while a pool runs it, with jobpool's API or RQ's, leaves what RQ
3.0's cancel and delete leave: a canceled job in the canceled registry alone, a deleted job gone.
When the worker then records the job's end, it writes nothing about it: the canceled job stays
canceled (RQ's own worker would mark it finished, leaving it in two registries), the deleted job
is not brought back as a stub hash that cannot be read.

A pool writes RQ's records of an execution (which RQ's cancel and delete read to find its
started entry) at its supervisor's next pass, within half a second: the jobs below are canceled
or deleted once they have them, and a last test shows what RQ's cancel of a younger job leaves."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import cast

import pytest
import redis
import rq.job

import jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.exceptions import NoSuchJobError
from jobpool.job import Job, JobStatus
from support.pool_process import Pool
from support.redis_replies import Members


@pytest.fixture
def running_job(connection: redis.Redis, pool: Callable[..., Pool]) -> Callable[[], tuple[Job, Job]]:
    """A one-worker pool running a two-second job; returns (the running job, a job queued after
    it: once that one has finished, the worker has recorded the first)."""

    def start() -> tuple[Job, Job]:
        pool("-n", "1", "q").wait_for_message("READY=1")
        queue = Queue("q", connection=connection)
        running = queue.enqueue(jobs.sleep_for, 2.0)
        after = queue.enqueue(jobs.add, 1, 1)
        wait_for(lambda: running.get_status() == JobStatus.STARTED)
        wait_for(lambda: bool(rq.job.Job.fetch(running.id, connection=connection).get_executions()))
        return running, after

    return start


def job_keys(connection: redis.Redis, job_id: str) -> list[str]:
    """Every key whose name holds the job's id."""
    return sorted(key.decode() for key in connection.scan_iter(f"*{job_id}*"))


def registries_holding(connection: redis.Redis, job_id: str) -> list[str]:
    found = []
    for kind in ("wip", "finished", "failed", "deferred", "scheduled", "canceled"):
        members = [
            member.decode().split(":")[0]
            for member in cast(Members, connection.zrange(f"rq:{kind}:q", 0, -1))
        ]
        if job_id in members:
            found.append(kind)
    return found


@pytest.mark.parametrize("library", ["jobpool", "rq"])
def test_cancel_of_a_running_job(
    connection: redis.Redis, running_job: Callable[[], tuple[Job, Job]], library: str
) -> None:
    job, after = running_job()
    if library == "jobpool":
        job.cancel()
    else:
        rq.job.Job.fetch(job.id, connection=connection).cancel()
    assert registries_holding(connection, job.id) == ["canceled"]  # as RQ 3.0 leaves it
    assert job.get_status() == JobStatus.CANCELED
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
    assert registries_holding(connection, job.id) == ["canceled"]
    assert job.get_status() == JobStatus.CANCELED and job.latest_result() is None
    assert not connection.keys(f"rq:execution:{job.id}:*")  # the worker forgot its execution


@pytest.mark.parametrize("library", ["jobpool", "rq"])
def test_delete_of_a_running_job(
    connection: redis.Redis, running_job: Callable[[], tuple[Job, Job]], library: str
) -> None:
    job, after = running_job()
    if library == "jobpool":
        job.delete()
    else:
        rq.job.Job.fetch(job.id, connection=connection).delete()
    assert job_keys(connection, job.id) == [] and registries_holding(connection, job.id) == []
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
    assert job_keys(connection, job.id) == [] and registries_holding(connection, job.id) == []
    with pytest.raises(NoSuchJobError):
        Job.fetch(job.id, connection=connection)
    for key in connection.scan_iter("rq:worker:*:executions"):
        assert not any(
            member.startswith(job.id.encode()) for member in cast("set[bytes]", connection.smembers(key))
        )


def test_rq_cancel_of_a_job_before_the_pool_wrote_its_records(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    """Before the pool has written RQ's records of an execution, RQ's cancel cannot find its
    started entry and leaves it; the job still ends canceled, with no result, and the entry goes
    when the worker records the end. The supervisor is frozen (SIGSTOP) while the worker takes
    the job (its record of the job before takes it), so the records are not written before the
    cancel, however the machine is loaded."""
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    first = queue.enqueue(jobs.sleep_for, 1.0)
    wait_for(lambda: first.get_status() == JobStatus.STARTED)
    running.process.send_signal(signal.SIGSTOP)
    try:
        job = queue.enqueue(jobs.sleep_for, 1.0)
        after = queue.enqueue(jobs.add, 1, 1)
        wait_for(lambda: job.get_status() == JobStatus.STARTED)
        rq_job = rq.job.Job.fetch(job.id, connection=connection)
        assert rq_job.get_executions() == []
        rq_job.cancel()
        assert registries_holding(connection, job.id) == ["wip", "canceled"]
    finally:
        running.process.send_signal(signal.SIGCONT)
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)
    assert registries_holding(connection, job.id) == ["canceled"]
    assert job.get_status() == JobStatus.CANCELED and job.latest_result() is None
    assert not connection.keys(f"rq:execution:{job.id}:*")
