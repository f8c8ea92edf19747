"""RQ 3.0 parity of workers: what monitoring reads of them (``Worker.all()`` and friends) and
the worker commands a standalone worker obeys. Each scenario runs through RQ's worker and
through jobpool's, and the test compares what users see: attributes, statuses, registries,
what ``work()`` returns, the Redis data."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import psutil
import pytest
import redis
import rq
import rq.command
import rq.worker

import jobpool.command
import jobs
from conftest import wait_for
from jobpool import Queue, Worker
from jobpool.worker import WorkerStatus
from support.pool_process import PYTHONPATH, Pool

TESTS = Path(__file__).parent
WORKER_READERS = {"rq": rq.Worker, "jobpool": Worker}


class WorkerProcess:
    """``support/parity_worker.py`` in a subprocess: RQ's worker or jobpool's, on the test's Redis."""

    def __init__(self, kind: str, url: str, connection: redis.Redis, name: str, *args: str) -> None:
        self.kind, self.name = kind, name
        self.process = subprocess.Popen(
            [sys.executable, str(TESTS / "support" / "parity_worker.py"), kind, url, "q", name, *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": PYTHONPATH},
        )
        channel = f"rq:pubsub:{name}"
        # Listening for commands, and idle (waiting for jobs): what a test may rely on from here.
        wait_for(lambda: dict(connection.pubsub_numsub(channel))[channel.encode()] == 1)
        wait_for(lambda: connection.hget(f"rq:worker:{name}", "state") == b"idle")

    def returned(self, timeout: float = 30) -> str:
        """What ``work()`` returned (the process has ended)."""
        out, _ = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, out
        return out.strip().splitlines()[-1]

    def kill(self) -> None:
        """Kills the worker and what it forked (RQ's work horse and scheduler, which hold its
        output and its subscription open)."""
        if self.process.poll() is None:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            self.process.kill()
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def worker_process(redis_url: str, connection: redis.Redis) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(kind: str, name: str, *args: str) -> WorkerProcess:
        started.append(WorkerProcess(kind, redis_url, connection, name, *args))
        return started[-1]

    yield start
    for each in started:
        each.kill()


def _rq_job(connection: redis.Redis, job_id: str) -> rq.job.Job:
    return rq.job.Job.fetch(job_id, connection=connection)


def _running(connection: redis.Redis, job_id: str) -> Callable[[], bool]:
    return lambda: _rq_job(connection, job_id).get_status() == "started"


# ---- monitoring: Worker.all() and what a worker object says -------------------------------------

SEEN = (
    "name",
    "hostname",
    "pid",
    "ip_address",
    "birth_date",
    "successful_job_count",
    "failed_job_count",
    "total_working_time",
)


def _seen(worker: Any) -> dict[str, Any]:
    """What a monitoring page shows of a worker, with each value's type."""
    shown = {name: getattr(worker, name) for name in SEEN}
    shown["state"] = worker.get_state()
    shown["queue_names"] = worker.queue_names()
    shown["queues"] = [queue.name for queue in worker.queues]
    shown["current_job_id"] = worker.get_current_job_id()
    seen = {name: (value, type(value)) for name, value in shown.items()}
    seen["last_heartbeat"] = type(worker.last_heartbeat)  # type: ignore[assignment]  # a live worker's moves on between reads: its type only
    return seen


def test_rq_and_jobpool_read_every_kind_of_worker_alike(
    connection: redis.Redis, worker_process: Callable[..., WorkerProcess], pool: Callable[..., Pool]
) -> None:
    """An RQ worker, a standalone jobpool worker and a pool's two workers, each after a job that
    succeeded and one that failed: RQ's ``Worker.all()`` and jobpool's list the same workers and
    see the same of each, with the same types."""
    worker_process("rq", "rq-worker")
    worker_process("jobpool", "standalone")
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: Worker.count(connection) == 4)

    queue = Queue("q", connection=connection)
    for _ in range(12):  # every worker gets some
        queue.enqueue(jobs.add, 1, 2)
        queue.enqueue(jobs.fail)
    wait_for(lambda: queue.finished_job_registry.count == 12 and queue.failed_job_registry.count == 12)
    wait_for(lambda: sum(w.successful_job_count + w.failed_job_count for w in Worker.all(connection)) == 24)
    # A worker's counters are written before it says idle again (RQ's worker moves on to its next
    # wait after its record): read them all once every one is idle.
    wait_for(lambda: all(w.get_state() == WorkerStatus.IDLE for w in Worker.all(connection)))

    ours = {w.name: w for w in Worker.all(connection)}
    theirs = {w.name: w for w in rq.Worker.all(connection)}
    assert set(ours) == set(theirs) and len(ours) == 4
    assert {"rq-worker", "standalone"} <= set(ours)
    assert sorted(Worker.all_keys(connection)) == sorted(rq.Worker.all_keys(connection))
    assert Worker.count(connection) == rq.Worker.count(connection) == 4
    assert Worker.count(queue=queue) == rq.Worker.count(queue=rq.Queue("q", connection=connection)) == 4
    assert Worker.count(queue=Queue("other", connection=connection)) == 0
    for name, worker in ours.items():
        seen = _seen(worker)
        assert seen == _seen(theirs[name]), name
        assert seen["state"][0] == WorkerStatus.IDLE == "idle"
        assert isinstance(worker.birth_date, datetime) and worker.birth_date.tzinfo is not None
        assert worker.last_heartbeat is not None and worker.last_heartbeat >= worker.birth_date
        host, _, port = (worker.ip_address or "").rpartition(":")
        assert host == "127.0.0.1" and port.isdigit(), (name, worker.ip_address)  # as RQ writes it
        assert isinstance(worker.total_working_time, float) and worker.total_working_time > 0
    assert ours["rq-worker"].version == rq.VERSION
    assert ours["standalone"].version.startswith("jobpool ")


