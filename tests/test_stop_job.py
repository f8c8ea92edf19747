"""stop-job end to end: the command reaches a pool's workers under an ACL that refuses pattern
subscriptions and after its subscription's connection is lost (loudly or silently), a job held
ahead is stopped before it begins, and ``jobpool stop-job`` says whether the job stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from setproctitle import getproctitle, setproctitle

import jobs
from conftest import wait_for
from jobpool import Queue, keys
from jobpool._native import Ledger
from jobpool.job import Job, JobStatus
from jobpool.job_runner import Outcome
from jobpool.pool.children import Child
from jobpool.pool.pool_worker import PoolWorker
from jobpool.pool.supervisor import Supervisor
from jobpool.redis_target import connect_core
from jobpool.redis_values import as_text, as_texts
from support.freezing_proxy import FreezingProxy
from support.pool_process import Pool, jobpool

EXECUTION = "0123456789abcdef0123456789abcdef"


# ---- what a stop-job does in the pool -------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing in for a pool worker, to receive the supervisor's signals."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_a_job_held_ahead_is_stopped_before_it_begins(
    redis_url: str, connection: redis.Redis, sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """The supervisor's relay, without the processes: the worker holds ``held`` (taken ahead, so
    it shows as started) while it runs another job."""
    queue = Queue("q", connection=connection)
    held = queue.enqueue(jobs.counted_sleep, 0)
    supervisor = Supervisor(redis_url, ["q"], 1, name="relay")
    report_read, report_write = os.pipe()
    os.set_blocking(report_read, False)
    child = Child(0, sleeper.pid, "relay.0.1", report_read, report_write, started=time.monotonic())
    supervisor.children[sleeper.pid] = child
    connection.hset(keys.worker(child.name), mapping={"state": "busy", "failed_job_count": 0})
    supervisor.ledger.hold(0, [EXECUTION])
    connect_core(redis_url).take(["q"], child.name, EXECUTION, 30, marked_held=True)
    assert held.get_status() == JobStatus.STARTED and connection.hget(held.key, "jobpool_held")

    supervisor.relay.apply(child.name, {"command": "stop-job", "job_id": held.id})

    assert held.get_status() == JobStatus.STOPPED and held.id in queue.failed_job_registry
    assert "before the job began" in (Job.fetch(held.id, connection).exc_info or "")
    assert connection.hget(held.key, "jobpool_held") is None
    assert not queue.started_job_registry.get_job_ids() and queue.count == 0
    assert supervisor.ledger.start_held(0) is False  # taken back: the worker will not begin it
    assert supervisor.ledger.stop_requested(0, EXECUTION)  # and, were it beginning it, it stops it
    assert sleeper.wait(timeout=5) == -signal.SIGUSR2
    worker = connection.hgetall(keys.worker(child.name))
    assert worker[b"state"] == b"busy" and worker[b"failed_job_count"] == b"1"
    for fd in (report_read, report_write):
        os.close(fd)


@pytest.fixture
def pool_worker(connection: redis.Redis) -> Iterator[PoolWorker]:
    """A pool worker in this process, with the SIGUSR2 handler a pool worker installs."""
    report_read, report_write = os.pipe()
    nudge_read, nudge_write = os.pipe()
    title = getproctitle()
    worker = PoolWorker(
        ["q"],
        name="pw",
        connection=connection,
        report_fd=report_write,
        nudge_fd=nudge_read,
        title="test",
        ledger=Ledger(1),
        slot=0,
    )
    previous = signal.signal(signal.SIGUSR2, worker.stop_requested_job)
    yield worker
    signal.signal(signal.SIGUSR2, previous)
    setproctitle(title)
    for fd in (report_read, report_write, nudge_read, nudge_write):
        os.close(fd)


def _perform_asking_meanwhile(worker: PoolWorker, execution_id: str | None = None) -> Outcome:
    """Takes the next job and runs it as a pool worker does; 0.3 s in, its supervisor asks it to
    stop ``execution_id`` (default: the job's own execution)."""
    taken = worker._take(None)
    assert taken is not None

    def ask() -> None:
        worker.hooks.ledger.request_stop(0, execution_id or taken.execution_id)
        os.kill(os.getpid(), signal.SIGUSR2)

    timer = threading.Timer(0.3, ask)
    worker.hooks.starting(taken)
    timer.start()
    try:
        return worker._perform(taken)
    finally:
        timer.cancel()


def test_a_pool_worker_stops_the_execution_its_supervisor_names(
    connection: redis.Redis, pool_worker: PoolWorker
) -> None:
    queue = Queue("q", connection=connection)
    queue.enqueue(jobs.sleep_for, 30)
    started = time.monotonic()
    outcome = _perform_asking_meanwhile(pool_worker)
    assert outcome.stopped and "stop-job command" in outcome.reason and time.monotonic() - started < 10
    queue.enqueue(jobs.sleep_for, 1)
    assert _perform_asking_meanwhile(pool_worker, EXECUTION).succeeded  # another execution's stop


def test_a_pool_worker_asked_to_stop_a_job_it_has_not_begun_never_runs_it(
    connection: redis.Redis, pool_worker: PoolWorker
) -> None:
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.counted_sleep, 0)
    taken = pool_worker._take(None)
    assert taken is not None
    pool_worker.hooks.ledger.request_stop(0, taken.execution_id)  # between its take and its start
    outcome = pool_worker._perform(taken)
    assert outcome.stopped and "before the job began" in outcome.reason
    assert connection.get(f"runs:{job.id}") is None


