"""More of the Job, Queue, Result and registry API users touch, side by side with RQ 3.0 on the
same Redis: what each call returns, raises and writes, through ``rq`` and through ``jobpool``."""

from __future__ import annotations

import importlib
from datetime import datetime, timezone
from typing import Any, cast

import pytest
import redis
import rq

import jobpool
import jobs
from support.redis_replies import Entries, Members, Scored

LIBRARIES: dict[str, Any] = {"rq": rq, "jobpool": jobpool}


def module(library: Any, name: str) -> Any:
    return importlib.import_module(f"{library.__name__}.{name}")


def side_by_side(connection: redis.Redis, scenario: Any) -> dict[str, Any]:
    """What ``scenario(connection, library)`` returns for each library, on an emptied Redis."""
    seen = {}
    for name, library in LIBRARIES.items():
        connection.flushdb()
        seen[name] = scenario(connection, library)
    return seen


def stored_keys(connection: redis.Redis) -> list[str]:
    """Every key, jobpool's own (wake-up lists) left out."""
    return sorted(key.decode() for key in cast(Members, connection.keys("*")) if b":jobpool:" not in key)


def raised(call: Any) -> tuple[type[BaseException], str] | None:
    try:
        call()
    except Exception as error:
        return type(error), str(error)
    return None


# ---- Job --------------------------------------------------------------------------------------------


def job_attributes(connection: redis.Redis, library: Any) -> dict[str, Any]:
    Job = module(library, "job").Job
    callback = library.Callback(jobs.on_success_hook, timeout=5)
    queue = library.Queue("q", connection=connection)
    job = queue.enqueue(jobs.add, 1, 2, on_success=callback, retry=library.Retry(max=3, interval=[1, 2, 7]))
    fetched = Job.fetch(job.id, connection=connection)
    intervals = []
    while fetched.should_retry:
        intervals.append(fetched.get_retry_interval())
        fetched.retries_left -= 1
    plain = queue.enqueue(jobs.add, 3, 4)
    return {
        "timeouts": (
            fetched.success_callback_timeout,
            fetched.failure_callback_timeout,
            fetched.stopped_callback_timeout,
        ),
        "registries": [
            (registry.key, registry.name, registry.job_class is Job)
            for registry in (fetched.failed_job_registry, fetched.finished_job_registry)
        ],
        "retry": (intervals, fetched.should_retry, plain.should_retry, plain.get_retry_interval()),
    }


def test_job_callback_timeouts_registries_and_retries_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, job_attributes)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["timeouts"] == (5, 60, 60)
    assert seen["jobpool"]["retry"] == ([1, 2, 7], False, False, 0)


def set_call_parts(connection: redis.Redis, library: Any) -> Any:
    """The call a fetched job holds after each of RQ's setters, as saved and fetched again."""
    Job = module(library, "job").Job
    job = library.Queue("q", connection=connection).enqueue(jobs.add, 1, 2, job_id="j")
    seen = []
    for name, value in (
        ("args", (5, 6)),
        ("kwargs", {"y": 1}),
        ("func_name", "jobs.echo"),
        ("instance", None),
    ):
        fetched = Job.fetch("j", connection=connection)
        assert fetched.args is not None  # read first: RQ's func_name setter drops unread arguments
        setattr(fetched, name, value)
        fetched.save()
        again = Job.fetch("j", connection=connection)
        seen.append((again.func_name, again.instance, again.args, again.kwargs))
    donor = Job.fetch(job.id, connection=connection)
    target = library.Queue("q", connection=connection).enqueue(jobs.add, 0, 0)
    target.data = donor.data
    return seen, (target.func_name, target.args, target.kwargs)


def test_job_setters_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, set_call_parts)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"][0][-1] == ("jobs.echo", None, (5, 6), {"y": 1})
    assert seen["jobpool"][1] == ("jobs.echo", (5, 6), {"y": 1})


def test_func_name_setter_keeps_unread_arguments(connection: redis.Redis) -> None:
    """A difference on purpose: RQ's ``func_name`` setter on a fetched job whose arguments were
    not read saves it with no arguments; jobpool's keeps them."""
    Job = jobpool.job.Job
    jobpool.Queue("q", connection=connection).enqueue(jobs.add, 1, 2, job_id="j")
    fetched = Job.fetch("j", connection=connection)
    fetched.func_name = "jobs.echo"
    fetched.save()
    assert Job.fetch("j", connection=connection).args == (1, 2)


