"""The pool's log lines: one whole line per job, whatever the batching, never two workers'
lines run together; and the batching handler's rule (a block's lines in one write, a warning at
once, in order), which the pool test shows end to end."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator

import pytest
import redis

import jobs
from jobpool import Queue
from jobpool.log_lines import BatchingHandler, LineFormatter, job_line, written_together
from support.log_records import records
from support.pool_process import Pool

FIELDS = ("id-1", "q", "jobs.add", "finished", 0.25, "pool.0.1", None)
LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} jobpool\.[a-z_]+ (DEBUG|INFO|WARNING|ERROR) .+")


def test_a_pool_logs_one_whole_line_per_job(connection: redis.Redis, pool: Callable[..., Pool]) -> None:
    queue = Queue("q", connection=connection)
    quick = [queue.enqueue(jobs.add, n, 1) for n in range(400)]
    failing = [queue.enqueue(jobs.fail, "boom") for _ in range(3)]
    running = pool("-n", "2", "--burst", "q")
    assert running.wait(timeout=60) == 0
    logged = records(running.log.read_text())
    # Only a failed job's traceback follows its line, whole: no other worker's line cuts into it.
    for record in logged:
        if record.rest:
            assert record.level == "ERROR", record
            assert record.rest[0] == "Traceback (most recent call last):", record
            assert record.rest[-1] == "ValueError: boom", record
    messages = [record.message for record in logged]
    for job in quick:
        assert sum(f"({job.id}): Job OK in " in message for message in messages) == 1, job.id
    for job in failing:
        assert sum(f"({job.id}): failed in " in message for message in messages) == 1, job.id


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def handled() -> Iterator[tuple[logging.Logger, CountingStream]]:
    stream = CountingStream()
    handler = BatchingHandler()
    handler.setStream(stream)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield logging.getLogger("jobpool.worker"), stream
    finally:
        root.handlers[:], root.level = saved, level


def test_a_blocks_lines_go_out_in_one_write_and_a_warning_at_once(
    handled: tuple[logging.Logger, CountingStream],
) -> None:
    logger, stream = handled
    with written_together():
        for n in range(16):
            job_line(
                logger, test_a_blocks_lines_go_out_in_one_write_and_a_warning_at_once, FIELDS, "job %d", n
            )
        assert stream.writes == 0
    assert stream.writes == 1
    with written_together():
        job_line(logger, job_line, FIELDS, "before")
        logger.warning("a warning")
        assert stream.writes == 2, "the warning, with the line kept before it"
        job_line(logger, job_line, FIELDS, "after")
    assert stream.writes == 3
    logger.info("alone")
    assert stream.writes == 4
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 3)[3] for line in lines[-4:]] == [
        "INFO before",
        "WARNING a warning",
        "INFO after",
        "INFO alone",
    ]
    assert all(LINE.fullmatch(line) for line in lines)


def test_a_job_line_names_its_caller(handled: tuple[logging.Logger, CountingStream]) -> None:
    logger, _ = handled
    records: list[logging.LogRecord] = []
    logger.addFilter(lambda record: records.append(record) or True)  # type: ignore[func-returns-value]  # noted, then kept
    try:
        job_line(logger, jobs.add, FIELDS, "%s and %s", 1, 2)
    finally:
        logger.filters.clear()
    (record,) = records
    assert (record.funcName, record.filename, record.getMessage()) == ("add", "jobs.py", "1 and 2")


def test_under_the_pools_own_logging_a_job_line_reads_as_a_records(
    handled: tuple[logging.Logger, CountingStream],
) -> None:
    logger, stream = handled
    job_line(
        logger, job_line, FIELDS, "%s: %s (%s): %s in %.1f ms", "q", "jobs.add(1, 2)", "id-1", "Job OK", 0.25
    )
    logger.info("%s: %s (%s): %s in %.1f ms", "q", "jobs.add(1, 2)", "id-1", "Job OK", 0.25)
    direct, through_a_record = stream.getvalue().splitlines()
    assert direct.split(" ", 2)[2] == through_a_record.split(" ", 2)[2]
    assert direct.endswith("jobpool.worker INFO q: jobs.add(1, 2) (id-1): Job OK in 0.2 ms")
    assert LINE.fullmatch(direct) and direct[:19] == through_a_record[:19]


def test_a_filter_on_the_way_gets_the_job_lines_record(
    handled: tuple[logging.Logger, CountingStream],
) -> None:
    logger, stream = handled
    seen: list[str] = []
    logging.getLogger().handlers[0].addFilter(lambda record: seen.append(record.getMessage()) or True)  # type: ignore[func-returns-value]  # noted, then kept
    job_line(logger, job_line, FIELDS, "%s done", "job-1")
    assert seen == ["job-1 done"] and stream.getvalue().endswith("INFO job-1 done\n")
