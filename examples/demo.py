"""The README's first command: jobs enqueued with jobpool go through a jobpool pool
(``jobpool start -n 2 --burst``) and are read back, with RQ's own client reading the same data.

Uses the Redis at --url (or REDIS_URL); without one it starts a private redis-server of its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import redis
import rq.job

from jobpool import Queue
from jobpool.embedded_redis import EmbeddedRedis
from jobpool.job import Dependency, Job

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import demo_jobs  # noqa: E402  (found through the path set just above)


def enqueue_demo_jobs(connection: redis.Redis) -> list[Job]:
    default, high = Queue("default", connection=connection), Queue("high", connection=connection)
    texts = ["the quick brown fox", "jumps over", "the lazy dog", "jobpool keeps RQ's data"]
    counted = [default.enqueue(demo_jobs.count_words, text) for text in texts]
    summed = default.enqueue(demo_jobs.total, 1, 2, 3, depends_on=Dependency(counted))
    urgent = high.enqueue(demo_jobs.total, 40, 2, description="urgent sum")
    broken = default.enqueue(demo_jobs.divide, 1, 0)
    return [*counted, summed, urgent, broken]


def show(jobs: list[Job], heading: str) -> None:
    print(f"\n{heading}")
    print(f"  {'job':<38} {'queue':<8} {'status':<9} {'result':<8} description")
    for job in jobs:
        status = job.get_status()
        result = job.return_value(refresh=True) if status == "finished" else ""
        shown = status.value if status else "-"
        print(f"  {job.id:<38} {job.origin:<8} {shown:<9} {result!s:<8} {job.description}")


def run_pool(url: str) -> None:
    """Drains the queues, highest priority first, with a pool of two jobpool workers (burst)."""
    command = [
        sys.executable,
        "-m",
        "jobpool",
        "start",
        "-n",
        "2",
        "--burst",
        "-u",
        url,
        "--path",
        str(HERE),
        "--log-level",
        "WARNING",
        "high",
        "default",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the pool failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    elapsed = time.perf_counter() - started
    print(f"\n`jobpool start -n 2 --burst high default` drained the queues in {elapsed:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("REDIS_URL"), help="Redis URL (default: a private server)"
    )
    url = parser.parse_args().url
    with ExitStack() as stack:
        if url is None:
            url = stack.enter_context(EmbeddedRedis()).url
            print(f"started a private redis-server at {url}")
        connection = stack.enter_context(redis.Redis.from_url(url))
        jobs = enqueue_demo_jobs(connection)
        show(jobs, "enqueued with jobpool:")
        run_pool(url)
        show(jobs, "after the pool ran:")
        broken = jobs[-1]
        reason = (broken.exc_info or "").strip().splitlines()[-1]
        in_registry = broken.id in Queue("default", connection=connection).failed_job_registry
        print(f"\nfailed job {broken.id} is in the failed registry: {in_registry}")
        print(f"  reason: {reason}")
        print(f"  meta saved from inside a job: {jobs[0].get_meta()}")
        theirs = rq.job.Job.fetch(jobs[5].id, connection=connection)
        print(f"RQ reads the same data: rq.job.Job.fetch(...).return_value() == {theirs.return_value()}")


if __name__ == "__main__":
    main()
