"""A jobpool Worker in its own process, for tests that signal or kill it.

Usage: python tests/support/worker_process.py URL QUEUE[,QUEUE...]
       [--burst] [--max-jobs N] [--heartbeat-ttl S] [--simple]
(``--simple``: a SimpleWorker, which runs jobs in its own process; else a Worker, which forks).
Prints "ready" once registered, so tests wait on output, not on time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent.parent))  # tests/: the job modules

from jobpool import SimpleWorker, Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queues")
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--max-jobs", type=int)
    parser.add_argument("--heartbeat-ttl", type=int, default=0)
    parser.add_argument("--name")
    parser.add_argument("--simple", action="store_true")
    options = parser.parse_args()
    connection = redis.Redis.from_url(options.url)
    worker = (SimpleWorker if options.simple else Worker)(
        options.queues.split(","),
        connection=connection,
        heartbeat_ttl=options.heartbeat_ttl,
        name=options.name,
    )
    print("ready", flush=True)
    worker.work(burst=options.burst, max_jobs=options.max_jobs)


if __name__ == "__main__":
    main()