def test_a_worker_running_a_job_shows_it(
    connection: redis.Redis, worker_process: Callable[..., WorkerProcess], pool: Callable[..., Pool]
) -> None:
    """Busy, with its current job: for RQ's worker, a standalone jobpool worker and a pool's
    worker (whose records its supervisor writes within half a second of the start)."""
    for kind, name in (("rq", "rq-worker"), ("jobpool", "standalone")):
        worker_process(kind, name)
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: Worker.count(connection) == 3)
    queue = Queue("q", connection=connection)
    sleepers = [queue.enqueue(jobs.sleep_for, 60) for _ in range(3)]
    for job in sleepers:
        wait_for(_running(connection, job.id))
    by_job = {job.id: job for job in sleepers}
    for reader in WORKER_READERS.values():
        wait_for(lambda reader=reader: all(w.get_current_job_id() for w in reader.all(connection)))  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
        workers = reader.all(connection)  # type: ignore[attr-defined]
        assert sorted(w.get_current_job_id() for w in workers) == sorted(by_job)
        for worker in workers:
            assert worker.get_state() == "busy"
            current = worker.get_current_job()
            assert current.id == worker.get_current_job_id() and current.func_name == "jobs.sleep_for"
            (execution,) = worker.get_current_executions()
            assert execution.worker_name == worker.name and execution.job_id == current.id


def test_find_by_key_as_rq(connection: redis.Redis) -> None:
    """A key that is not a worker key: ValueError from both. A worker key whose hash is gone:
    None, and it leaves the set of workers, in both."""
    for reader in WORKER_READERS.values():
        with pytest.raises(ValueError, match="Not a valid RQ worker key"):
            reader.find_by_key("rq:job:abc", connection)  # type: ignore[attr-defined]
        connection.sadd("rq:workers", "rq:worker:gone")
        assert reader.find_by_key("rq:worker:gone", connection) is None  # type: ignore[attr-defined]
        assert connection.smembers("rq:workers") == set()
    assert Worker.all(connection) == [] and rq.Worker.all(connection) == []
    with pytest.raises(TypeError, match="connection"):
        Worker.all()


def test_state_is_deprecated_as_in_rq(
    connection: redis.Redis, worker_process: Callable[..., WorkerProcess]
) -> None:
    worker_process("jobpool", "standalone")
    for reader in WORKER_READERS.values():
        worker = reader.find_by_key("rq:worker:standalone", connection)  # type: ignore[attr-defined]
        with pytest.warns(DeprecationWarning):
            assert worker.state == "idle"


