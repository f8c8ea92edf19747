"""Prometheus metrics: ``jobpool start --metrics-port`` (what the pool does) and ``jobpool
exporter`` (what Redis holds), scraped over HTTP from real subprocesses against a private
redis-server and read with prometheus-client's own parser."""

from __future__ import annotations

import faulthandler
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import psutil
import pytest
import redis
import rq
from prometheus_client.parser import text_string_to_metric_families

import jobs
from conftest import wait_for
from jobpool import Queue, Retry
from jobpool.command import send_stop_job_command
from jobpool.embedded_redis import EmbeddedRedis
from jobpool.exporter import DeploymentCollector
from jobpool.job import JobStatus
from jobpool.pool.pool_metrics import restart_reason
from jobpool.pool.pool_worker import RECYCLE_EXIT
from support.pool_process import PYTHONPATH, Pool

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Samples:
    """Every sample served at the port, by name and labels (empty when nothing answers yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scraped_until(port: int, condition: Callable[[Samples], bool]) -> Samples:
    """Scrapes until ``condition`` holds of what is served (within the deadline); returns that."""
    seen: list[Samples] = [{}]

    def look() -> bool:
        seen[0] = scrape(port)
        return bool(seen[0]) and condition(seen[0])

    try:
        wait_for(look, deadline_seconds=30)
    except AssertionError:
        raise AssertionError(f"the metrics never matched; last scrape: {seen[0]}") from None
    return seen[0]


# ---- jobpool start --metrics-port ------------------------------------------------------------------


def test_the_pool_counts_jobs_by_queue_and_outcome_with_their_durations(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    port = free_port()
    running = pool("-n", "2", "--metrics-port", str(port), "a", "b")
    running.wait_for_message("READY=1")
    samples = scraped_until(port, lambda s: value(s, "jobpool_workers", state="idle") == 2)
    assert value(samples, "jobpool_jobs_started_total", queue="a") == 0  # shown before any job
    assert value(samples, "jobpool_workers", state="busy") == 0
    # The supervisor serves; its workers closed their copies of the socket as they were forked.
    supervisor = psutil.Process(running.process.pid)
    assert [c.laddr.port for c in supervisor.net_connections() if c.status == psutil.CONN_LISTEN] == [port]
    assert not [c for w in running.workers() for c in w.net_connections() if c.status == psutil.CONN_LISTEN]

    a, b = Queue("a", connection=connection), Queue("b", connection=connection)
    for n in range(5):
        a.enqueue(jobs.add, n, 1)
    for _ in range(2):
        a.enqueue(jobs.fail)
    a.enqueue(jobs.fail, retry=Retry(max=1))  # fails, is retried, fails again
    slow = b.enqueue(jobs.sleep_for, 0.3)
    for n in range(3):
        b.enqueue(jobs.add, n, 2)
    stopped = a.enqueue(jobs.sleep_for, 60)
    wait_for(lambda: stopped.get_status() == JobStatus.STARTED)
    # Running, not only taken (a job held ahead shows started too, and a stop-job ends such a job
    # before it begins, uncounted): the tenth start on "a" is its own.
    samples = scraped_until(port, lambda s: value(s, "jobpool_jobs_started_total", queue="a") == 10)
    assert cast(float, value(samples, "jobpool_workers", state="busy")) >= 1
    send_stop_job_command(connection, stopped.id)
    wait_for(lambda: stopped.get_status() == JobStatus.STOPPED)

    expected = {
        ("a", "started"): 10,  # 5 + 2 + 2 runs of the retried job + the stopped one
        ("a", "finished"): 5,
        ("a", "failed"): 3,
        ("a", "retried"): 1,
        ("a", "stopped"): 1,
        ("b", "started"): 4,
        ("b", "finished"): 4,
        ("b", "failed"): 0,
    }

    def counted(s: Samples) -> bool:
        return all(
            value(s, f"jobpool_jobs_{what}_total", queue=queue) == count
            for (queue, what), count in expected.items()
        )

    samples = scraped_until(port, counted)
    assert value(samples, "jobpool_job_duration_seconds_count", queue="a") == 10
    assert value(samples, "jobpool_job_duration_seconds_count", queue="b") == 4
    # The 0.3 s job is above the 0.25 s bound and within 0.5 s; the quick ones are below both.
    assert value(samples, "jobpool_job_duration_seconds_bucket", queue="b", le="0.25") == 3
    assert value(samples, "jobpool_job_duration_seconds_bucket", queue="b", le="0.5") == 4
    assert value(samples, "jobpool_job_duration_seconds_bucket", queue="b", le="+Inf") == 4
    assert 0.3 <= (value(samples, "jobpool_job_duration_seconds_sum", queue="b") or 0) < 5
    assert slow.get_status() == JobStatus.FINISHED
    samples = scraped_until(port, lambda s: value(s, "jobpool_workers", state="idle") == 2)
    assert value(samples, "jobpool_worker_restarts_total", reason="crashed") == 0


def test_the_pool_shows_a_stopped_worker_as_suspended(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    port = free_port()
    running = pool("-n", "2", "--metrics-port", str(port), "q")
    running.wait_for_message("READY=1")
    scraped_until(port, lambda s: value(s, "jobpool_workers", state="idle") == 2)
    frozen = running.workers()[0]
    frozen.suspend()  # SIGSTOP
    queue = Queue("q", connection=connection)

    def seen_suspended(samples: Samples) -> bool:
        # The supervisor finds a worker stopped as it nudges it for a job: a job a look.
        queue.enqueue(jobs.add, 1, 1)
        return value(samples, "jobpool_workers", state="suspended") == 1

    samples = scraped_until(port, seen_suspended)
    working = [value(samples, "jobpool_workers", state=state) or 0 for state in ("idle", "busy")]
    assert sum(working) == 1  # the other one
    frozen.resume()
    scraped_until(port, lambda s: value(s, "jobpool_workers", state="idle") == 2)


def test_the_pool_counts_worker_restarts_by_reason_and_a_dead_workers_job(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    port = free_port()
    running = pool("-n", "1", "--max-jobs", "3", "--metrics-port", str(port), "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)

    for n in range(3):  # the worker's third job is its last: it is replaced
        queue.enqueue(jobs.add, n, 1)
    scraped_until(port, lambda s: value(s, "jobpool_worker_restarts_total", reason="recycled") == 1)

    doomed = queue.enqueue(jobs.sleep_for, 60)
    running.busy_worker(doomed.id).kill()  # SIGKILL, from outside
    samples = scraped_until(port, lambda s: value(s, "jobpool_worker_restarts_total", reason="killed") == 1)
    wait_for(lambda: doomed.get_status() == JobStatus.FAILED)
    # The supervisor recorded the dead worker's job: counted as it was recorded.
    samples = scraped_until(port, lambda s: value(s, "jobpool_jobs_failed_total", queue="q") == 1)
    assert value(samples, "jobpool_jobs_started_total", queue="q") == 4

    stuck = queue.enqueue(jobs.stuck_in_c, job_timeout=1)  # hard-killed 5 s past its timeout
    samples = scraped_until(
        port, lambda s: value(s, "jobpool_worker_restarts_total", reason="job_timeout") == 1
    )
    wait_for(lambda: stuck.get_status() == JobStatus.FAILED)
    assert value(samples, "jobpool_worker_restarts_total", reason="crashed") == 0


def test_the_pool_counts_redis_errors_of_its_supervisor_and_workers(pool_at: Callable[..., Pool]) -> None:
    server = EmbeddedRedis()
    server.start()
    try:
        connection = redis.Redis.from_url(server.url)
        port = free_port()
        running = pool_at(server.url, "-n", "1", "--metrics-port", str(port), "q")
        running.wait_for_message("READY=1")
        samples = scraped_until(port, lambda s: value(s, "jobpool_workers", state="idle") == 1)
        assert not [key for key in samples if key[0] == "jobpool_redis_errors_total"]
        job = Queue("q", connection=connection).enqueue(jobs.sleep_for, 1.0)
        running.busy_worker(job.id)
        server.stop()  # the job ends with Redis gone: its worker cannot record it
        samples = scraped_until(
            port,
            lambda s: (
                (
                    value(s, "jobpool_redis_errors_total", process="worker", operation="take or record jobs")
                    or 0
                )
                >= 1
                and any(
                    key[0] == "jobpool_redis_errors_total" and ("process", "supervisor") in key[1]
                    for key in s
                )
            ),
        )
        assert running.process.poll() is None  # the pool outlives the outage
    finally:
        server.stop()


def test_metrics_are_off_unless_asked_for_and_a_taken_port_is_a_clear_error(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = pool("-n", "1", "--metrics-port", str(port), "q")
        assert refused.wait() == 1
        assert f"cannot serve metrics on 127.0.0.1:{port}" in refused.log.read_text()
    plain = pool("-n", "1", "q")
    plain.wait_for_message("READY=1")
    processes = [psutil.Process(plain.process.pid), *plain.workers()]
    assert len(processes) == 2
    assert not [c for p in processes for c in p.net_connections() if c.status == psutil.CONN_LISTEN]


def test_restart_reasons_from_real_exit_statuses() -> None:
    def status_of(body: Callable[[], None]) -> int:
        pid = os.fork()
        if pid == 0:
            try:
                faulthandler.disable()  # a crash below is the point: no traceback for it
                body()
            finally:
                os._exit(1)
        return os.waitpid(pid, 0)[1]

    assert restart_reason(status_of(lambda: os._exit(RECYCLE_EXIT)), False) == "recycled"
    assert restart_reason(status_of(lambda: os._exit(0)), False) == "exited"
    assert restart_reason(status_of(lambda: os._exit(1)), False) == "crashed"
    killed = status_of(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert restart_reason(killed, False) == "killed"
    assert restart_reason(killed, True) == "job_timeout"
    assert restart_reason(status_of(lambda: os.kill(os.getpid(), signal.SIGSEGV)), False) == "crashed"


# ---- jobpool exporter ---------------------------------------------------------------------------------


@pytest.fixture
def exporter(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"exporter{len(started)}.log").open("w")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "jobpool", "exporter", "-u", redis_url, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": PYTHONPATH},
            )
        )
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_the_exporter_serves_queues_registries_and_rq_and_jobpool_workers(
    connection: redis.Redis, pool: Callable[..., Pool], exporter: Callable[..., subprocess.Popen[bytes]]
) -> None:
    running = pool("-n", "2", "--name", "exported", "busy")
    running.wait_for_message("READY=1")
    theirs = rq.Worker(["idle-q", "busy"], connection=connection, name="rq-worker")
    theirs.register_birth()
    theirs.set_state("idle")

    busy, other = Queue("busy", connection=connection), Queue("other", connection=connection)
    sleeper = busy.enqueue(jobs.sleep_for, 60)
    wait_for(lambda: sleeper.get_status() == JobStatus.STARTED)
    busy.enqueue(jobs.fail)
    wait_for(lambda: busy.failed_job_registry.count == 1)
    for n in range(3):
        other.enqueue(jobs.add, n, 1)  # no worker listens on it
    parent = other.enqueue(jobs.add, 1, 1)
    other.enqueue(jobs.add, 2, 2, depends_on=parent)  # deferred
    from datetime import timedelta

    other.enqueue_in(timedelta(hours=1), jobs.add, 3, 3)
    canceled = other.enqueue(jobs.add, 4, 4)
    canceled.cancel()

    port = free_port()
    process = exporter("--port", str(port))
    samples = scraped_until(port, lambda s: value(s, "rq_queue_jobs", queue="other") is not None)
    assert process.poll() is None
    assert value(samples, "rq_exporter_redis_up") == 1
    # What RQ's own API says of the same data.
    for name in ("busy", "other"):
        rq_queue = rq.Queue(name, connection=connection)
        assert value(samples, "rq_queue_jobs", queue=name) == rq_queue.count
        registries = {
            "started": rq_queue.started_job_registry,
            "finished": rq_queue.finished_job_registry,
            "failed": rq_queue.failed_job_registry,
            "deferred": rq_queue.deferred_job_registry,
            "scheduled": rq_queue.scheduled_job_registry,
            "canceled": rq_queue.canceled_job_registry,
        }
        for registry, rq_registry in registries.items():
            assert value(
                samples, "rq_registry_jobs", queue=name, registry=registry
            ) == rq_registry.get_job_count(cleanup=False), (name, registry)
    assert value(samples, "rq_queue_jobs", queue="other") == 4
    for registry, count in {"deferred": 1, "scheduled": 1, "canceled": 1, "failed": 0}.items():
        assert value(samples, "rq_registry_jobs", queue="other", registry=registry) == count
    assert value(samples, "rq_registry_jobs", queue="busy", registry="started") == 1
    assert value(samples, "rq_registry_jobs", queue="busy", registry="failed") == 1

    # Workers: the pool's two (one busy) and RQ's idle one, as RQ's Worker.all() sees them.
    states = sorted(worker.get_state() for worker in rq.Worker.all(connection=connection))
    assert states == ["busy", "idle", "idle"]
    assert value(samples, "rq_workers", state="busy") == 1
    assert value(samples, "rq_workers", state="idle") == 2
    assert value(samples, "rq_workers", state="suspended") == 0
    assert value(samples, "rq_queue_workers", queue="busy", state="idle") == 2
    assert value(samples, "rq_queue_workers", queue="busy", state="busy") == 1
    assert value(samples, "rq_queue_workers", queue="other", state="idle") == 0

    theirs.register_death()
    samples = scraped_until(port, lambda s: value(s, "rq_workers", state="idle") == 1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_the_exporter_reads_redis_in_two_round_trips_whatever_the_number_of_queues(
    redis_url: str, connection: redis.Redis
) -> None:
    for n in range(30):
        Queue(f"q{n}", connection=connection).enqueue(jobs.add, n, 1)
    for n in range(5):
        rq.Worker([f"q{n}"], connection=connection, name=f"w{n}").register_birth()

    class Counting(redis.Redis):
        round_trips = 0

        def execute_command(self, *args: object, **options: object) -> object:
            Counting.round_trips += 1
            return super().execute_command(*args, **options)

        def pipeline(self, transaction: bool = True, shard_hint: object = None) -> redis.client.Pipeline:
            Counting.round_trips += 1
            return super().pipeline(transaction, shard_hint)

    counting = Counting.from_url(redis_url)
    families = {family.name: family for family in DeploymentCollector(counting).collect()}
    assert Counting.round_trips == 2
    assert len(families["rq_queue_jobs"].samples) == 30
    assert {sample.value for sample in families["rq_queue_jobs"].samples} == {1}
    assert sum(sample.value for sample in families["rq_workers"].samples) == 5


def test_the_exporter_says_when_redis_cannot_be_read() -> None:
    server = EmbeddedRedis()
    server.start()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobpool", "exporter", "-u", server.url, "--port", str(port)],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
    )
    try:
        scraped_until(port, lambda s: value(s, "rq_exporter_redis_up") == 1)
        server.stop()
        samples = scraped_until(port, lambda s: value(s, "rq_exporter_redis_up") == 0)
        assert not [key for key in samples if key[0] == "rq_queue_jobs"]
    finally:
        server.stop()
        process.kill()
        process.wait()


def test_without_prometheus_client_both_commands_say_what_to_install(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobpool.cli import main

    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if it were not installed
    assert main(["exporter", "--port", str(free_port()), "-u", redis_url]) == 1
    assert main(["start", "--metrics-port", str(free_port()), "-u", redis_url, "q"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert (
        errors
        == ["jobpool: metrics need prometheus-client: pip install 'jobpool[metrics]' (or prometheus-client)"]
        * 2
    )
