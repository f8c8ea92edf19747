"""Redis CPU per no-op job of two (or more) jobpool source trees, run alternately on this machine.

Usage: python bench/redis_cost_ab.py NAME=TREE [NAME=TREE ...] [--jobs N] [--rounds R]

Each round, for each tree in turn: a private redis-server, N ``jobs.add`` jobs enqueued, a burst pool
of 2 (``jobpool start --burst -n 2``, the tree's ``python/`` and ``tests/`` on PYTHONPATH) drains
them; Redis's ``INFO cpu`` and ``INFO commandstats`` deltas over the drain, divided by N. Alternating
the trees round by round spreads a busy machine's noise over all of them; the medians are printed.
For comparing a change to the Lua scripts (Redis's cost does not depend on the extension's build).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import redis

from jobpool.embedded_redis import EmbeddedRedis

ENQUEUE = """
import sys, redis, jobs
from jobpool import Queue
queue = Queue("q", connection=redis.Redis(port=int(sys.argv[1])))
for _ in range(0, int(sys.argv[2]), 1000):
    queue.enqueue_many([Queue.prepare_data(jobs.add, (1, 2)) for _ in range(1000)])
"""


def _redis_cpu(connection: redis.Redis) -> float:
    info = connection.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _redis_calls(connection: redis.Redis) -> int:
    return sum(int(stats["calls"]) for stats in connection.info("commandstats").values())


def drain_once(tree: str, jobs: int) -> tuple[float, float]:
    """(Redis CPU µs, Redis commands) per job of one drain by ``tree``'s pool."""
    with EmbeddedRedis() as server:
        connection = redis.Redis.from_url(server.url)
        env = {**os.environ, "PYTHONPATH": f"{tree}/python{os.pathsep}{tree}/tests"}
        subprocess.run([sys.executable, "-c", ENQUEUE, str(server.port), str(jobs)], env=env, check=True)
        cpu, calls = _redis_cpu(connection), _redis_calls(connection)
        pool = [sys.executable, "-m", "jobpool", "start", "--burst", "-n", "2", "--log-level", "WARNING"]
        pool += ["--path", f"{tree}/tests", "-u", server.url, "q"]
        subprocess.run(pool, env=env, check=True)
        if connection.llen("rq:queue:q"):
            raise RuntimeError(f"{tree}: the pool left jobs in the queue")
        return (_redis_cpu(connection) - cpu) / jobs * 1e6, (_redis_calls(connection) - calls) / jobs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", nargs="+", metavar="NAME=TREE")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    trees = dict(each.split("=", 1) for each in options.trees)
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for round_number in range(options.rounds):
        for name, tree in trees.items():
            seen[name].append(drain_once(tree, options.jobs))
            micros, commands = seen[name][-1]
            print(
                f"round {round_number + 1} {name}: {micros:.1f} µs, {commands:.1f} commands a job", flush=True
            )
    for name, runs in seen.items():
        micros = statistics.median(run[0] for run in runs)
        commands = statistics.median(run[1] for run in runs)
        print(
            f"{name}: median {micros:.1f} µs of Redis CPU, {commands:.1f} commands a job ({len(runs)} runs)"
        )


if __name__ == "__main__":
    main()