# ---- the subscription ---------------------------------------------------------------------------


def _worker_channels(connection: redis.Redis) -> list[str]:
    prefix = len(keys.worker(""))
    return [keys.worker_commands(key[prefix:]) for key in as_texts(connection.smembers(keys.WORKERS))]


def _subscribers(connection: redis.Redis) -> dict[str, int]:
    """Each live worker's channel, and how many connections subscribe to it."""
    channels = _worker_channels(connection)
    return {as_text(name): count for name, count in connection.pubsub_numsub(*channels)} if channels else {}


def _running_job(connection: redis.Redis, running: Pool) -> Job:
    job = Queue("q", connection=connection).enqueue(jobs.sleep_for, 60)
    running.busy_worker(job.id)
    return job


def _stop_with_the_cli(job: Job, url: str) -> None:
    stopped = jobpool("stop-job", job.id, url=url)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith(f"stopped job {job.id}")
    assert job.get_status() == JobStatus.STOPPED


@pytest.fixture
def acl_url(redis_url: str, connection: redis.Redis) -> Iterator[str]:
    """The URL of a user who may use every key and channel under ``rq:`` (``~rq:* &rq:*``), which
    lets it subscribe to a worker's channel, as RQ's workers do, and not to a pattern."""
    major = int(str(connection.info("server")["redis_version"]).split(".")[0])
    if major < 6:
        pytest.skip("ACLs need Redis 6")
    connection.execute_command(
        "ACL", "SETUSER", "pool-user", "reset", "on", ">secret", "~rq:*", "&rq:*", "+@all"
    )
    parts = urllib.parse.urlsplit(redis_url)
    yield urllib.parse.urlunsplit(parts._replace(netloc=f"pool-user:secret@{parts.hostname}:{parts.port}"))
    connection.execute_command("ACL", "DELUSER", "pool-user")


