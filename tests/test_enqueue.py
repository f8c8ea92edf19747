"""Enqueueing: what lands in Redis, byte for byte where RQ pins it."""

from __future__ import annotations

import pickle
import re
import zlib
from datetime import datetime, timedelta, timezone
from typing import cast

import pytest
import redis

import jobs
from jobpool import Callback, Queue, Retry, keys
from jobpool.decorators import job as job_decorator
from jobpool.exceptions import DuplicateJobError
from jobpool.job import Job, JobStatus
from jobpool.serializers import JSONSerializer
from support.redis_replies import Fields, Members

TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_enqueue_writes_rq_layout(connection: redis.Redis) -> None:
    job = Queue("default", connection=connection).enqueue(jobs.add, 1, y=2, meta={"m": 1})
    raw = cast(Fields, connection.hgetall(f"rq:job:{job.id}"))
    assert raw[b"status"] == b"queued"
    assert pickle.loads(zlib.decompress(raw[b"data"])) == ("jobs.add", None, (1,), {"y": 2})
    assert pickle.loads(raw[b"meta"]) == {"m": 1}
    assert TIMESTAMP.fullmatch(raw[b"created_at"]) and TIMESTAMP.fullmatch(raw[b"enqueued_at"])
    assert raw[b"origin"] == b"default"
    assert raw[b"description"] == b"jobs.add(1, y=2)"
    assert raw[b"timeout"] == b"180"
    for empty in (
        b"started_at",
        b"ended_at",
        b"last_heartbeat",
        b"worker_name",
        b"group_id",
        b"success_callback_name",
        b"failure_callback_name",
        b"stopped_callback_name",
    ):
        assert raw[empty] == b""
    assert connection.lrange("rq:queue:default", 0, -1) == [job.id.encode()]
    assert connection.smembers("rq:queues") == {b"rq:queue:default"}
    assert connection.ttl(job.key) == -1
    assert job.get_status() == JobStatus.QUEUED and job.enqueued_at is not None


