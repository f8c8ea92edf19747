"""End to end: the real ``jobpool start`` as a subprocess against a private redis-server, with
real signals, real SIGKILLs and a real unix datagram socket as systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import psutil
import redis
import rq
import rq.job

import jobs
from conftest import wait_for
from jobpool import Queue, Retry
from jobpool.command import send_stop_job_command
from jobpool.job import Job, JobStatus
from jobpool.results import Result
from support.pool_process import Pool, jobpool


def test_burst_drains_queues_in_priority_order_and_rq_reads_the_results(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    high, low = Queue("high", connection=connection), Queue("low", connection=connection)
    # 20 ms a job: one worker cannot drain them all before the other starts (2.4 s of work).
    low_jobs = [low.enqueue(jobs.started_at_epoch, 0.02) for _ in range(60)]
    high_jobs = [high.enqueue(jobs.started_at_epoch, 0.02) for _ in range(60)]
    running = pool("-n", "2", "--burst", "high", "low")
    assert running.wait() == 0
    assert "READY=1" in running.messages[0].split("\n") if running.messages else True
    by_worker: dict[str, list[tuple[float, str]]] = {}
    for job in Job.fetch_many([j.id for j in high_jobs + low_jobs], connection):
        assert job is not None and job.get_status(refresh=False) == JobStatus.FINISHED
        by_worker.setdefault(job.worker_name or "", []).append((job.return_value(), job.origin))
    assert len(by_worker) == 2  # both workers ran jobs
    for started in by_worker.values():
        origins = [origin for _, origin in sorted(started)]
        assert origins == sorted(origins)  # each worker ran every high job it took before any low one
    theirs = rq.job.Job.fetch(low_jobs[0].id, connection=connection)
    assert (
        theirs.get_status() == rq.job.JobStatus.FINISHED
        and theirs.return_value() == low_jobs[0].return_value()
    )


def test_ready_on_the_notify_socket_and_rq_info_sees_the_workers(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    message = running.wait_for_message("READY=1")
    assert any(line.startswith("STATUS=2 workers") for line in message.split("\n"))
    info = subprocess.run(
        [sys.executable, "-m", "rq.cli", "info", "-u", redis_url, "q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert info.returncode == 0 and info.stdout.count("testpool.") == 2, info.stdout
    ours = jobpool("info", url=redis_url)
    assert ours.returncode == 0 and ours.stdout.count("testpool.") == 2
    running.process.send_signal(signal.SIGTERM)
    assert running.wait() == 0
    running.wait_for_message("STOPPING=1")
    assert not connection.smembers("rq:workers")


def test_a_killed_worker_has_its_job_failed_within_a_second_and_is_replaced(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    doomed = queue.enqueue(jobs.sleep_for, 60)
    retried = queue.enqueue(jobs.sleep_then_fail_once, 60, retry=Retry(1))
    worker = running.busy_worker(doomed.id)
    wait_for(lambda: connection.keys(f"rq:execution:{doomed.id}:*"))  # RQ's records, for a job that runs on
    worker.kill()
    killed_at = time.monotonic()
    wait_for(lambda: doomed.get_status() == JobStatus.FAILED, deadline_seconds=5)
    assert time.monotonic() - killed_at < 2.0  # within about a second: the supervisor saw it die
    assert "terminated unexpectedly" in (doomed.exc_info or "") and "signal 9" in (doomed.exc_info or "")
    assert not connection.keys(f"rq:execution:{doomed.id}:*") and not connection.exists(
        f"rq:executions:{doomed.id}"
    )
    second = running.busy_worker(retried.id)  # a new worker took the next job
    assert second.pid != worker.pid
    wait_for(lambda: connection.exists(f"attempts:{retried.id}"))  # its first attempt has begun
    second.kill()
    wait_for(lambda: retried.get_status() == JobStatus.FINISHED)  # retried per its Retry, by a third worker
    assert retried.return_value() == "attempt 2"


def test_timeouts_soft_and_hard(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    soft = queue.enqueue(jobs.spin_until_timeout, job_timeout=1)
    stuck = queue.enqueue(jobs.stuck_in_c, job_timeout=1)
    after = queue.enqueue(jobs.add, 1, 1)
    wait_for(lambda: soft.get_status() == JobStatus.FAILED)
    assert "JobTimeoutException" in (soft.exc_info or "")
    wait_for(lambda: stuck.get_status() == JobStatus.FAILED, deadline_seconds=30)
    assert "did not return to Python" in (stuck.exc_info or "")
    wait_for(lambda: after.get_status() == JobStatus.FINISHED)


def test_stop_job(redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.sleep_for, 60, retry=Retry(3))
    running.busy_worker(job.id)
    stopped = jobpool("stop-job", job.id, url=redis_url)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: job.get_status() == JobStatus.STOPPED)
    assert job.id in queue.failed_job_registry  # stopped, and not retried
    other = queue.enqueue(jobs.sleep_for, 60)
    running.busy_worker(other.id)
    send_stop_job_command(connection, other.id)  # RQ's message, sent as RQ sends it
    wait_for(lambda: other.get_status() == JobStatus.STOPPED)
    not_running = jobpool("stop-job", job.id, url=redis_url)
    assert not_running.returncode == 1 and "not running" in not_running.stderr
    assert len(not_running.stderr.strip().splitlines()) == 1


def test_warm_then_cold_shutdown(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    short = queue.enqueue(jobs.sleep_for, 1.0)
    running.busy_worker(short.id)
    running.process.send_signal(signal.SIGTERM)
    assert running.wait() == 0
    assert short.get_status() == JobStatus.FINISHED  # warm: the running job finished

    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    long = queue.enqueue(jobs.sleep_for, 60.0)
    running.busy_worker(long.id)
    running.process.send_signal(signal.SIGTERM)
    running.wait_for_message("STOPPING=1")  # the first was handled (two at once would merge into one)
    running.process.send_signal(signal.SIGTERM)
    assert running.wait(timeout=10) == 0
    assert long.get_status() == JobStatus.STOPPED  # cold: stopped, and recorded as such


def test_a_warm_stop_while_a_respawn_is_pending_exits(pool: Callable[..., Pool]) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    victim = running.workers()[0]
    # A crash of its own (a kill from outside is replaced at once), young: its slot's next worker
    # waits out the crash-loop back-off (0.5 s).
    victim.send_signal(signal.SIGSEGV)
    wait_for(lambda: victim.pid not in {child.pid for child in running.workers()}, step=0.005)
    running.process.send_signal(signal.SIGTERM)
    assert running.wait(timeout=10) == 0
    assert "starts in" in running.log.read_text()  # the stop came while the respawn was pending


def test_sighup_replaces_workers_without_dropping_a_job(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    before = {p.pid for p in running.workers()}
    queue = Queue("q", connection=connection)
    job = queue.enqueue(jobs.sleep_for, 1.5)
    running.busy_worker(job.id)
    running.process.send_signal(signal.SIGHUP)
    wait_for(lambda: len(before & {p.pid for p in running.workers()}) == 0 and len(running.workers()) == 2)
    assert job.get_status() == JobStatus.FINISHED
    assert queue.enqueue(jobs.add, 2, 3) and wait_for(lambda: queue.finished_job_registry.count == 2) is None  # type: ignore[func-returns-value]  # None: it waited


def test_max_jobs_recycles_workers(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    queue = Queue("q", connection=connection)
    enqueued = [queue.enqueue(jobs.add, i, i) for i in range(10)]
    running = pool("-n", "1", "--burst", "--max-jobs", "3", "q")
    assert running.wait() == 0
    fetched = Job.fetch_many([j.id for j in enqueued], connection)
    assert all(j is not None and j.get_status(refresh=False) == JobStatus.FINISHED for j in fetched)
    assert len({j.worker_name for j in fetched if j}) == 4  # 3 + 3 + 3 + 1


def test_scheduled_jobs_and_retry_intervals(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    from datetime import timedelta

    queue = Queue("q", connection=connection)
    later = queue.enqueue_in(timedelta(seconds=1), jobs.add, 5, 5)
    failing = queue.enqueue(jobs.fail, "again", retry=Retry(1, interval=1))
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: later.get_status() == JobStatus.FINISHED)
    assert later.return_value() == 10
    wait_for(
        lambda: (
            failing.get_status() == JobStatus.FAILED and Job.fetch(failing.id, connection).retries_left == 0
        )
    )
    assert Result.count(failing) == 1


def test_cli_commands(redis_url: str, connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    bad = queue.enqueue(jobs.fail)
    connection.lrem(queue.key, 0, bad.id)
    bad.set_status(JobStatus.FAILED)
    connection.zadd("rq:failed:q", {bad.id: time.time() + 100})
    assert jobpool("requeue", "--queue", "q", "--all", url=redis_url).returncode == 0
    assert queue.job_ids == [bad.id]
    assert jobpool("cancel", bad.id, url=redis_url).returncode == 0 and bad.is_canceled
    queue.enqueue(jobs.add, 1, 1)
    assert jobpool("empty", "q", url=redis_url).returncode == 0 and queue.count == 0
    assert jobpool("suspend", url=redis_url).returncode == 0 and connection.exists("rq:suspended")
    assert jobpool("resume", url=redis_url).returncode == 0 and not connection.exists("rq:suspended")
    unknown = jobpool("cancel", "no-such-job", url=redis_url)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "no-such-job" in unknown.stderr
    nowhere = jobpool("info", url="redis://127.0.0.1:1/0")
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("jobpool: cannot reach Redis")
    assert "Traceback" not in nowhere.stderr
    version = subprocess.run([sys.executable, "-m", "jobpool", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("jobpool ")
    bad_flag = subprocess.run(
        [sys.executable, "-m", "jobpool", "start", "-n", "0"], capture_output=True, text=True
    )
    assert bad_flag.returncode == 2 and "positive integer" in bad_flag.stderr
    nothing_failed = jobpool("requeue", "--queue", "empty", "--all", url=redis_url)
    assert nothing_failed.returncode == 0 and "requeued 0" in nothing_failed.stdout
    for url in ("foo://x", "redis://:secret@127.0.0.1:1/0"):
        failed = jobpool("info", url=url)
        assert failed.returncode == 1 and failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
        assert "secret" not in failed.stderr
    no_memory = jobpool("start", "--max-memory", "0", "q", url=redis_url)
    assert no_memory.returncode == 1 and "--max-memory" in no_memory.stderr


def test_suspended_pool_takes_nothing(
    connection: redis.Redis, pool: Callable[..., Pool], redis_url: str
) -> None:
    jobpool("suspend", url=redis_url)
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 1)
    running = pool("-n", "1", "--burst", "q")
    assert running.wait() == 0  # a burst pool exits when suspended, as RQ's burst workers do
    assert job.get_status() == JobStatus.QUEUED


def test_an_idle_pool_wakes_at_once_for_jobpool_jobs_and_within_a_second_for_rq_pushes(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    queue = Queue("q", connection=connection)
    latencies = []
    for _ in range(3):
        enqueued = time.time()
        job = queue.enqueue(jobs.started_at_epoch)
        wait_for(lambda job=job: job.get_status() == JobStatus.FINISHED)  # type: ignore[misc]  # mypy infers no lambda with a default (which binds the loop's value)
        latencies.append(job.return_value() - enqueued)
    assert max(latencies) < 0.5  # the supervisor's wait on the wake-up list returned at once
    enqueued = time.time()
    plain = rq.Queue("q", connection=connection).enqueue(jobs.started_at_epoch)
    wait_for(lambda: plain.get_status() == rq.job.JobStatus.FINISHED)
    assert cast(float, plain.return_value()) - enqueued < 2.0  # the pool looks once a second


def _idle_calls(connection: redis.Redis, pool: Callable[..., Pool], workers: int) -> int:
    """Requests the pool's clients send in a fixed window while idle: blocking waits and scripts
    (the commands a script runs inside Redis are not requests)."""
    running = pool("-n", str(workers), "q")
    running.wait_for_message("READY=1")
    connection.config_resetstat()
    time.sleep(3)  # a fixed window: what is measured is the number of calls in it
    stats = connection.info("commandstats")
    calls = sum(
        stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("blpop", "evalsha", "evalsha_ro")
    )
    running.process.send_signal(signal.SIGTERM)
    running.wait()
    return calls


def test_an_idle_pool_costs_redis_the_same_whatever_its_size(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    one, four = _idle_calls(connection, pool, 1), _idle_calls(connection, pool, 4)
    assert four <= one * 1.5 + 10, (one, four)  # idle workers wait on their supervisor, not on Redis


def test_workers_die_with_their_supervisor(pool: Callable[..., Pool]) -> None:
    running = pool("-n", "2", "q")
    running.wait_for_message("READY=1")
    workers = running.workers()
    assert len(workers) == 2
    running.process.kill()
    running.process.wait()
    wait_for(
        lambda: not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
    )


def test_preload_path_and_json_serializer(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    module = tmp_path / "preloaded_tasks.py"
    module.write_text(
        "LOADED_BY = 'preload'\n\ndef shout(word):\n    return word.upper() + ' ' + LOADED_BY\n"
    )
    queue = Queue("q", connection=connection, serializer="json")
    job = queue.enqueue("preloaded_tasks.shout", "hi")
    running = pool(
        "-n", "1", "--burst", "--path", str(tmp_path), "--preload", "preloaded_tasks", "-S", "json", "q"
    )
    assert running.wait() == 0
    assert Job.fetch(job.id, connection, serializer="json").return_value() == "HI preload"
    missing = pool("-n", "1", "--burst", "--preload", "no_such_module", "q")
    assert missing.wait() == 1 and "No module named 'no_such_module'" in missing.log.read_text()


def test_watchdog_pings_while_healthy(pool: Callable[..., Pool]) -> None:
    running = pool("-n", "1", "q", environ={"WATCHDOG_USEC": "400000"})
    running.wait_for_message("READY=1")
    running.wait_for_message("WATCHDOG=1")
    running.wait_for_message("WATCHDOG=1")


def test_max_memory_recycles_workers(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    queue = Queue("q", connection=connection)
    enqueued = [queue.enqueue(jobs.add, i, i) for i in range(3)]
    running = pool("-n", "1", "--burst", "--max-memory", "1", "q")  # every worker is above 1 MB
    assert running.wait() == 0
    fetched = Job.fetch_many([j.id for j in enqueued], connection)
    assert all(j is not None and j.get_status(refresh=False) == JobStatus.FINISHED for j in fetched)
    assert len({j.worker_name for j in fetched if j}) == 3  # replaced after each job


def test_a_pool_killed_outright_can_start_again_under_its_name(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    first = pool("-n", "2", "q")
    first.wait_for_message("READY=1")
    first.process.kill()  # no chance to deregister its workers
    first.wait()
    second = pool("-n", "2", "q")  # the same --name: its workers replace the stale entries
    second.wait_for_message("READY=1")
    job = Queue("q", connection=connection).enqueue(jobs.add, 3, 4)
    wait_for(lambda: job.get_status() == JobStatus.FINISHED)
    assert "Traceback" not in second.log.read_text()
