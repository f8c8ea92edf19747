"""The cost of a worker's line for a job, the path a no-op job takes at INFO (a tracked target:
about 2 µs of a no-op job's 120 µs of worker CPU).

``BaseWorker._log_record`` for a job that succeeded, through the pool's own logging
(``log_setup.configure``) to a line-buffered file, LINES lines in steps of 16 (``written_together``,
as a worker's step records a batch); the CPU time a line, the median of RUNS. ``--failed`` times a
failed job's lines instead (a WARNING line and its traceback at ERROR).

    PYTHONPATH=python python bench/log_line.py [--format text|json] [--failed]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from jobpool import log_lines, log_setup
from jobpool.job_runner import Outcome
from jobpool.result_encoding import format_exception
from jobpool.worker import BaseWorker

LINES = 100_000
STEP = 16
RUNS = 9


class Taken:
    """What ``_log_record`` reads of a taken job."""

    def __init__(self) -> None:
        self.queue = "default"
        self.job_id = "3b5a5c55-0c9a-4d6b-8d5e-5e0b0f3b9d7a"
        self.execution_id = "0" * 32
        self.fields = {"description": b"workload.noop()"}


class Logging:
    """What ``_log_record`` reads of its worker."""

    name = "bench.0.1"
    _log_record = BaseWorker._log_record


def failed_outcome() -> Outcome:
    try:
        raise ValueError("boom")
    except ValueError as error:
        return Outcome(False, reason=format_exception(error), working_seconds=0.00004, func_name="noop")


def microseconds_a_line(path: Path, log_format: str, failed: bool, lines: int) -> float:
    root = logging.getLogger()
    root.handlers.clear()
    log_setup.configure("INFO", log_format)
    handler: Any = root.handlers[0]
    with path.open("w", buffering=1) as stream:
        handler.setStream(stream)
        worker: Any = Logging()
        outcome = failed_outcome() if failed else Outcome(True, working_seconds=0.00004, func_name="noop")
        performed = (Taken(), outcome)
        recorded = "failed" if failed else "finished"
        started = time.process_time()
        for _ in range(lines // STEP):
            with log_lines.written_together():
                for _ in range(STEP):
                    worker._log_record(performed, recorded)
        return (time.process_time() - started) / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="text", choices=log_setup.LOG_FORMATS)
    parser.add_argument("--failed", action="store_true", help="a failed job's lines")
    options = parser.parse_args()
    lines = LINES // 10 if options.failed else LINES
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pool.log"
        runs = [microseconds_a_line(path, options.format, options.failed, lines) for _ in range(RUNS)]
    what = f"{options.format}, {'failed' if options.failed else 'finished'}"
    print(f"{what}: median {statistics.median(runs):.2f} µs a job (min {min(runs):.2f}, {RUNS} runs)")


if __name__ == "__main__":
    main()
