"""The jobs the benchmarks run, importable by name (``workload.noop``) from bench/ on the path.

Three workloads show the two things a queue costs: ``noop`` only the queue's own overhead per job;
``sleep_1ms`` (waiting, as on I/O) how well a pool overlaps jobs; ``burn_1ms`` (CPU) how it scales
on the machine's CPUs.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def noop() -> None:
    """A job that does nothing, so a benchmark measures only the queue's cost."""


def sleep_1ms() -> None:
    """A job that waits 1 ms, as a job waiting on I/O would."""
    time.sleep(0.001)


def burn_1ms() -> None:
    """A job that spends 1 ms of this process's CPU time."""
    until = time.process_time() + 0.001
    while time.process_time() < until:
        pass


WORKLOADS: dict[str, Callable[[], None]] = {"noop": noop, "sleep_1ms": sleep_1ms, "burn_1ms": burn_1ms}
"""By the name reports use."""
