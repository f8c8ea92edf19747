"""Logs that say why: ``jobpool start``'s banner, a job's line (queue, function, id, outcome,
duration), a failure's reason (WARNING) and traceback (ERROR), a job that cannot be loaded, a
burst's summary, and ``--log-format json``; each read from a real pool's stderr."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import rq
from rq.worker import SimpleWorker

import jobs
from conftest import wait_for
from jobpool import Queue, Retry, __version__
from jobpool.job import Job
from jobpool.job_log import exception_summary
from jobpool.json_lines import MAX_LINE_BYTES, JsonFormatter
from jobpool.log_lines import PIPE_BUF, BatchingHandler, LineFormatter, job_record
from jobpool.pool.pool_banner import redis_address
from jobpool.registry import FailedJobRegistry, FinishedJobRegistry
from support.log_records import Record, records
from support.pool_process import Pool

JOB_KEYS = {"job_id", "queue", "func", "outcome", "duration_ms", "worker", "exc_type"}
WORKER = r"testpool\.\d+\.\d+"


def burst(pool: Callable[..., Pool], *args: str) -> str:
    """Runs ``jobpool start --burst ARGS`` to its end; its log."""
    running = pool("--burst", *args)
    assert running.wait(timeout=90) == 0, running.log.read_text()
    return running.log.read_text()


def of_job(logged: list[Record], job_id: str) -> list[Record]:
    return [record for record in logged if f"({job_id})" in record.message]


# ---- the banner ---------------------------------------------------------------------------------


@pytest.fixture
def user_url(connection: redis.Redis, redis_url: str) -> Iterator[str]:
    """The test's Redis, as a user with a password (an ACL user, removed at the end)."""
    connection.execute_command("ACL", "SETUSER", "logs-test", "on", ">s3cret-pw", "~*", "&*", "+@all")
    parts = urllib.parse.urlsplit(redis_url)
    yield parts._replace(netloc=f"logs-test:s3cret-pw@{parts.hostname}:{parts.port}").geturl()
    connection.execute_command("ACL", "DELUSER", "logs-test")


def test_the_banner_says_what_the_pool_is_without_the_password(
    user_url: str, pool_at: Callable[..., Pool]
) -> None:
    running = pool_at(user_url, "--burst", "-n", "2", "--prefetch", "4", "high", "low")
    assert running.wait(timeout=60) == 0
    log = running.log.read_text()
    assert "s3cret-pw" not in log
    banner = records(log)[0]
    host = urllib.parse.urlsplit(user_url).netloc.split("@")[1]
    assert (banner.logger, banner.level) == ("jobpool.supervisor", "INFO")
    assert banner.message == (
        f"jobpool {__version__} starting pool testpool: 2 workers on high, low, "
        f"Redis redis://logs-test:***@{host}/0, key prefix rq, prefetch 4, burst"
    )


def test_a_password_in_the_query_is_hidden_too() -> None:
    assert redis_address("redis://h:1/0?password=pw&db=2") == "redis://h:1/0?password=***&db=2"
    assert redis_address("rediss://:pw@h:1/3") == "rediss://:***@h:1/3"
    assert redis_address("unix:///run/redis.sock?db=1") == "unix:///run/redis.sock?db=1"


# ---- a job's lines --------------------------------------------------------------------------------


def test_a_jobs_line_has_queue_function_id_outcome_and_duration(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 2, 3)
    (line,) = of_job(records(burst(pool, "-n", "1", "q")), job.id)
    assert (line.logger, line.level, line.rest) == ("jobpool.worker", "INFO", [])
    assert re.fullmatch(rf"q: jobs\.add\(2, 3\) \({job.id}\): Job OK in \d+\.\d ms", line.message)


def test_a_failed_job_warns_why_then_logs_its_traceback_as_rq_does(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.fail, "no luck")
    warning, error = of_job(records(burst(pool, "-n", "1", "q")), job.id)
    assert warning.level == "WARNING" and warning.rest == []
    assert re.fullmatch(
        rf"q: jobs\.fail\('no luck'\) \({job.id}\): failed in \d+\.\d ms on {WORKER}: ValueError: no luck",
        warning.message,
    )
    assert error.level == "ERROR"
    assert re.fullmatch(
        rf"q: jobs\.fail\('no luck'\) \({job.id}\): exception raised on {WORKER}", error.message
    )
    # The traceback is the one stored with the job, as RQ's worker logs the one it stores.
    stored = Job.fetch(job.id, connection=connection).exc_info
    assert stored is not None and "\n".join(error.rest) == stored.rstrip("\n")
    assert error.rest[0] == "Traceback (most recent call last):" and error.rest[-1] == "ValueError: no luck"

    rq_job = rq.Queue("rq-q", connection=connection).enqueue(jobs.fail, "no luck")
    rq_log = io.StringIO()
    handler = logging.StreamHandler(rq_log)
    logging.getLogger("rq.worker").addHandler(handler)
    try:
        SimpleWorker([rq.Queue("rq-q", connection=connection)], connection=connection).work(burst=True)
    finally:
        logging.getLogger("rq.worker").removeHandler(handler)
    rq_result = rq_job.latest_result()
    assert rq_result is not None and rq_result.exc_string is not None
    assert rq_result.exc_string.rstrip("\n") in rq_log.getvalue()