def test_commands_reach_a_pool_whose_user_may_subscribe_to_channels_but_not_patterns(
    acl_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    refused = redis.Redis.from_url(acl_url).pubsub()
    refused.psubscribe(keys.worker_commands("testpool.*"))
    with pytest.raises(redis.exceptions.NoPermissionError):
        refused.get_message(timeout=1)  # what a pool subscribed with a pattern got: nothing, ever
    refused.close()
    running = pool("-n", "2", "-u", acl_url, "q")  # the last -u is the one argparse keeps
    running.wait_for_message("READY=1")
    wait_for(lambda: list(_subscribers(connection).values()) == [1, 1])
    _stop_with_the_cli(_running_job(connection, running), acl_url)


def test_a_pool_follows_its_workers_channels_as_they_come_and_go(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    (first,) = _worker_channels(connection)
    wait_for(lambda: _subscribers(connection) == {first: 1})
    (worker,) = running.workers()
    worker.kill()
    replacements: list[str] = []

    def replaced() -> bool:
        replacements[:] = set(_worker_channels(connection)) - {first}
        return bool(replacements)

    wait_for(replaced)
    (second,) = replacements
    wait_for(lambda: connection.pubsub_numsub(first, second) == [(first.encode(), 0), (second.encode(), 1)])


def test_a_pool_drops_unreadable_commands_and_relays_the_next(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    job = _running_job(connection, running)
    (channel,) = _worker_channels(connection)
    wait_for(lambda: _subscribers(connection) == {channel: 1})
    for unreadable in (b"1", b"[]", b"not json", b"\xff"):
        assert connection.publish(channel, unreadable) == 1
    _stop_with_the_cli(job, redis_url)
    assert running.process.poll() is None and "Unreadable command" in running.log.read_text()


def test_a_pool_subscribes_again_after_redis_closes_its_subscription(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    job = _running_job(connection, running)
    wait_for(lambda: list(_subscribers(connection).values()) == [1, 1])
    assert connection.client_kill_filter(_type="pubsub") == 1
    wait_for(lambda: list(_subscribers(connection).values()) == [1, 1])  # both channels, again
    _stop_with_the_cli(job, redis_url)


def test_a_pool_notices_a_silent_subscription_and_subscribes_again(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    proxy = FreezingProxy(int(urllib.parse.urlsplit(redis_url).port or 6379))
    try:
        running = pool("-n", "1", "-u", proxy.url, "q")
        running.wait_for_message("READY=1")
        job = _running_job(connection, running)
        wait_for(lambda: connection.client_list(_type="pubsub"))
        (before,) = [client["id"] for client in connection.client_list(_type="pubsub")]
        assert proxy.silence_subscribers() == 1
        # Redis still counts the silent connection: a command published now is lost.
        assert connection.publish(_worker_channels(connection)[0], b'{"command": "nothing"}') == 1

        def subscribed_anew() -> bool:
            return [client["id"] for client in connection.client_list(_type="pubsub")] not in ([], [before])

        wait_for(subscribed_anew)
        wait_for(lambda: list(_subscribers(connection).values()) == [1])  # the silent one is closed
        _stop_with_the_cli(job, redis_url)
        assert "went silent" in running.log.read_text()
    finally:
        proxy.close()


# ---- jobpool stop-job ----------------------------------------------------------------------------


def _started_on(connection: redis.Redis, worker_name: str) -> Job:
    """A job that looks started by ``worker_name`` (no worker runs it)."""
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 1)
    connection.hset(job.key, mapping={"status": "started", "worker_name": worker_name})
    return job


def test_stop_job_says_when_no_worker_received_the_command(redis_url: str, connection: redis.Redis) -> None:
    job = _started_on(connection, "gone.0.1")
    result = jobpool("stop-job", job.id, "--wait", "0.5", url=redis_url)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"jobpool: no worker received the command to stop job {job.id}: nothing listens on "
        f"rq:pubsub:gone.0.1 (is the pool or worker gone.0.1 running?)\n"
    )


def test_stop_job_says_when_the_job_did_not_stop(redis_url: str, connection: redis.Redis) -> None:
    job = _started_on(connection, "deaf.0.1")
    deaf = connection.pubsub()
    deaf.subscribe(keys.worker_commands("deaf.0.1"))  # receives the command, and does nothing
    deaf.get_message(timeout=1)
    result = jobpool("stop-job", job.id, "--wait", "0.5", url=redis_url)
    assert result.returncode == 1
    assert result.stderr == (
        f"jobpool: deaf.0.1 received the command, but job {job.id} is still started after 0.5 s\n"
    )
    assert deaf.get_message(timeout=1)["data"] == f'{{"command": "stop-job", "job_id": "{job.id}"}}'.encode()
    deaf.close()