def delete_dependents(connection: redis.Redis, library: Any) -> Any:
    queue = library.Queue("q", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2, job_id="parent")
    queue.enqueue(jobs.add, 1, 2, job_id="child1", depends_on=parent)
    queue.enqueue(jobs.add, 1, 2, job_id="child2", depends_on=parent)
    queue.enqueue(jobs.add, 1, 2, job_id="other")
    before = stored_keys(connection)
    parent.delete_dependents()
    return before, stored_keys(connection), queue.deferred_job_registry.get_job_ids(), queue.get_job_ids()


def test_delete_dependents_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, delete_dependents)
    assert seen["jobpool"] == seen["rq"]
    before, after, deferred, queued = seen["jobpool"]
    assert (
        "rq:job:child1" in before and "rq:job:child1" not in after and "rq:job:parent:dependents" not in after
    )
    assert deferred == [] and queued == ["parent", "other"]


def status_of_a_deleted_job(connection: redis.Redis, library: Any) -> Any:
    job = library.Queue("q", connection=connection).enqueue(jobs.add, 1, 2, job_id="gone")
    job.delete()
    return (
        raised(job.get_status),
        raised(lambda: job.is_finished),
        job.get_status(refresh=False),
    )


def test_get_status_of_a_deleted_job_raises_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, status_of_a_deleted_job)
    (rq_error, rq_message), _, rq_cached = seen["rq"]
    (error, message), (flag_error, _), cached = seen["jobpool"]
    assert rq_error is rq.exceptions.InvalidJobOperation
    assert error is jobpool.exceptions.InvalidJobOperation and flag_error is error
    assert message == rq_message == "Failed to retrieve status for job: gone"
    assert cached == rq_cached == "queued"


# ---- serializers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [object(), 42, b"x", int, "os.path", "nosuch.module.Thing", "json.nope", "notdotted"]
)
def test_resolve_serializer_refuses_what_rqs_refuses_with_its_error_types(bad: Any) -> None:
    rq_seen = raised(lambda: rq.serializers.resolve_serializer(bad))
    seen = raised(lambda: jobpool.serializers.resolve_serializer(bad))
    assert rq_seen is not None and seen is not None
    (rq_error, rq_message), (error, message) = rq_seen, seen
    assert issubclass(error, rq_error) and issubclass(error, jobpool.exceptions.JobpoolError)
    if rq_error is NotImplementedError:
        assert message.startswith(rq_message) and issubclass(error, TypeError)


# ---- Result -------------------------------------------------------------------------------------------


STARTED = datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=timezone.utc)
ENDED = datetime(2026, 1, 2, 3, 4, 9, 500000, tzinfo=timezone.utc)


def write_results(connection: redis.Redis, library: Any) -> Any:
    Result = module(library, "results").Result
    job = library.Queue("q", connection=connection).enqueue(jobs.add, 1, 2, job_id="j")
    made = [
        Result.create(
            job,
            Result.Type.SUCCESSFUL,
            100,
            return_value={"a": 1},
            worker_name="w",
            execution_id="e1",
            execution_started_at=STARTED,
            execution_ended_at=ENDED,
        ),
        Result.create_failure(job, 100, "Traceback: boom", worker_name="w"),
        Result.create_retried(job, -1, None, "w", "e2", STARTED, ENDED),
        Result.create_max_retries_exceeded(job, None, 7, "w", "e3", STARTED, ENDED),
    ]
    with connection.pipeline() as pipe:
        in_pipeline = Result(job.id, Result.Type.STOPPED, connection).save(ttl=50, pipeline=pipe)
        pipe.execute()
    entries = [fields for _, fields in cast(Entries, connection.xrange(Result.get_key(job.id)))]
    return {
        "serialized": [result.serialize() for result in made],
        "ids": [bool(result.id) for result in made] + [in_pipeline],
        "entries": entries,
        "ttl": connection.ttl(Result.get_key(job.id)),
        "read": [
            (r.type, r.return_value, r.exc_string, r.worker_name, r.execution_id, r.execution_started_at)
            for r in Result.all(job)
        ],
        "fetch": Result.fetch(job),
        "created_at": all(result.created_at is not None for result in made),
    }


