"""A worker in its own process, RQ's or jobpool's, so a test can send it commands and compare.

Usage: python tests/support/parity_worker.py KIND URL QUEUE[,QUEUE...] NAME [--burst] [--with-scheduler]
KIND is ``rq`` (RQ's forking Worker), ``rq-simple`` (RQ's SimpleWorker), ``jobpool`` (a
standalone jobpool.Worker, which forks too) or ``jobpool-simple`` (jobpool's SimpleWorker).
Prints ``returned <what work() returned>`` as it ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent.parent))  # tests/: the job modules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["rq", "rq-simple", "jobpool", "jobpool-simple"])
    parser.add_argument("url")
    parser.add_argument("queues")
    parser.add_argument("name")
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--with-scheduler", action="store_true")
    options = parser.parse_args()
    connection = redis.Redis.from_url(options.url)
    queues = options.queues.split(",")
    if options.kind.startswith("jobpool"):
        import jobpool

        jobpool_class = jobpool.Worker if options.kind == "jobpool" else jobpool.SimpleWorker
        returned = jobpool_class(queues, connection=connection, name=options.name).work(burst=options.burst)
    else:
        import rq
        import rq.worker

        worker_class = rq.Worker if options.kind == "rq" else rq.worker.SimpleWorker
        worker = worker_class(
            [rq.Queue(q, connection=connection) for q in queues], connection=connection, name=options.name
        )
        returned = worker.work(
            burst=options.burst, logging_level="WARNING", with_scheduler=options.with_scheduler
        )
    print(f"returned {returned}", flush=True)


if __name__ == "__main__":
    main()
