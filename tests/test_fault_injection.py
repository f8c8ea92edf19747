"""Nothing is lost, nothing is recorded twice: workers SIGKILLed at every step of take and
finish, over thousands of jobs on several queues, against a real redis-server.

Workers kill themselves at random at the edges of each core call (see support/fault_worker.py), and the
test kills them from outside at random instants too (mid-job, mid-call, blocked on an empty
queue). Dead workers are replaced; abandoned executions are recovered. At the end every job is
finished or failed, in exactly one registry, with exactly one result.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis

import jobs
from jobpool import Queue, Retry
from jobpool.job import Job, JobStatus
from jobpool.recovery import recover_abandoned

FAULT_WORKER = Path(__file__).parent / "support" / "fault_worker.py"
QUEUES = ["high", "mid", "low"]
JOBS = 6000
WORKERS = 2
SELF_KILL_PROBABILITY = 0.003  # per hook; about five hooks a job
OUTSIDE_KILL_EVERY_JOBS = 40  # one outside kill per this many jobs ended, paced by progress, not time
OUTSIDE_KILL_IDLE_SECONDS = 2.0  # and one when nothing ended for this long (workers blocked, say)
# Short job timeouts keep recovery quick: a dead worker's executions lapse after the heartbeat ttl
# (1 s) plus, for a job it held one step ahead, the timeout of the job it was running.
JOB_TIMEOUT = 2
DEADLINE_SECONDS = 300


def enqueue_jobs(connection: redis.Redis) -> list[str]:
    ids = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        datas = [
            Queue.prepare_data(jobs.add, (i, 1), timeout=JOB_TIMEOUT, retry=Retry(3) if i % 3 == 0 else None)
            for i in range(JOBS // len(QUEUES))
        ]
        ids += [job.id for job in queue.enqueue_many(datas)]
    return ids


def terminal_count(connection: redis.Redis) -> int:
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUES:
            pipe.zcard(f"rq:finished:{name}")
            pipe.zcard(f"rq:failed:{name}")
        return sum(pipe.execute())


def test_sigkill_at_any_step_loses_nothing_and_records_once(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    job_ids = enqueue_jobs(connection)
    kill_log = tmp_path / "kills.log"
    rng = random.Random(1716)
    workers: list[subprocess.Popen[bytes]] = []
    outside_kills = spawned = 0
    ended_at_last_kill, last_kill = 0, time.monotonic()
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while (ended := terminal_count(connection)) < len(job_ids):
            assert time.monotonic() < deadline, f"only {ended} of {len(job_ids)} jobs ended"
            for worker in workers:
                # A worker may only die by SIGKILL here: any other exit is a bug to report.
                assert worker.poll() in (None, -signal.SIGKILL), f"a worker exited with {worker.returncode}"
            workers = [w for w in workers if w.poll() is None]
            while len(workers) < WORKERS:
                spawned += 1
                command = [
                    sys.executable,
                    str(FAULT_WORKER),
                    redis_url,
                    ",".join(QUEUES),
                    str(SELF_KILL_PROBABILITY),
                    str(spawned),
                    str(kill_log),
                ]
                workers.append(subprocess.Popen(command))
            due = ended - ended_at_last_kill >= rng.randint(1, 2 * OUTSIDE_KILL_EVERY_JOBS)
            if due or time.monotonic() - last_kill >= OUTSIDE_KILL_IDLE_SECONDS:
                os.kill(rng.choice(workers).pid, signal.SIGKILL)
                outside_kills += 1
                ended_at_last_kill, last_kill = ended, time.monotonic()
            recover_abandoned(connection, QUEUES)
            time.sleep(0.05)  # the pace of the killing, not a synchronisation
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()

    self_kills = Counter(kill_log.read_text().split("\n")[:-1]) if kill_log.exists() else Counter()
    print(
        f"\n{len(job_ids)} jobs, {spawned} workers started, {outside_kills} killed from outside, "
        f"self-kills by step: {dict(self_kills)}"
    )
    assert outside_kills >= 5 and sum(self_kills.values()) >= 5  # the faults really happened

    statuses: Counter[JobStatus | None] = Counter()
    for job in Job.fetch_many(job_ids, connection):
        assert job is not None, "a job hash disappeared"
        status = job.get_status(refresh=False)
        statuses[status] += 1
        finished, failed = f"rq:finished:{job.origin}", f"rq:failed:{job.origin}"
        in_finished = connection.zscore(finished, job.id) is not None
        in_failed = connection.zscore(failed, job.id) is not None
        assert in_finished != in_failed, (
            f"{job.id} is in {int(in_finished) + int(in_failed)} terminal registries"
        )
        assert status == (JobStatus.FINISHED if in_finished else JobStatus.FAILED)
        results = job.results()
        assert len(results) == 1, f"{job.id} has {len(results)} results"
        if status == JobStatus.FAILED:
            assert "AbandonedJobError" in (results[0].exc_string or "")
        else:
            assert results[0].return_value == job.args[0] + 1
    print(f"final statuses: {dict(statuses)}")
    assert statuses[JobStatus.FAILED] < len(job_ids) // 10
    for name in QUEUES:
        assert connection.llen(f"rq:queue:{name}") == 0
        assert connection.zcard(f"rq:wip:{name}") == 0