def test_result_create_and_save_write_rqs_stream(connection: redis.Redis) -> None:
    seen = side_by_side(connection, write_results)
    rq_read = [(r[0].value, *r[1:]) for r in seen["rq"].pop("read")]
    read = [(r[0].value, *r[1:]) for r in seen["jobpool"].pop("read")]
    assert read == rq_read
    assert seen["jobpool"] == seen["rq"]
    assert [entry[b"type"] for entry in seen["jobpool"]["entries"]] == [b"1", b"2", b"4", b"5", b"3"]
    assert seen["jobpool"]["ttl"] == 50 and seen["jobpool"]["fetch"] is None
    assert seen["jobpool"]["ids"] == [True, True, True, True, None]


def results_trimmed(connection: redis.Redis, library: Any) -> Any:
    Result = module(library, "results").Result
    job = library.Queue("q", connection=connection).enqueue(jobs.add, 1, 2)
    for value in range(150):
        Result.create(job, Result.Type.SUCCESSFUL, None, return_value=value)
    return connection.xlen(Result.get_key(job.id)), Result.fetch_latest(job).return_value


def test_results_stream_is_trimmed_as_rqs(connection: redis.Redis) -> None:
    """RQ trims a job's results stream to about ten (MAXLEN ~ 10: Redis trims whole nodes)."""
    seen = side_by_side(connection, results_trimmed)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"][0] < 150 and seen["jobpool"][1] == 149


# ---- Queue ----------------------------------------------------------------------------------------------


def queue_upkeep(connection: redis.Redis, library: Any) -> Any:
    queue = library.Queue("q", connection=connection)
    for name in "abcd":
        queue.enqueue(jobs.add, 1, 2, job_id=name)
    connection.delete("rq:job:b", "rq:job:d")
    connection.rpush(queue.key, "a")  # a duplicate stays, as RQ keeps it
    queue.compact()
    locked = (queue.acquire_maintenance_lock(), queue.acquire_maintenance_lock())
    lock_ttl = connection.ttl(queue.registry_cleaning_key)
    queue.release_maintenance_lock()
    return {
        "ids": queue.get_job_ids(),
        "keys": (queue.key, queue.registry_cleaning_key, queue.intermediate_queue_key),
        "lock": (locked, 890 < lock_ttl <= 899, connection.exists(queue.registry_cleaning_key)),
        "version": queue.get_redis_server_version(),
        "classes": (
            type(queue).job_class.__name__,
            queue.job_class is module(library, "job").Job,
            queue.death_penalty_class.__name__,
        ),
        "ready": (queue.ready_job_registry.key, queue.ready_job_registry.count),
    }


def test_queue_upkeep_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, queue_upkeep)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["ids"] == ["a", "c", "a"]
    assert seen["jobpool"]["keys"] == ("rq:queue:q", "rq:clean_registries:q", "rq:queue:q:intermediate")
    assert seen["jobpool"]["lock"] == ((True, False), True, 0)
    assert len(seen["jobpool"]["version"]) == 3 and seen["jobpool"]["version"] >= (5, 0, 0)


def test_compact_keeps_a_job_saved_again_under_a_dead_id(connection: redis.Redis) -> None:
    queue = jobpool.Queue("q", connection=connection)
    for name in "abc":
        queue.enqueue(jobs.add, 1, 2, job_id=name)
    connection.delete("rq:job:b")
    queue.compact()
    queue.enqueue(jobs.add, 1, 2, job_id="b")
    queue.compact()
    assert queue.get_job_ids() == ["a", "c", "b"]


