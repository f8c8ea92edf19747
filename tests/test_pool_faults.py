"""Faults while a pool's workers hold jobs in batches: SIGKILL and SIGSTOP of workers from
outside, and workers SIGKILLing themselves at every step of their batches, at random instants of
a drain that mixes quick jobs (so workers take jobs ahead, in batches) with slow ones (so the
supervisor takes held jobs back); SIGKILL of the whole pool (supervisor and workers); and a
Redis restart mid-drain.

Every job ends exactly once and none is lost. While the supervisor lives, none runs twice: a
job fails only if it was running when its worker died (one job a death at most), and the
records a worker kept in the ledger are written by its supervisor. When the whole pool dies,
those records die with it: jobs of the batch in progress run again (at least once, as the
design promises), and with ``--prefetch 0`` none does.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import redis

import jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.job import Job, JobStatus
from support.pool_process import Pool, lapse_executions

QUEUES = ["high", "low"]
JOBS_PER_QUEUE = 600
SLOW_EVERY = 15  # one job in this many sleeps long enough to have the job held behind it taken back
FAULT_EVERY_SECONDS = 0.4
DEADLINE_SECONDS = 240


def enqueue_mixed(connection: redis.Redis) -> list[str]:
    ids = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        datas = [
            Queue.prepare_data(jobs.counted_sleep, (0.15 if i % SLOW_EVERY == 0 else 0,), timeout=30)
            for i in range(JOBS_PER_QUEUE)
        ]
        ids += [job.id for job in queue.enqueue_many(datas)]
    return ids


def ended(connection: redis.Redis) -> int:
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUES:
            pipe.zcard(f"rq:finished:{name}")
            pipe.zcard(f"rq:failed:{name}")
        return sum(pipe.execute())


def stuck(connection: redis.Redis) -> dict[str, object]:
    """Where the jobs that have not ended are, for a failure's message."""
    return {
        name: {
            "queued": connection.llen(f"rq:queue:{name}"),
            "started": connection.zrange(f"rq:wip:{name}", 0, -1, withscores=True),
            "now": time.time(),
        }
        for name in QUEUES
    }


def kill_pool(running: Pool) -> None:
    """SIGKILL of the supervisor; its workers die with it. Then their executions are made to
    lapse at once (rather than after the 30 s heartbeat ttl), as if that time had passed."""
    workers = running.workers()
    running.process.kill()
    running.process.wait()
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.wait(10)
    connection = redis.Redis.from_url(running.url)
    for name in QUEUES:
        lapse_executions(connection, name)


def drain_under_faults(
    connection: redis.Redis,
    pool: Callable[..., Pool],
    kinds: list[str],
    options: tuple[str, ...] = (),
    environ: dict[str, str] | None = None,
) -> tuple[list[str], Counter[str], list[Pool]]:
    """Drains the mixed jobs with a pool of two, a fault of one of ``kinds`` at a time."""
    ids = enqueue_mixed(connection)
    rng = random.Random(9)
    running = pool("-n", "2", *options, *QUEUES, environ=environ)
    pools = [running]
    faults: Counter[str] = Counter()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while ended(connection) < len(ids):
        assert time.monotonic() < deadline, (
            f"only {ended(connection)} of {len(ids)} jobs ended: {stuck(connection)}"
        )
        time.sleep(FAULT_EVERY_SECONDS)  # the pace of the faults, not a synchronisation
        if not kinds:
            continue
        workers = running.workers()
        fault = rng.choice(kinds)
        if fault == "kill pool" and faults[fault] < 3:
            kill_pool(running)
            running = pool("-n", "2", *options, *QUEUES, environ=environ)
            pools.append(running)
        elif fault == "stop worker" and workers:
            victim = rng.choice(workers)
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.suspend()
                time.sleep(rng.uniform(0.05, 0.5))  # long enough, often, for its held jobs to be taken back
                victim.resume()
        elif fault == "kill worker" and workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                rng.choice(workers).kill()
        else:
            continue
        faults[fault] += 1
    print(f"\n{len(ids)} jobs; faults: {dict(faults)}")
    for name in QUEUES:
        assert connection.llen(f"rq:queue:{name}") == 0
        wait_for(lambda name=name: connection.zcard(f"rq:wip:{name}") == 0)  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
    return ids, faults, pools


def recorded_once(connection: redis.Redis, ids: list[str], most_runs: int) -> Counter[JobStatus | None]:
    """Checks each job ended in exactly one registry with one result, ran at most ``most_runs``
    times and at least once unless it failed (its worker died as it ran), and failed only so.
    Returns the count of each status."""
    statuses: Counter[JobStatus | None] = Counter()
    for job in Job.fetch_many(ids, connection):
        assert job is not None, "a job hash disappeared"
        status = job.get_status(refresh=False)
        statuses[status] += 1
        in_finished = connection.zscore(f"rq:finished:{job.origin}", job.id) is not None
        in_failed = connection.zscore(f"rq:failed:{job.origin}", job.id) is not None
        assert in_finished != in_failed, f"{job.id}: finished {in_finished}, failed {in_failed}"
        assert len(job.results()) == 1, f"{job.id} has {len(job.results())} results"
        runs = int(connection.get(f"runs:{job.id}") or 0)
        assert runs <= most_runs, f"{job.id} ({status}) ran {runs} times"
        assert runs >= 1 or status == JobStatus.FAILED, f"{job.id} ({status}) never ran"
        if status == JobStatus.FAILED:  # its worker died as it ran (or, when a pool died, as it began)
            reason = job.exc_info or ""
            assert "terminated unexpectedly" in reason or "AbandonedJobError" in reason, reason
    print(f"statuses: {dict(statuses)}")
    return statuses


