"""The line a ``jobpool start --burst`` pool logs as it ends: how many jobs its workers ran,
how each was recorded, in how long, at what rate.

The supervisor counts what it already reads: a worker of a burst pool reports each job it
recorded (``ended <queue> <recorded> <microseconds>``, the line its metrics use, see
``pool_metrics``), and the supervisor counts the jobs it records itself (a dead worker's). A pool
that is not a burst one, without metrics, reports nothing more a job.
"""

from __future__ import annotations

import logging
import time

from .pool_metrics import COUNTED, OUTCOMES

logger = logging.getLogger("jobpool.supervisor")


class BurstSummary:
    """Jobs recorded since the pool started, by outcome (``pool_metrics.OUTCOMES``)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counts = dict.fromkeys(OUTCOMES, 0)

    def recorded(self, recorded: str) -> None:
        """A job recorded as ``recorded`` (the core's outcome); one put back, or found recorded
        already, is no job that ended here."""
        counted = COUNTED.get(recorded)
        if counted is not None:
            self.counts[counted] += 1

    def log(self) -> None:
        """Logs the summary at INFO (its counts, elapsed and rate as keys in JSON)."""
        elapsed = time.monotonic() - self.started
        jobs = sum(self.counts.values())
        rate = jobs / elapsed if elapsed > 0 else 0.0
        logger.info(
            "burst done: %d jobs in %.2f s (%.1f jobs/s): %s",
            jobs,
            elapsed,
            rate,
            ", ".join(f"{count} {outcome}" for outcome, count in self.counts.items()),
            extra={"jobs": jobs, **self.counts, "elapsed_s": round(elapsed, 3), "jobs_per_s": round(rate, 1)},
        )
