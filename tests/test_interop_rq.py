"""Data compatibility with the real rq 3.0 package, in both directions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
import redis
import rq
import rq.job

import jobpool
import jobs
from conftest import SUCCESS_RESULT_FIELDS, run_rq_worker
from jobpool.job import Dependency, Job
from support.redis_replies import Entries, Scored

# Fields that differ between two equivalent enqueues only because time passed.
TIMESTAMP_FIELDS = {b"created_at", b"enqueued_at"}


def _options(lib: Any) -> dict[str, object]:
    return dict(
        job_timeout="2m",
        result_ttl=100,
        ttl=200,
        failure_ttl=300,
        meta={"a": [1, 2]},
        description="described",
        retry=lib.Retry(2, [1, 5]),
        on_failure=lib.Callback(jobs.on_success_hook, 9),
    )


@pytest.mark.parametrize("at_front", [False, True])
def test_equivalent_enqueues_write_identical_hashes(connection: redis.Redis, at_front: bool) -> None:
    jobpool.Queue("q", connection=connection).enqueue(
        jobs.add, 1, 2, job_id="ours", at_front=at_front, **_options(jobpool)
    )
    rq.Queue("q", connection=connection).enqueue(
        jobs.add, 1, 2, job_id="theirs", at_front=at_front, **_options(rq)
    )
    ours, theirs = connection.hgetall("rq:job:ours"), connection.hgetall("rq:job:theirs")
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in TIMESTAMP_FIELDS} == {
        k: v for k, v in theirs.items() if k not in TIMESTAMP_FIELDS
    }
    assert abs(connection.ttl("rq:job:ours") - connection.ttl("rq:job:theirs")) <= 1


def test_equivalent_deferred_and_scheduled_jobs(connection: redis.Redis) -> None:
    parent = rq.Queue("q", connection=connection).enqueue(jobs.add, 0, 0, job_id="parent")
    jobpool.Queue("q", connection=connection).enqueue(
        jobs.add, 1, 2, job_id="ours", depends_on=Dependency([parent.id], allow_failure=True)
    )
    rq.Queue("q", connection=connection).enqueue(
        jobs.add, 1, 2, job_id="theirs", depends_on=rq.job.Dependency([parent.id], allow_failure=True)
    )
    jobpool.Queue("q", connection=connection).enqueue_in(timedelta(hours=1), jobs.add, 3, 4, job_id="ours_s")
    rq.Queue("q", connection=connection).enqueue_in(timedelta(hours=1), jobs.add, 3, 4, job_id="theirs_s")
    for ours, theirs in (("ours", "theirs"), ("ours_s", "theirs_s")):
        a, b = connection.hgetall(f"rq:job:{ours}"), connection.hgetall(f"rq:job:{theirs}")
        assert {k: v for k, v in a.items() if k not in TIMESTAMP_FIELDS} == {
            k: v for k, v in b.items() if k not in TIMESTAMP_FIELDS
        }
    assert connection.smembers("rq:job:parent:dependents") == {b"ours", b"theirs"}
    deferred = dict(cast(Scored, connection.zrange("rq:deferred:q", 0, -1, withscores=True)))
    scheduled = dict(cast(Scored, connection.zrange("rq:scheduled:q", 0, -1, withscores=True)))
    assert abs(deferred[b"ours"] - deferred[b"theirs"]) <= 1
    assert abs(scheduled[b"ours_s"] - scheduled[b"theirs_s"]) <= 1


def test_rq_reads_a_jobpool_job(connection: redis.Redis) -> None:
    parent = jobpool.Queue("q", connection=connection).enqueue(jobs.add, 0, 0)
    ours = jobpool.Queue("q", connection=connection).enqueue(
        jobs.echo, 1, k="v", depends_on=parent, **_options(jobpool)
    )
    theirs = rq.job.Job.fetch(ours.id, connection=connection)
    assert (theirs.func_name, theirs.args, theirs.kwargs, theirs.meta) == (
        "jobs.echo",
        (1,),
        {"k": "v"},
        {"a": [1, 2]},
    )
    assert (theirs.timeout, theirs.result_ttl, theirs.ttl, theirs.failure_ttl) == (120, 100, 200, 300)
    assert theirs.get_status() == rq.job.JobStatus.DEFERRED and theirs.origin == "q"
    assert theirs.description == "described" and theirs.dependency_ids == [parent.id]
    assert theirs.retries_left == 2 and theirs.retry_intervals == [1, 5]
    assert theirs.created_at == ours.created_at.replace(microsecond=theirs.created_at.microsecond)


def test_jobpool_reads_an_rq_job(connection: redis.Redis) -> None:
    parent = rq.Queue("q", connection=connection).enqueue(jobs.add, 0, 0)
    theirs = rq.Queue("q", connection=connection).enqueue(
        jobs.echo, 1, k="v", depends_on=parent, **_options(rq)
    )
    ours = Job.fetch(theirs.id, connection=connection)
    assert (ours.func_name, ours.args, ours.kwargs, ours.meta) == (
        "jobs.echo",
        (1,),
        {"k": "v"},
        {"a": [1, 2]},
    )
    assert (ours.timeout, ours.result_ttl, ours.ttl, ours.failure_ttl) == (120, 100, 200, 300)
    assert ours.is_deferred and ours.origin == "q" and ours.description == "described"
    assert ours.dependency_ids == [parent.id] and ours.retries_left == 2 and ours.retry_intervals == [1, 5]
    assert ours.created_at == theirs.created_at


def test_unmodelled_fields_survive_a_jobpool_save(connection: redis.Redis) -> None:
    theirs = rq.Queue("q", connection=connection).enqueue(
        jobs.add, 1, 2, repeat=rq.Repeat(times=3, interval=5)
    )
    before = connection.hgetall(theirs.key)
    ours = Job.fetch(theirs.id, connection=connection)
    ours.save()
    after = connection.hgetall(theirs.key)
    assert after[b"repeats_left"] == before[b"repeats_left"] == b"3"
    assert after[b"repeat_intervals"] == before[b"repeat_intervals"]


def test_rq_worker_runs_jobpool_jobs_from_several_queues(connection: redis.Redis) -> None:
    high, low = jobpool.Queue("high", connection=connection), jobpool.Queue("low", connection=connection)
    jobs_low = [low.enqueue(jobs.add, i, 1) for i in range(3)]
    jobs_high = [high.enqueue(jobs.add, i, 100) for i in range(3)]
    failing = low.enqueue(jobs.fail, "nope")
    run_rq_worker(connection, "high", "low")
    assert [j.return_value() for j in jobs_high] == [100, 101, 102]
    assert [j.return_value() for j in jobs_low] == [1, 2, 3]
    started = [Job.fetch(j.id, connection).started_at for j in jobs_high + jobs_low]
    assert started == sorted(started)  # every high job ran before any low one
    assert failing.is_failed and "ValueError: nope" in (failing.exc_info or "")
    assert failing.id in low.failed_job_registry and low.finished_job_registry.count == 3
    fetched = Job.fetch(jobs_low[0].id, connection)
    assert fetched.worker_name and fetched.ended_at and fetched.started_at


def test_results_stream_layout_written_by_rq_is_what_jobpool_reads(connection: redis.Redis) -> None:
    ok = jobpool.Queue("q", connection=connection).enqueue(jobs.add, 2, 2, result_ttl=77)
    failing = jobpool.Queue("q", connection=connection).enqueue(jobs.fail, "bad", failure_ttl=88)
    run_rq_worker(connection, "q")
    ((_, success_fields),) = cast(Entries, connection.xrange(f"rq:results:{ok.id}"))
    assert set(success_fields) == SUCCESS_RESULT_FIELDS
    assert success_fields[b"type"] == b"1"
    ((_, failure_fields),) = cast(Entries, connection.xrange(f"rq:results:{failing.id}"))
    assert failure_fields[b"type"] == b"2" and b"exc_string" in failure_fields
    assert (
        0 < connection.ttl(f"rq:results:{ok.id}") <= 77
        and 0 < connection.ttl(f"rq:results:{failing.id}") <= 88
    )
    latest = ok.latest_result()
    assert latest is not None and latest.return_value == 4 and latest.worker_name