def test_workers_killed_and_stopped_from_outside_lose_nothing_and_run_nothing_twice(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    ids, faults, pools = drain_under_faults(connection, pool, ["kill worker", "stop worker"])
    assert faults["kill worker"] >= 3 and faults["stop worker"] >= 3
    taken_back = sum(each.log.read_text().count("is back in its queue") for each in pools)
    assert taken_back >= 5  # held jobs were taken back from busy and stopped workers
    statuses = recorded_once(connection, ids, most_runs=1)
    # One job at most a death: the one running. A held job never fails with it.
    assert statuses[JobStatus.FAILED] <= faults["kill worker"]


def test_workers_killed_at_every_step_of_their_batches_lose_nothing_and_run_nothing_twice(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    kill_log = tmp_path / "kills.log"
    environ = {"JOBPOOL_TEST_KILL_PROBABILITY": "0.002", "JOBPOOL_TEST_KILL_LOG": str(kill_log)}
    ids, _, pools = drain_under_faults(
        connection, pool, [], ("--preload", "support.faulty_pool_worker"), environ
    )
    kills = kill_log.read_text().splitlines()
    print(f"kills: {dict(Counter(kills))}")
    assert len(kills) >= 5 and len(set(kills)) >= 4, kills
    statuses = recorded_once(connection, ids, most_runs=1)
    assert statuses[JobStatus.FAILED] <= len(kills)
    recorded_by_supervisor = sum(each.log.read_text().count("ran before it died") for each in pools)
    print(f"records written by the supervisor for dead workers: {recorded_by_supervisor}")


def test_a_pool_killed_outright_loses_nothing_and_records_each_job_once(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    ids, faults, _ = drain_under_faults(connection, pool, ["kill worker", "kill pool", "kill pool"])
    assert faults["kill pool"] >= 1
    # A job of a batch in progress runs again after each kill of the whole pool it meets.
    statuses = recorded_once(connection, ids, most_runs=1 + faults["kill pool"])
    assert statuses[JobStatus.FAILED] <= faults["kill worker"] + 2 * faults["kill pool"]


def test_a_pool_that_takes_one_job_at_a_time_runs_nothing_twice_even_killed_outright(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    ids, faults, _ = drain_under_faults(connection, pool, ["kill worker", "kill pool"], ("--prefetch", "0"))
    assert faults["kill pool"] >= 1
    statuses = recorded_once(connection, ids, most_runs=1)
    assert statuses[JobStatus.FAILED] <= faults["kill worker"] + 2 * faults["kill pool"]


class DurableRedis:
    """A redis-server of the test's own that writes every change to its append-only file
    before it answers, so a SIGKILL of it loses nothing it acknowledged; restarted on its port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
        ]
        command += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        pid = self.process.pid
        wait_for(lambda: _answers(client), deadline_seconds=10)
        # The server that answers must be this one (another could hold the port): never a stranger's.
        assert int(client.info("server")["process_id"]) == pid, f"port {self.port} is another server's"

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_redis_restart_mid_drain_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path, pool_at: Callable[..., Pool]
) -> None:
    server = DurableRedis(tmp_path)
    server.start()
    try:
        connection = redis.Redis.from_url(server.url)
        runs = tmp_path / "runs.log"
        queue = Queue("q", connection=connection)
        datas = [
            Queue.prepare_data(jobs.logged_sleep, (str(runs), 0.1 if i % SLOW_EVERY == 0 else 0), timeout=60)
            for i in range(600)
        ]
        ids = [job.id for job in queue.enqueue_many(datas)]
        running = pool_at(server.url, "-n", "2", "q")
        restarts = 0
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            finished = _finished_count(connection)
            if finished is not None and finished >= len(ids):
                break
            assert time.monotonic() < deadline, f"only {finished} of {len(ids)} jobs ended"
            if restarts < 3 and finished is not None and finished >= (restarts + 1) * len(ids) // 4:
                server.kill()
                time.sleep(0.5)  # the length of the outage, not a synchronisation
                server.start()
                restarts += 1
            time.sleep(0.05)  # the pace of the look
        assert restarts == 3 and running.process.poll() is None
        ran = Counter(runs.read_text().split())
        assert set(ran) == set(ids) and max(ran.values()) == 1, ran.most_common(3)
        for job in Job.fetch_many(ids, connection):
            assert job is not None and job.get_status(refresh=False) == JobStatus.FINISHED
            assert len(job.results()) == 1
        assert connection.zcard("rq:wip:q") == 0 and connection.llen("rq:queue:q") == 0
    finally:
        server.kill()


def _finished_count(connection: redis.Redis) -> int | None:
    try:
        return int(connection.zcard("rq:finished:q"))
    except redis.RedisError:
        return None
