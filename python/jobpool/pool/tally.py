"""What a pool counts of the jobs its workers ran and the ones its supervisor recorded itself:
to its metrics (``--metrics-port``) and its burst's summary (``--burst``), whichever are on."""

from __future__ import annotations

from .burst_summary import BurstSummary
from .pool_metrics import PoolMetrics


class Tally:
    def __init__(self, metrics: PoolMetrics | None, summary: BurstSummary | None) -> None:
        self.metrics = metrics
        self.summary = summary

    def ended(self, queue: str, recorded: str, seconds: float) -> None:
        """A job a worker ran ``seconds``, recorded as ``recorded``."""
        if self.metrics is not None:
            self.metrics.ended(queue, recorded, seconds)
        if self.summary is not None:
            self.summary.recorded(recorded)

    def recorded(self, queue: str, recorded: str) -> None:
        """A job the supervisor recorded itself (a dead worker's; one stopped before it began)."""
        if self.metrics is not None:
            self.metrics.recorded(queue, recorded)
        if self.summary is not None:
            self.summary.recorded(recorded)