def test_a_job_that_cannot_be_loaded_says_why(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    (tmp_path / "broken_jobs.py").write_text("import not_installed_anywhere\n\ndef run():\n    pass\n")
    queue = Queue("q", connection=connection)
    missing_module = queue.enqueue("no_such_module.run")
    missing_function = queue.enqueue("jobs.no_such_function")
    broken_import = queue.enqueue("broken_jobs.run")
    corrupt = queue.enqueue(jobs.add, 1, 2)
    connection.hset(f"rq:job:{corrupt.id}", "data", b"not a pickle")
    logged = records(burst(pool, "-n", "1", "--path", str(tmp_path), "q"))

    def warned(job: Job) -> str:
        warning, error = of_job(logged, job.id)
        assert (warning.level, error.level) == ("WARNING", "ERROR") and error.rest
        return re.sub(rf"^.*? on {WORKER}: ", "", warning.message)

    assert warned(missing_module) == (
        "cannot find the job's function: jobpool.exceptions.FunctionReferenceError: "
        "'no_such_module.run': no importable module in this path"
    )
    assert warned(missing_function) == (
        "cannot find the job's function: jobpool.exceptions.FunctionReferenceError: "
        "'jobs.no_such_function': module 'jobs' has no 'no_such_function'"
    )
    assert warned(broken_import) == (
        "cannot import the job's function: ModuleNotFoundError: No module named 'not_installed_anywhere'"
    )
    assert warned(corrupt).startswith(
        f"cannot read the job: jobpool.exceptions.DeserializationError: Job {corrupt.id}: its data cannot "
        "be decoded"
    )


# ---- a burst's summary ----------------------------------------------------------------------------


def test_a_burst_ends_with_a_summary_whose_counts_match(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    queue = Queue("q", connection=connection)
    for n in range(30):
        queue.enqueue(jobs.add, n, 1)
    for _ in range(4):
        queue.enqueue(jobs.fail, "boom")
    for _ in range(2):
        queue.enqueue(jobs.fail, "again", retry=Retry(max=1))  # fails, is retried, fails
    summary = records(burst(pool, "-n", "2", "q"))[-1]
    match = re.fullmatch(
        r"burst done: (\d+) jobs in (\d+\.\d\d) s \((\d+\.\d) jobs/s\): "
        r"(\d+) finished, (\d+) failed, (\d+) retried, (\d+) stopped",
        summary.message,
    )
    assert match and summary.level == "INFO", summary
    jobs_done, elapsed, rate, finished, failed, retried, stopped = (float(g) for g in match.groups())
    assert (jobs_done, finished, failed, retried, stopped) == (38, 30, 6, 2, 0)
    assert finished == FinishedJobRegistry("q", connection=connection).count
    assert failed == FailedJobRegistry("q", connection=connection).count
    # elapsed is rounded to 10 ms, rate to 0.1 job/s
    assert jobs_done / (elapsed + 0.005) - 0.05 <= rate <= jobs_done / max(elapsed - 0.005, 1e-3) + 0.05


def test_a_burst_summary_counts_the_job_of_a_worker_that_died(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    queue = Queue("q", connection=connection)
    killer = queue.enqueue(jobs.kill_own_process)
    for n in range(5):
        queue.enqueue(jobs.add, n, 1)
    logged = records(burst(pool, "-n", "1", "q"))
    (died,) = [record for record in logged if f"died running {killer.id}" in record.message]
    assert died.level == "WARNING"
    reason = "Work-horse terminated unexpectedly; waitpid returned 9 (signal 9)"
    assert died.message.endswith(f"(failed): {reason}")
    assert logged[-1].message.endswith(": 5 finished, 1 failed, 0 retried, 0 stopped")


def test_a_pool_that_is_not_a_burst_one_logs_no_summary(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 1)
    running = pool("-n", "1", "q")
    running.wait_for_message("READY=1")
    wait_for(lambda: job.get_status() == "finished")
    running.process.terminate()
    assert running.wait() == 0
    messages = [record.message for record in records(running.log.read_text())]
    assert any(f"({job.id}): Job OK" in message for message in messages)
    assert not any(message.startswith("burst done") for message in messages)


# ---- JSON ------------------------------------------------------------------------------------------


def test_json_lines_parse_with_the_job_fields_and_never_interleave(
    connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    queue = Queue("q", connection=connection)
    # Each takes a moment: no worker drains the queue before the others have started.
    quick = [queue.enqueue(jobs.sleep_for, 0.0005) for _ in range(600)]
    failing = [queue.enqueue(jobs.fail, "boom " * 2000) for _ in range(5)]  # a traceback over PIPE_BUF
    lines = burst(pool, "-n", "3", "--log-format", "json", "q").splitlines()
    entries = [json.loads(line) for line in lines]  # a line cut into by another would not parse
    assert all(len(line.encode()) <= MAX_LINE_BYTES for line in lines)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)

    banner = entries[0]
    assert (banner["version"], banner["pool"], banner["queues"], banner["workers"]) == (
        __version__,
        "testpool",
        ["q"],
        3,
    )
    by_job: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        if "job_id" in entry:
            assert entry.keys() >= JOB_KEYS, entry
            by_job.setdefault(str(entry["job_id"]), []).append(entry)
    for job in quick:
        (line,) = by_job[job.id]
        assert (line["level"], line["queue"], line["func"], line["outcome"], line["exc_type"]) == (
            "INFO",
            "q",
            "jobs.sleep_for",
            "finished",
            None,
        )
        assert isinstance(line["duration_ms"], float) and re.fullmatch(WORKER, str(line["worker"]))
    for job in failing:
        warning, error = by_job[job.id]
        assert (warning["level"], warning["outcome"], warning["exc_type"]) == (
            "WARNING",
            "failed",
            "ValueError",
        )
        assert error["level"] == "ERROR" and str(error["traceback"]).endswith("boom ")
    assert len({entry["worker"] for entry in entries if "worker" in entry}) > 1, "several workers ran jobs"
    summary = entries[-1]
    assert (summary["jobs"], summary["finished"], summary["failed"]) == (605, 600, 5)


# ---- the pieces ------------------------------------------------------------------------------------


def test_an_exceptions_type_and_message_are_read_from_its_traceback() -> None:
    def raised(error: BaseException) -> str:
        import traceback

        try:
            try:
                raise KeyError("first")
            except KeyError:
                raise error from None
        except BaseException as caught:
            return "".join(traceback.format_exception(caught))

    assert exception_summary(raised(ValueError("bad\nsecond line"))) == ("ValueError", "bad")
    assert exception_summary(raised(ValueError())) == ("ValueError", "")
    assert exception_summary(raised(rq.exceptions.NoSuchJobError("gone"))) == (
        "rq.exceptions.NoSuchJobError",
        "gone",
    )
    assert exception_summary("Job stopped by user: stop-job command\n") == (
        None,
        "Job stopped by user: stop-job command",
    )


def test_a_record_longer_than_pipe_buf_goes_out_in_pieces_of_whole_lines() -> None:
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    handler = BatchingHandler()
    handler.setStream(Stream())
    handler.setFormatter(LineFormatter())
    logger = logging.Logger("jobpool.test")
    logger.addHandler(handler)
    traceback = "Traceback (most recent call last):\n" + "".join(f"  line {n:05d}\n" for n in range(2000))
    fields = ("id", "q", None, "failed", 1.0, "w", "ValueError")
    job_record(logger, job_record, logging.ERROR, fields, "job %s", "id", traceback=traceback)
    assert len(writes) > 1 and all(len(write) <= PIPE_BUF and write.endswith("\n") for write in writes)
    assert "".join(writes).splitlines()[1:] == traceback.splitlines()


def test_a_json_line_writes_what_json_has_no_type_for_as_text() -> None:
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "path": Path("/srv/app")})
    assert json.loads(JsonFormatter().format(record))["path"] == "/srv/app"


def test_a_json_line_over_pipe_buf_keeps_the_end_of_its_traceback() -> None:
    record = logging.makeLogRecord({"msg": "job failed", "levelno": logging.ERROR, "levelname": "ERROR"})
    record.exc_text = "Traceback (most recent call last):\n" + "  frame\n" * 2000 + "ValueError: boom"
    line = JsonFormatter().format(record)
    assert len(line) <= MAX_LINE_BYTES
    entry = json.loads(line)
    assert entry["traceback"].startswith("[...]") and entry["traceback"].endswith("ValueError: boom")