def run_now(connection: redis.Redis, library: Any) -> Any:
    queue = library.Queue("q", connection=connection)
    seen = {}
    for name, func, args in (("ok", jobs.add, (1, 2)), ("bad", jobs.fail, ("boom",))):
        job = queue.create_job(func, args=args, job_id=f"{name}-run")
        job.save()
        error = raised(lambda job=job: queue.run_job(job))
        synced = queue.create_job(func, args=args, job_id=f"{name}-sync")
        synced.save()
        returned = queue.run_sync(synced)
        seen[name] = [
            (
                error if each is job else returned is synced,
                each.get_status(),
                each.return_value(refresh=True),
                [r.type.value for r in each.results()],
                each.id in queue.finished_job_registry,
                each.id in queue.failed_job_registry,
                connection.hget(each.key, "worker_name"),
            )
            for each in (job, synced)
        ]
    return seen


def test_run_job_and_run_sync_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, run_now)
    rq_error, rq_message = seen["rq"]["bad"][0][0]
    error, message = seen["jobpool"]["bad"][0][0]
    assert error is rq_error is ValueError and message == rq_message == "boom"
    seen["rq"]["bad"][0] = seen["rq"]["bad"][0][1:]
    seen["jobpool"]["bad"][0] = seen["jobpool"]["bad"][0][1:]
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["ok"][0] == (None, "finished", 3, [1], True, False, b"")
    assert seen["jobpool"]["bad"][1] == (True, "failed", None, [2], False, True, b"sync")


def enqueue_dependents(connection: redis.Redis, library: Any) -> Any:
    Dependency = module(library, "job").Dependency
    queue = library.Queue("q", connection=connection)
    other_queue = library.Queue("other", connection=connection)
    parent = queue.enqueue(jobs.add, 1, 2, job_id="parent")
    blocker = queue.enqueue(jobs.add, 1, 2, job_id="blocker")
    failed = queue.enqueue(jobs.add, 1, 2, job_id="failed")
    queue.enqueue(jobs.add, 1, 2, job_id="only", depends_on=parent)
    other_queue.enqueue(jobs.add, 1, 2, job_id="elsewhere", depends_on=parent)
    queue.enqueue(jobs.add, 1, 2, job_id="both", depends_on=[parent, blocker])
    queue.enqueue(jobs.add, 1, 2, job_id="lenient", depends_on=Dependency(failed, allow_failure=True))
    queue.enqueue(jobs.add, 1, 2, job_id="strict", depends_on=failed)
    connection.hset(parent.key, "status", "canceled")
    steps = [queue.enqueue_dependents(parent)]  # a canceled parent releases none
    connection.hset(parent.key, "status", "queued")
    steps.append(queue.enqueue_dependents(parent))  # the parent itself counts as met
    connection.hset(parent.key, "status", "finished")
    steps.append(queue.enqueue_dependents(parent, exclude_job_id="blocker"))
    connection.hset(failed.key, "status", "failed")
    steps.append(queue.enqueue_dependents(failed))
    return {
        "steps": [{name: sorted(ids) for name, ids in step.items()} for step in steps],
        "queues": (queue.get_job_ids(), other_queue.get_job_ids()),
        "deferred": queue.deferred_job_registry.get_job_ids(),
        "ready": queue.ready_job_registry.get_job_ids(),
        "dependents": sorted(connection.smembers(parent.dependents_key)),
        "statuses": [library.job.Job.fetch(name, connection).get_status() for name in ("both", "strict")],
    }


def test_enqueue_dependents_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, enqueue_dependents)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["steps"] == [
        {},
        {"q": ["only"], "other": ["elsewhere"]},
        {"q": ["both"]},
        {"q": ["lenient"]},
    ]
    assert seen["jobpool"]["queues"] == (
        ["parent", "blocker", "failed", "only", "both", "lenient"],
        ["elsewhere"],
    )
    assert seen["jobpool"]["statuses"] == ["queued", "deferred"]


def test_enqueue_dependents_counts_one_parent_met_not_two(connection: redis.Redis) -> None:
    """jobpool's difference: excluding another parent while ``job`` is unfinished in Redis."""
    queue = jobpool.Queue("q", connection=connection)
    parent, blocker = queue.enqueue(jobs.add, 1, 2), queue.enqueue(jobs.add, 1, 2)
    child = queue.enqueue(jobs.add, 1, 2, depends_on=[parent, blocker])
    with pytest.raises(NotImplementedError, match=r"needs job .* finished first"):
        queue.enqueue_dependents(parent, exclude_job_id=blocker.id)
    assert child.get_status() == "deferred"


