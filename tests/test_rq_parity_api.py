"""Job and Queue API users touch, side by side with RQ 3.0 on the same Redis: TTL getters, the
namespace prefixes, how queues and jobs print and sort, get_job_ids(length=0), Queue.all's
job_class, and dependencies_are_met."""

from __future__ import annotations

import importlib
import time
from typing import Any, cast

import pytest
import redis
import rq

import jobpool
from jobpool.results import Result

LIBRARIES: dict[str, Any] = {"rq": rq, "jobpool": jobpool}


def add(a: int, b: int) -> int:
    return a + b


def job_class(library: Any) -> Any:
    return importlib.import_module(f"{library.__name__}.job").Job


def observed(connection: redis.Redis, library: Any) -> dict[str, Any]:
    Job = job_class(library)
    queue = library.Queue("q", connection=connection)
    kept = queue.enqueue(add, 1, 2, ttl=100, result_ttl=200, job_id="kept")
    plain = queue.enqueue(add, 3, 4, job_id="plain")
    queues = library.Queue.all(connection=connection, job_class=Job)
    return {
        "ttls": (kept.get_ttl(), plain.get_ttl(5), kept.get_result_ttl(7), plain.get_result_ttl(7)),
        "prefixes": (
            Job.redis_job_namespace_prefix,
            library.Queue.redis_queue_namespace_prefix,
            library.Queue.redis_queues_keys,
        ),
        "printed": (str(queue), repr(queue), str(kept)),
        "ids": (queue.get_job_ids(length=0), queue.get_job_ids(0, 1), queue.get_job_ids(1)),
        "sorted": [q.name for q in sorted([library.Queue(n, connection=connection) for n in "cab"])],
        "all": [(q.name, q.job_class is Job) for q in queues],
    }


def test_the_api_reads_as_rqs(connection: redis.Redis) -> None:
    seen = {}
    for name, library in LIBRARIES.items():
        connection.flushdb()
        seen[name] = observed(connection, library)
    assert seen["jobpool"] == seen["rq"]
    assert seen["jobpool"]["ids"] == ([], ["kept"], ["plain"])
    queue_str, queue_repr, job_str = seen["jobpool"]["printed"]
    assert (queue_str, queue_repr) == ("<Queue q>", "Queue('q')") and job_str.startswith("<Job kept: ")


@pytest.mark.parametrize("name", LIBRARIES)
def test_dependencies_are_met_as_rq_judges_them(connection: redis.Redis, name: str) -> None:
    library = LIBRARIES[name]
    dependency = importlib.import_module(f"{library.__name__}.job").Dependency
    queue = library.Queue("q", connection=connection)
    finished, failed, waiting = (queue.enqueue(add, n, n) for n in range(3))
    connection.hset(finished.key, "status", "finished")
    connection.hset(failed.key, "status", "failed")
    strict = queue.enqueue(add, 9, 9, depends_on=[finished, failed])
    lenient = queue.enqueue(add, 9, 9, depends_on=dependency(jobs=[finished, failed], allow_failure=True))
    blocked = queue.enqueue(add, 9, 9, depends_on=[finished, waiting])
    assert [job.dependencies_are_met() for job in (strict, lenient, blocked)] == [False, True, False]
    assert blocked.dependencies_are_met(exclude_job_id=waiting.id) is True
    connection.hset(waiting.key, "status", "canceled")
    assert blocked.dependencies_are_met(parent_job=waiting) is False


@pytest.mark.parametrize("name", LIBRARIES)
def test_registry_add_and_clean_registries_as_rq(connection: redis.Redis, name: str) -> None:
    library = LIBRARIES[name]
    registries = importlib.import_module(f"{library.__name__}.registry")
    queue = library.Queue("q", connection=connection)
    job = queue.enqueue(add, 1, 2)
    finished = registries.FinishedJobRegistry(queue=queue)
    assert finished.add(job, 100) == 1
    assert abs(cast(float, connection.zscore(finished.key, job.id)) - (time.time() + 100)) < 5
    assert finished.add(job, -1) == 0 and connection.zscore(finished.key, job.id) == float("inf")
    other = queue.enqueue(add, 3, 4)
    assert finished.add(other, 5, xx=True) == 0 and other.id not in finished
    failed = registries.FailedJobRegistry(queue=queue)
    connection.zadd(failed.key, {"old": time.time() - 10, "new": time.time() + 100})
    connection.zadd(finished.key, {"gone": time.time() - 10})
    registries.clean_registries(queue)
    assert connection.zrange(failed.key, 0, -1) == [b"new"]
    assert connection.zrange(finished.key, 0, -1) == [job.id.encode()]


def test_started_registry_cleanup_honours_its_timestamp(redis_url: str, connection: redis.Redis) -> None:
    """A running job whose heartbeat lapses before ``timestamp`` is failed by RQ's cleanup (and
    one that lapses after it is not): each library's cleanup on a job a lone worker runs."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import jobs
    from conftest import wait_for

    seen = {}
    for name, library in LIBRARIES.items():
        connection.flushdb()
        worker = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "support" / "worker_process.py"), redis_url, "q"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            job = jobpool.Queue("q", connection=connection).enqueue(jobs.sleep_for, 30, job_timeout=100)
            wait_for(lambda job=job: job.get_status() == "started")  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
            registry = library.registry.StartedJobRegistry("q", connection=connection)
            registry.cleanup(time.time() + 60)  # its heartbeat runs to the timeout plus 60 s
            kept = job.get_status()
            registry.cleanup(time.time() + 1000)
            seen[name] = (
                kept,
                job.get_status(),
                job.id in library.registry.FailedJobRegistry("q", connection=connection),
                "AbandonedJobError" in (cast(Result, job.latest_result()).exc_string or ""),
            )
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
    assert seen["jobpool"] == seen["rq"] == ("started", "failed", True, True)
