"""The benchmark's jobs as Dramatiq actors, for ``dramatiq dramatiq_workload --processes N``.

The broker is a ``RedisBroker`` on the URL in ``JOBPOOL_BENCH_DRAMATIQ_URL`` (the suite's private
redis-server). Each actor runs the same function as ``workload.WORKLOADS`` (no-op, sleep 1 ms, burn
1 ms), then records when it ended: Dramatiq keeps no end time of its own. The record is one unbuffered
``os.write`` of a fixed-width line (``END_RECORD_BYTES``) to a file of its own process in the directory
``JOBPOOL_BENCH_DRAMATIQ_ENDS``: a system call of a microsecond or two, with no Redis traffic, so it
neither slows a no-op job much nor adds to Redis's CPU per job. Writes under ``O_APPEND`` of a few
bytes are atomic, so the worker threads of a process share the file without a lock.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.workload import WORKLOADS

URL_VARIABLE = "JOBPOOL_BENCH_DRAMATIQ_URL"
ENDS_VARIABLE = "JOBPOOL_BENCH_DRAMATIQ_ENDS"
QUEUE = "bench-dramatiq"
END_RECORD_BYTES = 18
"""``f"{time.time():17.6f}\\n"``: seconds since the epoch, to the microsecond."""

broker = RedisBroker(url=os.environ.get(URL_VARIABLE, "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)

_file_lock = threading.Lock()
_file: tuple[int, int] | None = None
"""(pid, file descriptor) of this process's file of end times, opened at its first job (after the
fork that made the worker process)."""


def _ends_file() -> int:
    global _file
    opened = _file
    if opened is not None and opened[0] == os.getpid():
        return opened[1]
    with _file_lock:
        if _file is None or _file[0] != os.getpid():
            path = Path(os.environ[ENDS_VARIABLE]) / f"{os.getpid()}.ends"
            _file = (os.getpid(), os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        return _file[1]


def _record_end() -> None:
    os.write(_ends_file(), b"%17.6f\n" % time.time())


@dramatiq.actor(queue_name=QUEUE, actor_name="noop")
def noop() -> None:
    WORKLOADS["noop"]()
    _record_end()


@dramatiq.actor(queue_name=QUEUE, actor_name="sleep_1ms")
def sleep_1ms() -> None:
    WORKLOADS["sleep_1ms"]()
    _record_end()


@dramatiq.actor(queue_name=QUEUE, actor_name="burn_1ms")
def burn_1ms() -> None:
    WORKLOADS["burn_1ms"]()
    _record_end()


def end_times(directory: Path) -> list[float]:
    """Every end time recorded in ``directory``, sorted."""
    return sorted(
        float(line) for path in directory.glob("*.ends") for line in path.read_bytes().splitlines() if line
    )


def ended_count(directory: Path) -> int:
    """How many jobs have recorded their end so far (from the files' sizes: cheap to ask often)."""
    return sum(entry.stat().st_size for entry in os.scandir(directory)) // END_RECORD_BYTES