def test_enqueue_options_are_stored(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(
        jobs.add,
        1,
        2,
        job_id="opts",
        job_timeout="2m",
        result_ttl=10,
        ttl=300,
        failure_ttl="1h",
        description="custom",
        retry=Retry(3, [5, 10]),
        on_success=Callback(jobs.on_success_hook, 7),
    )
    raw = connection.hgetall("rq:job:opts")
    assert raw[b"timeout"] == b"120" and raw[b"result_ttl"] == b"10" and raw[b"failure_ttl"] == b"3600"
    assert raw[b"ttl"] == b"300" and 0 < connection.ttl("rq:job:opts") <= 300
    assert raw[b"description"] == b"custom"
    assert raw[b"retries_left"] == b"3" and raw[b"retry_intervals"] == b"[5, 10]"
    assert (
        raw[b"success_callback_name"] == b"jobs.on_success_hook" and raw[b"success_callback_timeout"] == b"7"
    )
    assert job.id == "opts"


@pytest.mark.parametrize(
    ("timeout", "seconds"), [(5, 5), ("7", 7), ("1h", 3600), ("3m", 180), ("5s", 5), ("2d", 172800), (-1, -1)]
)
def test_timeout_formats(connection: redis.Redis, timeout: object, seconds: int) -> None:
    job = Job.create(jobs.add, args=(1, 2), timeout=timeout, connection=connection)  # type: ignore[arg-type]
    assert job.timeout == seconds
    queued = Queue("q", connection=connection).enqueue_job(job)
    assert Job.fetch(queued.id, connection).timeout == seconds


def test_at_front_and_positions(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    first = queue.enqueue(jobs.add, 1, 1)
    second = queue.enqueue(jobs.add, 2, 2)
    urgent = queue.enqueue(jobs.add, 3, 3, at_front=True)
    assert queue.job_ids == [urgent.id, first.id, second.id]
    assert second.get_position() == 2 and queue.get_job_position(urgent) == 0
    assert queue.get_job_position("missing") is None


def test_explicit_args_and_kwargs(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.echo, args=(1,), kwargs={"ttl": 15, "description": "for the function"}, ttl=30)
    fetched = Job.fetch(job.id, connection)
    assert fetched.args == (1,) and fetched.kwargs == {"ttl": 15, "description": "for the function"}
    assert fetched.ttl == 30
    with pytest.raises(TypeError):
        queue.enqueue(jobs.echo, 1, args=(2,))


def test_enqueue_call_and_create_job(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection, default_timeout=60)
    job = queue.enqueue_call(jobs.add, args=(1, 2), timeout=30, job_id="call")
    assert Job.fetch("call", connection).timeout == 30
    created = Job.create("jobs.add", args=[4, 5], id="created", connection=connection, meta={"k": "v"})
    assert created.get_status(refresh=False) == JobStatus.CREATED
    queue.enqueue_job(created)
    assert Job.fetch("created", connection).meta == {"k": "v"}
    assert queue.job_ids == [job.id, "created"]
    assert Job.fetch("created", connection).timeout == 60  # the queue's default, as RQ fills it in


def test_methods_and_callable_instances(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    counter = jobs.Counter(10)
    bound = Job.fetch(queue.enqueue(counter.plus, 5).id, connection)
    assert bound.func_name == "plus" and bound.instance.start == 10 and bound.perform() == 15
    called = Job.fetch(queue.enqueue(counter, 3).id, connection)
    assert called.func_name == "__call__" and called.perform() == 30


def test_enqueue_many_is_one_pipeline(connection: redis.Redis) -> None:
    queue = Queue("bulk", connection=connection)
    datas = [Queue.prepare_data(jobs.add, (i, i), job_id=f"bulk-{i}") for i in range(200)]
    datas.append(Queue.prepare_data(jobs.add, (0, 0), job_id="front", at_front=True))
    connection.config_resetstat()
    created = queue.enqueue_many(datas)
    stats = connection.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 201
    assert queue.count == 201 and queue.job_ids[0] == "front"
    assert all(job.get_status(refresh=False) == JobStatus.QUEUED for job in created)
    with pytest.raises(ValueError):
        queue.enqueue_many([Queue.prepare_data(jobs.add, (1, 1), job_id="x")] * 2)


def test_enqueue_is_one_round_trip(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    queue.enqueue(jobs.add, 0, 0)  # loads the script
    connection.config_resetstat()
    queue.enqueue(jobs.add, 1, 2)
    stats = connection.info("commandstats")
    client_commands = {
        name: s["calls"]
        for name, s in stats.items()
        if name in ("cmdstat_evalsha", "cmdstat_multi", "cmdstat_exec", "cmdstat_script|load")
    }
    assert client_commands == {"cmdstat_evalsha": 1}


def test_unique_job(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    queue.enqueue(jobs.add, 1, 2, job_id="only", unique=True)
    with pytest.raises(DuplicateJobError):
        queue.enqueue(jobs.add, 3, 4, job_id="only", unique=True)
    assert queue.job_ids == ["only"] and Job.fetch("only", connection).args == (1, 2)


def test_enqueue_at_and_in_go_to_the_scheduled_registry(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    when = datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    at = queue.enqueue_at(when, jobs.add, 1, 2, job_id="at")
    later = queue.enqueue_in(timedelta(minutes=10), jobs.add, 3, 4)
    assert at.get_status() == JobStatus.SCHEDULED and later.is_scheduled
    assert queue.count == 0
    registry = queue.scheduled_job_registry
    assert registry.get_scheduled_time("at") == when
    assert connection.zscore("rq:scheduled:q", "at") == when.timestamp()
    assert set(registry.get_job_ids()) == {"at", later.id}
    assert registry.get_jobs_to_schedule(int(when.timestamp()) - 1) == [later.id]
    assert set(registry.get_jobs_to_schedule(int(when.timestamp()))) == {"at", later.id}


def test_job_decorator(connection: redis.Redis) -> None:
    queue = Queue("deco", connection=connection)
    decorated = job_decorator(queue, timeout=45, result_ttl=9)(jobs.add)
    delayed = decorated.delay(2, 3, job_id="delayed")  # type: ignore[attr-defined]
    fetched = Job.fetch("delayed", connection)
    assert delayed.id == "delayed" and fetched.args == (2, 3)
    assert fetched.timeout == 45 and fetched.result_ttl == 9 and fetched.origin == "deco"
    named = job_decorator("named", connection=connection)(jobs.add).delay(1, 1)  # type: ignore[attr-defined]
    assert named.origin == "named" and Queue("named", connection=connection).count == 1


def test_json_serializer(connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection, serializer=JSONSerializer)
    job = queue.enqueue(jobs.add, 1, 2, meta={"a": [1]})
    raw = cast(Fields, connection.hgetall(job.key))
    assert zlib.decompress(raw[b"data"]) == b'["jobs.add", null, [1, 2], {}]'
    fetched = Job.fetch(job.id, connection, serializer="json")
    assert list(fetched.args) == [1, 2] and fetched.meta == {"a": [1]}


def test_queue_listing_and_emptying(connection: redis.Redis) -> None:
    high, low = Queue("high", connection=connection), Queue("low", connection=connection)
    kept = low.enqueue(jobs.add, 0, 0)
    gone = [high.enqueue(jobs.add, i, i) for i in range(3)]
    assert [q.name for q in Queue.all(connection)] == ["high", "low"]
    assert len(high) == 3 and [j.id for j in high.jobs] == [j.id for j in gone]
    assert high.empty() == 3
    assert high.is_empty() and not any(Job.exists(j.id, connection) for j in gone)
    high.delete()
    assert [q.name for q in Queue.all(connection)] == ["low"] and Job.exists(kept.id, connection)


def test_push_job_id_pushes_as_rq_and_wakes_a_worker_within_the_wake_up_bound(
    connection: redis.Redis,
) -> None:
    """RQ's Queue.push_job_id, through the scripts' one push rule: the id at the tail (or the head),
    and a wake-up marker while the queue's wake-up list is short (it stays bounded)."""
    queue = Queue("q", connection=connection)
    for n in range(100):
        queue.push_job_id(f"tail-{n}")
    queue.push_job_id("head", at_front=True)
    with connection.pipeline() as pipe:
        queue.push_job_id("piped", pipeline=pipe)
        assert connection.llen(queue.key) == 101  # not before the pipeline runs
        pipe.execute()
    ids = [each.decode() for each in cast(Members, connection.lrange(queue.key, 0, -1))]
    assert ids[0] == "head" and ids[1:3] == ["tail-0", "tail-1"] and ids[-1] == "piped"
    assert connection.llen(keys.wakeup("q")) == 64
