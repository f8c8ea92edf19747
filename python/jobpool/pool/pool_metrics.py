"""What ``jobpool start --metrics-port`` counts, and serves for Prometheus.

The supervisor counts; its workers write nothing of their own. It already reads each worker's
report lines (``pool_worker``): a ``start`` line is a job started, and a worker started with
metrics on adds an ``ended <queue> <recorded> <microseconds>`` line per job recorded (how the step
recorded it, and how long it ran), sent with the reports it writes anyway. The jobs the
supervisor records itself (a dead worker's, one stopped before it began) it counts as it
records them. So a job costs a worker one more short line when metrics are on, and nothing when
they are off; there is no prometheus-client multiprocess directory of per-process files to
write on every job, nor to clean up after each dead worker.

Counting is plain dictionary arithmetic in the supervisor's thread; the HTTP server's thread
reads copies at scrape time (``collect``), through prometheus-client's metric families.
"""

from __future__ import annotations

import bisect
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .pool_worker import RECYCLE_EXIT

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

# The job-duration histogram's upper bounds, in seconds: jobpool runs many sub-millisecond jobs.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 300.0)  # fmt: skip
# How a recorded ending counts: the core's outcome, and the counter it goes to. "retried" and
# "scheduled" are both a failure with retries left; a released, stale, cleared or deleted
# ending is not a job that ended here.
COUNTED = {
    "finished": "finished",
    "failed": "failed",
    "stopped": "stopped",
    "retried": "retried",
    "scheduled": "retried",
}
OUTCOMES = ("finished", "failed", "retried", "stopped")
# The states ``jobpool_workers`` always shows (0 when none): starting (forked, not ready yet),
# idle, busy (owns a job) and suspended (the process is stopped: SIGSTOP, a debugger).
WORKER_STATES = ("starting", "idle", "busy", "suspended")
RESTART_REASONS = ("recycled", "job_timeout", "killed", "crashed", "exited")


def restart_reason(status: int, killed_for_a_job: bool) -> str:
    """Why a worker that exited with ``status`` (``os.waitpid``'s) is replaced: ``recycled``
    (--max-jobs, --max-memory), ``job_timeout`` (hard-killed, its job past its timeout),
    ``killed`` (a signal from outside: an operator, the OOM killer), ``crashed``, or ``exited``
    (cleanly, told to: SIGHUP's replacement, a shutdown command)."""
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return "recycled" if code == RECYCLE_EXIT else "exited" if code == 0 else "crashed"
    if killed_for_a_job:
        return "job_timeout"
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        return "killed"
    return "crashed"


class QueueCounts:
    """One queue's counts: jobs started, jobs ended by outcome, and their durations (a count
    per bucket of DURATION_BUCKETS, not cumulative, then one for +Inf; and their sum)."""

    __slots__ = ("buckets", "ended", "seconds", "started")

    def __init__(self) -> None:
        self.started = 0
        self.ended = dict.fromkeys(OUTCOMES, 0)
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.seconds = 0.0


class PoolMetrics:
    """A pool's counts, and the prometheus-client collector that serves them."""

    def __init__(self, queue_names: list[str], host: str, port: int) -> None:
        self.queue_names = queue_names
        self.host = host
        self.port = port
        self.queues = {name: QueueCounts() for name in queue_names}
        self.restarts: Counter[str] = Counter()  # reason -> workers replaced
        self.redis_errors: Counter[tuple[str, str]] = Counter()  # (process, operation) -> errors
        self.workers_by_state: Callable[[], dict[str, int]] = dict

    def serve(self, workers_by_state: Callable[[], dict[str, int]]) -> None:
        """Serves the metrics from a thread of this process (the supervisor), from now on."""
        from ..metrics_server import serve_in_thread

        self.workers_by_state = workers_by_state
        serve_in_thread(self, self.host, self.port)

    # ---- counting (the supervisor's thread) ---------------------------------------------------

    def _of(self, queue: str) -> QueueCounts:
        counts = self.queues.get(queue)
        if counts is None:  # a queue the pool was not started on: a job moved by hand, say
            counts = self.queues[queue] = QueueCounts()
        return counts

    def started(self, queue: str) -> None:
        self._of(queue).started += 1

    def ended(self, queue: str, recorded: str, seconds: float) -> None:
        """A job that ran ``seconds`` and was recorded as ``recorded`` (the core's outcome)."""
        counted = COUNTED.get(recorded)
        if counted is not None:
            counts = self._of(queue)
            counts.ended[counted] += 1
            counts.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
            counts.seconds += seconds

    def recorded(self, queue: str, recorded: str) -> None:
        """A job the supervisor recorded itself (a dead worker's; one stopped before it began):
        counted by how it ended, with no duration."""
        counted = COUNTED.get(recorded)
        if counted is not None:
            self._of(queue).ended[counted] += 1

    def restarted(self, reason: str) -> None:
        self.restarts[reason] += 1

    def redis_error(self, process: str, operation: str) -> None:
        self.redis_errors[process, operation] += 1

    # ---- serving (the HTTP server's thread) -----------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        # Copies first (each taken whole), while the supervisor's thread counts on.
        queues = sorted(
            (name, counts.started, dict(counts.ended), list(counts.buckets), counts.seconds)
            for name, counts in list(self.queues.items())
        )

        family = CounterMetricFamily("jobpool_jobs_started", "Jobs this pool started", labels=["queue"])
        for name, started, *_ in queues:
            family.add_metric([name], started)
        yield family
        for outcome in OUTCOMES:
            family = CounterMetricFamily(
                f"jobpool_jobs_{outcome}",
                f"Jobs this pool recorded as {outcome}"
                + (
                    " (failures with retries left, queued or scheduled again)" if outcome == "retried" else ""
                ),
                labels=["queue"],
            )
            for name, _, ended, *_ in queues:
                family.add_metric([name], ended[outcome])
            yield family

        histogram = HistogramMetricFamily(
            "jobpool_job_duration_seconds",
            "How long the jobs this pool's workers ran took, recorded as finished, failed, retried "
            "or stopped",
            labels=["queue"],
        )
        bounds = [*(floatToGoString(bound) for bound in DURATION_BUCKETS), "+Inf"]
        for name, _, _, buckets, seconds in queues:
            cumulative, total = [], 0
            for bound, count in zip(bounds, buckets, strict=True):
                total += count
                cumulative.append((bound, float(total)))
            histogram.add_metric([name], cumulative, sum_value=seconds)
        yield histogram

        gauge = GaugeMetricFamily(
            "jobpool_workers", "This pool's worker processes by state", labels=["state"]
        )
        by_state = self.workers_by_state()
        for state in WORKER_STATES:
            gauge.add_metric([state], by_state.get(state, 0))
        yield gauge

        family = CounterMetricFamily(
            "jobpool_worker_restarts",
            "Worker processes replaced, by why the last one ended",
            labels=["reason"],
        )
        restarts = dict(self.restarts)
        for reason in RESTART_REASONS:
            family.add_metric([reason], restarts.get(reason, 0))
        yield family

        family = CounterMetricFamily(
            "jobpool_redis_errors",
            "Redis calls that failed (each is tried again later), by process and operation",
            labels=["process", "operation"],
        )
        for (process, operation), count in sorted(dict(self.redis_errors).items()):
            family.add_metric([process, operation], count)
        yield family