def enqueue_many(connection: redis.Redis, library: Any, use_pipeline: bool) -> Any:
    queue = library.Queue("q", connection=connection)
    done = queue.enqueue(jobs.add, 1, 2, job_id="done")
    connection.hset(done.key, "status", "finished")
    waiting = queue.enqueue(jobs.add, 1, 2, job_id="waiting")
    datas = [
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="after-done", depends_on=done),
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="on-batch", depends_on="plain"),
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="plain"),
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="after-waiting", depends_on=waiting),
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="front", at_front=True),
        library.Queue.prepare_data(
            jobs.add, (1, 2), job_id="front-after-done", depends_on=done, at_front=True
        ),
    ]
    if use_pipeline:
        with connection.pipeline() as pipe:
            enqueued = queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    else:
        enqueued = queue.enqueue_many(datas)
    return (
        [(job.id, job.get_status(refresh=False)) for job in enqueued],
        [(job.id, job.get_status()) for job in enqueued],
        queue.get_job_ids(),
        sorted(queue.deferred_job_registry.get_job_ids()),
    )


@pytest.mark.parametrize("use_pipeline", [False, True], ids=["own pipeline", "caller's pipeline"])
def test_enqueue_many_returns_jobs_in_rqs_order(connection: redis.Redis, use_pipeline: bool) -> None:
    seen = side_by_side(connection, lambda c, library: enqueue_many(c, library, use_pipeline))
    rq_told, rq_stored, *rq_rest = seen["rq"]
    told, stored, *rest = seen["jobpool"]
    assert [job_id for job_id, _ in told] == [job_id for job_id, _ in rq_told]
    assert stored == rq_stored and rest == rq_rest
    if not use_pipeline:
        assert told == rq_told == stored
    assert [job_id for job_id, _ in stored] == [
        "plain",
        "front",
        "on-batch",
        "after-waiting",
        "after-done",
        "front-after-done",
    ]


# ---- registries -----------------------------------------------------------------------------------------

REGISTRIES = [
    "BaseRegistry",
    "StartedJobRegistry",
    "FinishedJobRegistry",
    "FailedJobRegistry",
    "DeferredJobRegistry",
    "ScheduledJobRegistry",
    "CanceledJobRegistry",
    "ReadyJobRegistry",
]


def registry_class_attributes(connection: redis.Redis, library: Any) -> Any:
    registries = module(library, "registry")
    Job = module(library, "job").Job
    seen = {}
    for name in REGISTRIES:
        cls = getattr(registries, name)
        made = cls("q", connection=connection)
        seen[name] = (
            cls.key_template,
            cls.key_template.format("q") == made.key,
            cls.job_class is Job,
            cls.death_penalty_class.__name__,
            made.death_penalty_class.__name__,
        )
    return seen


def test_registry_class_attributes_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, registry_class_attributes)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["FailedJobRegistry"][:2] == ("rq:failed:{0}", True)


def started_executions(connection: redis.Redis, library: Any) -> Any:
    Execution = module(library, "executions").Execution
    queue = library.Queue("q", connection=connection)
    job = queue.enqueue(jobs.add, 1, 2, job_id="j")
    registry = queue.started_job_registry
    executions = [Execution(name, job.id, connection, worker_name="w") for name in ("e1", "e2", "e3")]
    with connection.pipeline() as pipe:
        for ttl, execution in zip((100, -1, 50), executions, strict=True):
            registry.add_execution(execution, pipe, ttl=ttl)
        pipe.execute()
    scores = [
        round(score - connection.time()[0])
        for _, score in cast(Scored, connection.zrange(registry.key, 0, 0, withscores=True))
    ]
    added = [member.decode() for member in cast(Members, connection.zrange(registry.key, 0, -1))]
    registry.remove_execution(executions[0])
    for execution in executions[1:]:  # the records remove_executions reads
        connection.hset(
            execution.key,
            mapping={
                "id": execution.id,
                "job_id": job.id,
                "created_at": 1.0,
                "last_heartbeat": 1.0,
                "worker_name": "w",
            },
        )
        connection.zadd(f"rq:executions:{job.id}", {execution.id: 2e9})
    connection.zadd(registry.key, {"other:e9": 1e9})
    registry.remove_executions(job)
    return (
        added,
        scores,
        [member.decode() for member in cast(Members, connection.zrange(registry.key, 0, -1))],
    )


