"""A jobpool Worker that SIGKILLs itself at random points of its take/finish cycle.

Usage: python tests/support/fault_worker.py URL QUEUES KILL_PROBABILITY SEED KILL_LOG
Each hook kills the process with KILL_PROBABILITY, after appending the hook's name to KILL_LOG.
The hooks sit at the edges of the calls into the Rust core: before a take and after its reply,
between a job and its record, after a record's reply (which may carry the next job), with a
deferred step in flight (while the next job runs), and before and after collecting it.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).parent.parent))  # tests/: the job modules

from jobpool import SimpleWorker
from jobpool._native import TakenJob, Takes
from jobpool.worker import Performed


class FaultyWorker(SimpleWorker):
    def __init__(self, *args: Any, probability: float, seed: int, kill_log: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.random = random.Random(seed)
        self.probability = probability
        self.kill_log = kill_log

    def maybe_die(self, point: str) -> None:
        if self.random.random() < self.probability:
            with open(self.kill_log, "a") as log:
                log.write(point + "\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def _take(self, wait: float | None) -> TakenJob | None:
        self.maybe_die("before a take")
        taken = super()._take(wait)
        self.maybe_die("after a take's reply")
        return taken

    def _step(
        self,
        recorded: list[Performed],
        takes: Takes | None,
        running: bool = False,
        defer: bool = False,
    ) -> list[TakenJob]:
        self.maybe_die("between a job and its record")
        taken = super()._step(recorded, takes, running, defer)
        self.maybe_die("with a step in flight" if defer else "after a record's reply")
        return taken

    def _collect(self, recorded: list[Performed]) -> list[TakenJob]:
        self.maybe_die("before collecting a step")
        taken = super()._collect(recorded)
        self.maybe_die("after collecting a step")
        return taken


def main() -> None:
    url, queues, probability, seed, kill_log = sys.argv[1:6]
    worker = FaultyWorker(
        queues.split(","),
        connection=redis.Redis.from_url(url),
        heartbeat_ttl=1,
        probability=float(probability),
        seed=int(seed),
        kill_log=kill_log,
    )
    worker.work()


if __name__ == "__main__":
    main()