def test_scheduler_pid_reads_rq_and_pool_schedulers(
    connection: redis.Redis, worker_process: Callable[..., WorkerProcess], pool: Callable[..., Pool]
) -> None:
    ours, theirs = Queue("q", connection=connection), rq.Queue("q", connection=connection)
    assert ours.scheduler_pid is None and theirs.scheduler_pid is None
    worker = worker_process("rq", "rq-worker", "--with-scheduler")
    wait_for(lambda: theirs.scheduler_pid is not None)
    scheduler_pid = theirs.scheduler_pid
    assert scheduler_pid is not None and ours.scheduler_pid == scheduler_pid != worker.process.pid
    worker.kill()  # and its scheduler process
    connection.delete("rq:scheduler-lock:q")  # the dead scheduler's lock, rather than wait 61 s
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: ours.scheduler_pid is not None)
    assert ours.scheduler_pid == theirs.scheduler_pid == running.process.pid
    running.process.terminate()
    running.wait()
    assert ours.scheduler_pid is None and theirs.scheduler_pid is None  # it lets go as it stops


def test_rq_worker_objects_of_jobpool_workers_in_django_rq_s_way(
    connection: redis.Redis, worker_process: Callable[..., WorkerProcess]
) -> None:
    """What django-rq's ``/metrics`` reads, by RQ's Worker class and by jobpool's."""
    worker_process("jobpool", "standalone")
    worker_process("rq", "rq-worker")
    metrics = {
        reader_name: sorted(
            (w.name, w.get_state(), ",".join(w.queue_names()), w.successful_job_count, w.failed_job_count)
            for w in reader.all(connection)  # type: ignore[attr-defined]
        )
        for reader_name, reader in WORKER_READERS.items()
    }
    assert (
        metrics["rq"]
        == metrics["jobpool"]
        == [
            ("rq-worker", "idle", "q", 0, 0),
            ("standalone", "idle", "q", 0, 0),
        ]
    )


# ---- commands to a standalone worker ---------------------------------------------------------------

KINDS = ["rq", "jobpool"]
# Whose running job a command stops: RQ's forking worker (its SimpleWorker cannot stop a job),
# jobpool's forking Worker and its SimpleWorker.
STOPPING_KINDS = ["rq", "jobpool", "jobpool-simple"]


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_of_an_idle_worker(
    kind: str, connection: redis.Redis, worker_process: Callable[..., WorkerProcess]
) -> None:
    worker = worker_process(kind, "w")
    rq.command.send_shutdown_command(connection, "w")
    assert worker.returned() == "returned False"
    assert Worker.count(connection) == 0 and connection.hexists("rq:worker:w", "death")


@pytest.mark.parametrize("sender", [rq.command.send_shutdown_command, jobpool.command.send_shutdown_command])
@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_lets_the_running_job_finish(
    kind: str,
    sender: Callable[..., None],
    connection: redis.Redis,
    worker_process: Callable[..., WorkerProcess],
) -> None:
    worker = worker_process(kind, "w")
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.sleep_for, 1)
    later = queue.enqueue(jobs.add, 1, 2)
    wait_for(_running(connection, job.id))
    sender(connection, "w")
    assert worker.returned() == "returned True"
    assert _rq_job(connection, job.id).get_status() == "finished"
    assert _rq_job(connection, later.id).get_status() == "queued"  # it took no other job


def _stopped_then_carries_on(
    connection: redis.Redis, worker: WorkerProcess, stop: Callable[[rq.job.Job], None]
) -> dict[str, Any]:
    """Runs a long job on ``worker``, ``stop``s it, then a quick job; returns what users see."""
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.sleep_for, 60)
    wait_for(_running(connection, job.id))
    stop(_rq_job(connection, job.id))
    wait_for(lambda: _rq_job(connection, job.id).get_status() not in ("started", "queued"))
    after = queue.enqueue(jobs.add, 1, 2)
    wait_for(lambda: _rq_job(connection, after.id).get_status() == "finished")
    # RQ's worker marks itself idle once its work horse has ended, just after the job's record.
    wait_for(lambda: connection.hget(f"rq:worker:{worker.name}", "state") == b"idle")
    seen_job = _rq_job(connection, job.id)
    worker_entry = rq.Worker.find_by_key(f"rq:worker:{worker.name}", connection)
    assert worker_entry is not None
    seen = {
        "status": seen_job.get_status(),
        "in_failed_registry": job.id in rq.Queue("q", connection=connection).failed_job_registry,
        "in_started_registry": job.id in rq.Queue("q", connection=connection).started_job_registry,
        "has_exc_info": bool(seen_job.exc_info),
        "result_type": seen_job.latest_result().type,  # type: ignore[union-attr]
        "worker_counts": (worker_entry.successful_job_count, worker_entry.failed_job_count),
        "worker_state": worker_entry.get_state(),
        "worker_executions": connection.smembers(f"rq:worker:{worker.name}:executions"),
    }
    rq.command.send_shutdown_command(connection, worker.name)
    seen["returned"] = worker.returned()
    return seen