def test_started_registry_executions_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, started_executions)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"] == (["j:e3", "j:e1", "j:e2"], [50], ["other:e9"])


def enqueue_many_inline(connection: redis.Redis, library: Any) -> Any:
    queue = library.Queue("q", connection=connection, is_async=False)
    waiting = library.Queue("q", connection=connection).enqueue(jobs.add, 1, 2, job_id="waiting")
    datas = [
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="after-waiting", depends_on=waiting),
        library.Queue.prepare_data(jobs.add, (1, 2), job_id="on-batch", depends_on="plain"),
        library.Queue.prepare_data(jobs.add, (2, 3), job_id="plain"),
    ]
    return [(job.id, job.get_status(), job.return_value()) for job in queue.enqueue_many(datas)]


def test_enqueue_many_on_a_synchronous_queue_returns_rqs_order(connection: redis.Redis) -> None:
    """The same order as RQ's; unlike RQ's (which writes ``queued`` back over a job it ran, so
    that a job depending on it in the batch stays deferred), each job keeps what it did."""
    seen = side_by_side(connection, enqueue_many_inline)
    assert [job_id for job_id, _, _ in seen["jobpool"]] == [job_id for job_id, _, _ in seen["rq"]]
    assert seen["rq"][0] == ("plain", "queued", 5)
    assert seen["jobpool"] == [
        ("plain", "finished", 5),
        ("after-waiting", "deferred", None),
        ("on-batch", "finished", 3),
    ]


def execution_registry(connection: redis.Redis, library: Any) -> Any:
    Execution = module(library, "executions").Execution
    job = library.Queue("q", connection=connection).enqueue(jobs.add, 1, 2, job_id="j")
    rq_job = rq.job.Job.fetch("j", connection=connection)
    with connection.pipeline() as pipe:  # the records a worker writes as it starts two runs
        made = [rq.executions.Execution.create(rq_job, 100, pipe, worker_name="w") for _ in range(2)]
        pipe.execute()
    registry = job.execution_registry
    ids = sorted(registry.get_execution_ids())
    read = sorted((e.id, e.job_id, e.worker_name) for e in registry.get_executions())
    lapsing = round(cast(float, connection.zscore(registry.key, made[0].id)) - connection.time()[0])
    with connection.pipeline() as pipe:
        registry.add(Execution("extra", "j", connection), 10, pipe)
        registry.remove(Execution(made[1].id, "j", connection), pipe)
        pipe.execute()
    after = sorted(registry.get_execution_ids())

    def named(text: str) -> str:
        return text.replace(made[0].id, "e0").replace(made[1].id, "e1")

    with connection.pipeline() as pipe:
        registry.remove(Execution("extra", "j", connection), pipe)  # RQ's delete fetches each: it has no hash
        pipe.execute()
    with connection.pipeline() as pipe:
        registry.delete(job, pipe)
        pipe.execute()
    return {
        "template": type(registry).key_template,
        "key": registry.key,
        "ids": ids == sorted(e.id for e in made),
        "read": read == sorted((e.id, "j", "w") for e in made),
        "lapsing": lapsing,
        "after": after == sorted([made[0].id, "extra"]),
        "left": [named(key) for key in stored_keys(connection)],
        "started": [named(member.decode()) for member in cast(Members, connection.zrange("rq:wip:q", 0, -1))],
    }


def test_execution_registry_as_rqs(connection: redis.Redis) -> None:
    seen = side_by_side(connection, execution_registry)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["key"] == "rq:executions:j" and seen["jobpool"]["lapsing"] == 160
    assert all(seen["jobpool"][name] for name in ("ids", "read", "after"))
    # the one taken out of the index first is left: RQ's delete goes by the index
    assert seen["jobpool"]["started"] == ["j:e1"] and "rq:executions:j" not in seen["jobpool"]["left"]
    assert "rq:execution:j:e0" not in seen["jobpool"]["left"]