def _stop_job_with_rq(job: rq.job.Job) -> None:
    rq.command.send_stop_job_command(job.connection, job.id)


def _stop_job_with_jobpool(job: rq.job.Job) -> None:
    jobpool.command.send_stop_job_command(job.connection, job.id)


def _stop_execution(job: rq.job.Job) -> None:
    (execution,) = job.get_executions()
    rq.command.send_stop_execution_command(job.connection, job.id, execution.id)


def _stop_execution_with_jobpool(job: rq.job.Job) -> None:
    (execution,) = job.get_executions()
    jobpool.command.send_stop_execution_command(job.connection, job.id, execution.id)


@pytest.mark.parametrize(
    "stop", [_stop_job_with_rq, _stop_job_with_jobpool, _stop_execution, _stop_execution_with_jobpool]
)
def test_a_stopped_job_ends_as_rq_ends_it_and_the_worker_carries_on(
    stop: Callable[[rq.job.Job], None], connection: redis.Redis, worker_process: Callable[..., WorkerProcess]
) -> None:
    seen = {
        kind: _stopped_then_carries_on(connection, worker_process(kind, f"w-{kind}"), stop)
        for kind in STOPPING_KINDS
    }
    assert seen["jobpool"] == seen["rq"] and seen["jobpool-simple"] == seen["rq"]
    assert seen["rq"]["status"] == "stopped" and seen["rq"]["in_failed_registry"]
    assert seen["rq"]["worker_counts"] == (1, 1) and seen["rq"]["returned"] == "returned True"


def test_kill_horse_fails_the_job_as_rq_does_and_the_worker_carries_on(
    connection: redis.Redis, worker_process: Callable[..., WorkerProcess]
) -> None:
    def kill(job: rq.job.Job) -> None:
        rq.command.send_kill_horse_command(job.connection, cast(str, job.worker_name))

    seen = {
        kind: _stopped_then_carries_on(connection, worker_process(kind, f"w-{kind}"), kill)
        for kind in STOPPING_KINDS
    }
    assert seen["jobpool"] == seen["rq"] and seen["jobpool-simple"] == seen["rq"]
    assert seen["rq"]["status"] == "failed" and seen["rq"]["in_failed_registry"]
    for kind in ("jobpool", "jobpool-simple"):
        assert "Work-horse terminated unexpectedly" in (_rq_job_exc(connection, f"w-{kind}") or "")


def _rq_job_exc(connection: redis.Redis, worker_name: str) -> str | None:
    """The failure text of the failed job that ``worker_name`` ran."""
    for job_id in rq.Queue("q", connection=connection).failed_job_registry.get_job_ids():
        job = _rq_job(connection, job_id)
        if job.worker_name == worker_name:
            return job.exc_info
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_a_stop_for_another_job_is_ignored(
    kind: str, connection: redis.Redis, worker_process: Callable[..., WorkerProcess]
) -> None:
    worker = worker_process(kind, "w")
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.sleep_for, 1)
    wait_for(_running(connection, job.id))
    rq.command.send_command(connection, "w", "stop-job", job_id="another")
    rq.command.send_command(connection, "w", "stop-execution", job_id=job.id, execution_id="another")
    wait_for(lambda: _rq_job(connection, job.id).get_status() == "finished")
    # RQ's worker counts the job once its work horse has exited, after the horse wrote `finished`;
    # it says idle again after that: a shutdown sent before would race its count.
    wait_for(lambda: connection.hget("rq:worker:w", "state") == b"idle")
    rq.command.send_shutdown_command(connection, "w")
    assert worker.returned() == "returned True"
