"""``jobpool info`` as users run it: a subprocess against the test's redis-server, with a real
``jobpool start`` pool (and RQ's workers) running, its output read through real pipes and a
pseudo-terminal, and compared with what ``rq info`` and RQ's API say of the same data."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
import redis
import rq
import rq.registry
import rq.worker

import jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.job import JobStatus, cancel_job
from jobpool.timeutils import utcparse
from support.pool_process import PYTHONPATH, Pool

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}
CLEAR_SCREEN = "\033[2J\033[1;1H"
COUNTS = ("queued", "started", "finished", "failed", "deferred", "scheduled", "canceled")
RQ_QUEUE_LINE = re.compile(r"^(\S+)\s+\|█*\s+(\d+), (\d+) executing, (\d+) finished, (\d+) failed$")


def info(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobpool", "info", "-u", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )


def info_json(url: str, *args: str) -> dict[str, Any]:
    shown = info(url, "--json", *args)
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    assert shown.stdout.count("\n") == 1  # one object, on one line
    parsed: dict[str, Any] = json.loads(shown.stdout)
    return parsed


def rq_info(url: str, *args: str) -> list[str]:
    shown = subprocess.run(
        [sys.executable, "-m", "rq.cli", "info", "-u", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()


def popen_info(url: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobpool", "info", "-u", url, *args], text=True, env=ENV, **kwargs
    )


class Lines:
    """The lines a process writes to a pipe, collected by a thread, waited for with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.arrived: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.arrived.put(line) for line in stream], daemon=True).start()  # type: ignore[func-returns-value]  # a list of Nones, unused

    def next(self, deadline_seconds: float = 20.0) -> str:
        try:
            return self.arrived.get(timeout=deadline_seconds)
        except queue.Empty:
            raise AssertionError(f"no line within {deadline_seconds} s") from None


@pytest.fixture
def rq_worker(redis_url: str) -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    """Starts RQ's SimpleWorker processes (``support/parity_worker.py``) on a queue; kills them at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(name: str, queue_name: str) -> subprocess.Popen[str]:
        command = [
            sys.executable,
            str(TESTS / "support" / "parity_worker.py"),
            "rq-simple",
            redis_url,
            queue_name,
            name,
        ]
        started.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, text=True, env=ENV))
        return started[-1]

    yield start
    for process in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
        process.kill()
        process.wait()


def ready(pool: Pool) -> Pool:
    pool.wait_for_message("READY=1")
    return pool


def rq_registry_counts(connection: redis.Redis, name: str) -> dict[str, int]:
    theirs = rq.Queue(name, connection=connection)
    return {
        "queued": theirs.count,
        "started": theirs.started_job_registry.get_job_count(cleanup=False),
        "finished": theirs.finished_job_registry.get_job_count(cleanup=False),
        "failed": theirs.failed_job_registry.get_job_count(cleanup=False),
        "deferred": theirs.deferred_job_registry.get_job_count(cleanup=False),
        "scheduled": theirs.scheduled_job_registry.get_job_count(cleanup=False),
        "canceled": theirs.canceled_job_registry.get_job_count(cleanup=False),
    }


def columns(header: str, names: list[str], right_aligned: set[str]) -> list[slice]:
    """Where each column's cells lie, from the header: a left-aligned column from its header's
    start to the next header's; a right-aligned one from where the previous column stops to its
    header's end."""
    starts = [header.index(name) for name in names]
    spans: list[slice] = []
    for i, name in enumerate(names):
        left = spans[-1].stop if spans else 0
        if name in right_aligned:
            spans.append(slice(left, starts[i] + len(name)))
        else:
            spans.append(slice(starts[i], starts[i + 1] if i + 1 < len(names) else None))
    return spans


def cells(row: str, spans: list[slice], names: list[str], right_aligned: set[str]) -> list[str]:
    """The row's cells, checking each sits flush with its column's edge."""
    found = []
    for span, name in zip(spans, names, strict=True):
        cell = row[span]
        if cell.strip():
            flush_edge = cell[-1] if name in right_aligned else cell[0]
            assert flush_edge != " ", f"{name!r} is out of line in {row!r}"
        found.append(cell.strip())
    return found


def sections(text: str) -> list[list[str]]:
    return [part.splitlines() for part in text.strip("\n").split("\n\n")]


# ---- what it shows ------------------------------------------------------------------------------


def test_json_counts_and_workers_are_what_rq_sees(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    ready(pool("-n", "2", "q"))
    q = Queue("q", connection=connection)
    finished = [q.enqueue(jobs.add, i, 1) for i in range(3)]
    failed = q.enqueue(jobs.fail)
    sleeping = q.enqueue(jobs.sleep_for, 60)
    deferred = q.enqueue(jobs.add, 1, 1, depends_on=sleeping)
    canceled = q.enqueue(jobs.add, 2, 2, depends_on=sleeping)
    cancel_job(canceled.id, connection=connection)
    q.enqueue_in(timedelta(hours=1), jobs.add, 3, 3)
    unserved = Queue("unserved", connection=connection)
    for _ in range(2):
        unserved.enqueue(jobs.add, 1, 1)
    wait_for(lambda: all(job.get_status() == JobStatus.FINISHED for job in finished))
    wait_for(lambda: failed.get_status() == JobStatus.FAILED)
    # RQ reads the sleeping job as its worker's current job once the pool has recorded it.
    wait_for(lambda: any(w.get_current_job_id() == sleeping.id for w in rq.Worker.all(connection=connection)))
    assert deferred.get_status() == JobStatus.DEFERRED

    shown = info_json(redis_url)

    assert shown["suspended"] is False and shown["suspension_ttl"] is None
    by_name = {each["name"]: each for each in shown["queues"]}
    assert sorted(by_name) == ["q", "unserved"]
    expected_q = {
        "queued": 0,
        "started": 1,
        "finished": 3,
        "failed": 1,
        "deferred": 1,
        "scheduled": 1,
        "canceled": 1,
    }
    assert {count: by_name["q"][count] for count in COUNTS} == expected_q
    for name, each in by_name.items():
        assert {count: each[count] for count in COUNTS} == rq_registry_counts(connection, name)
    theirs = {w.name: w for w in rq.Worker.all(connection=connection)}
    assert sorted(by_name["q"]["workers"]) == sorted(theirs) and by_name["unserved"]["workers"] == []
    assert sorted(each["name"] for each in shown["workers"]) == sorted(theirs) and len(theirs) == 2
    for worker in shown["workers"]:
        rq_worker = theirs[worker["name"]]
        assert worker["state"] == rq_worker.get_state()
        assert worker["current_job"] == rq_worker.get_current_job_id()
        assert worker["queues"] == rq_worker.queue_names() == ["q"]
        assert worker["successful_job_count"] == rq_worker.successful_job_count
        assert worker["failed_job_count"] == rq_worker.failed_job_count
        assert worker["total_working_time"] == pytest.approx(rq_worker.total_working_time)
        assert worker["hostname"] == rq_worker.hostname and worker["pid"] == rq_worker.pid
        assert rq_worker.birth_date is not None and rq_worker.last_heartbeat is not None
        assert utcparse(worker["birth_date"]).timestamp() == pytest.approx(rq_worker.birth_date.timestamp())
        assert worker["last_heartbeat"] is not None
    assert sorted(w["state"] for w in shown["workers"]) == ["busy", "idle"]
    assert [w["current_job"] for w in shown["workers"] if w["state"] == "busy"] == [sleeping.id]
    assert sum(w["successful_job_count"] for w in shown["workers"]) == 3
    assert sum(w["failed_job_count"] for w in shown["workers"]) == 1

    # rq info shows the same queued, executing, finished and failed counts.
    rq_rows = [RQ_QUEUE_LINE.match(line) for line in rq_info(redis_url, "-Q")]
    rq_counts = {m[1]: [int(m[i]) for i in range(2, 6)] for m in rq_rows if m}
    assert rq_counts == {
        name: [each["queued"], each["started"], each["finished"], each["failed"]]
        for name, each in by_name.items()
    }


def test_only_queues_only_workers_by_queue_and_queue_names_as_rq_info(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    ready(pool("-n", "2", "q"))
    ready(pool("-n", "1", "--name", "other", "r"))
    done = [Queue(name, connection=connection).enqueue(jobs.add, 1, 1) for name in ("q", "r")]
    wait_for(lambda: all(job.get_status() == JobStatus.FINISHED for job in done))
    wait_for(lambda: {w.get_state() for w in rq.Worker.all(connection=connection)} == {"idle"})

    # --by-queue: rq info's lines, less its summary line ("3 workers, 2 queues").
    ours = info(redis_url, "--only-workers", "--by-queue")
    assert ours.returncode == 0 and ours.stderr == ""
    theirs = rq_info(redis_url, "-W", "-R")
    assert theirs[-1] == "3 workers, 2 queues"
    assert sorted(ours.stdout.splitlines()) == sorted(theirs[:-1])  # rq's queue order is a set's
    assert ours.stdout.splitlines() == [
        "q: testpool.0.1 (idle), testpool.1.2 (idle)",
        "r: other.0.1 (idle)",
    ]

    # Queue names: those queues, and the workers that listen on one of them, as rq info's.
    only_q = info_json(redis_url, "q")
    assert [each["name"] for each in only_q["queues"]] == ["q"]
    rq_names = {w.name for w in rq.Worker.all(queue=rq.Queue("q", connection=connection))}
    assert {w["name"] for w in only_q["workers"]} == rq_names == {"testpool.0.1", "testpool.1.2"}
    named = info(redis_url, "r", "nothing-here")
    table = sections(named.stdout)
    assert [row.split()[0] for row in table[0][1:]] == ["r", "nothing-here"]
    assert [row.split()[0] for row in table[1][1:]] == ["other.0.1"]

    # --only-queues, --only-workers, in text and in JSON; -Q with -W is a usage error.
    queues_only = info(redis_url, "-Q").stdout
    assert len(sections(queues_only)) == 1 and queues_only.startswith("queue ")
    workers_only = info(redis_url, "-W").stdout
    assert len(sections(workers_only)) == 1 and workers_only.startswith("worker ")
    assert workers_only.count("\n") == 4  # the header and three workers
    assert "workers" not in info_json(redis_url, "-Q") and "queues" not in info_json(redis_url, "-W")
    both = info(redis_url, "-Q", "-W")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_columns_are_as_wide_as_the_longest_name(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    long_queue = "reports-for-the-quarterly-board-meeting-" + "x" * 40
    pool_name = "a-pool-whose-name-is-longer-than-forty-characters-by-far"
    ready(pool("-n", "2", "--name", pool_name, "q", long_queue))
    q = Queue("q", connection=connection)
    sleeping = q.enqueue(jobs.sleep_for, 60)
    for _ in range(12):
        Queue(long_queue, connection=connection).enqueue_in(timedelta(hours=1), jobs.add, 1, 1)
    Queue("z", connection=connection).enqueue(jobs.add, 1, 1)
    wait_for(lambda: any(w.get_current_job_id() == sleeping.id for w in rq.Worker.all(connection=connection)))

    shown = info(redis_url)
    assert shown.returncode == 0
    queue_rows, worker_rows = sections(shown.stdout)
    expected = info_json(redis_url)

    names = ["queue", *COUNTS]
    spans = columns(queue_rows[0], names, set(COUNTS))
    assert [cells(row, spans, names, set(COUNTS)) for row in queue_rows[1:]] == [
        [each["name"], *(str(each[count]) for count in COUNTS)] for each in expected["queues"]
    ]
    assert queue_rows[0].index("queued") > len(long_queue)  # sized to the name, not cut

    names = ["worker", "state", "queues", "successful", "failed", "current job"]
    numbers = {"successful", "failed"}
    spans = columns(worker_rows[0], names, numbers)
    assert [cells(row, spans, names, numbers) for row in worker_rows[1:]] == [
        [
            w["name"],
            w["state"],
            ",".join(w["queues"]),
            str(w["successful_job_count"]),
            str(w["failed_job_count"]),
            w["current_job"] or "",
        ]
        for w in expected["workers"]
    ]
    assert sleeping.id in worker_rows[1] + worker_rows[2]
    assert all(row == row.rstrip() for row in queue_rows + worker_rows)


# ---- watching ----------------------------------------------------------------------------------


def test_interval_draws_again_until_interrupted_then_exits_quietly(
    redis_url: str, connection: redis.Redis, pool: Callable[..., Pool]
) -> None:
    ready(pool("-n", "1", "q"))
    Queue("watched", connection=connection).enqueue(jobs.add, 1, 1)  # no worker listens on it
    watching = popen_info(
        redis_url, "--json", "--interval", "0.05", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert watching.stdout is not None and watching.stderr is not None
    lines = Lines(watching.stdout)
    first = json.loads(lines.next())
    assert [each["queued"] for each in first["queues"] if each["name"] == "watched"] == [1]
    Queue("watched", connection=connection).enqueue(jobs.add, 2, 2)
    deadline = time.monotonic() + 20
    while True:  # a later draw shows the new job
        draw = json.loads(lines.next())
        if [each["queued"] for each in draw["queues"] if each["name"] == "watched"] == [2]:
            break
        assert time.monotonic() < deadline, draw
    assert {w["name"] for w in draw["workers"]} == {"testpool.0.1"}
    watching.send_signal(signal.SIGINT)
    assert watching.wait(timeout=20) == 0
    assert watching.stderr.read() == ""

    counted = info(redis_url, "--interval", "0.01", "--count", "3")
    assert counted.returncode == 0 and counted.stderr == ""
    headers = [line for line in counted.stdout.splitlines() if line.startswith("queue ")]
    assert len(headers) == 3 and counted.stdout.count("Updated: ") == 3
    assert "\033" not in counted.stdout  # not a terminal: plain repeated output
    json_counted = info(redis_url, "--json", "-i", "0.01", "--count", "2")
    assert [json.loads(line)["suspended"] for line in json_counted.stdout.splitlines()] == [False, False]


def test_interval_on_a_terminal_clears_the_screen_between_draws(
    redis_url: str, connection: redis.Redis
) -> None:
    Queue("q", connection=connection).enqueue(jobs.add, 1, 1)
    terminal, child_side = pty.openpty()
    watching = popen_info(redis_url, "--interval", "0.05", stdout=child_side, stderr=subprocess.PIPE)
    os.close(child_side)
    assert watching.stderr is not None
    seen = ""
    interrupted = False
    deadline = time.monotonic() + 30
    # Read all it writes until it ends (a full terminal would block it), interrupting it once
    # three draws have come, each after a clear.
    while time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.1)[0]:
            try:
                seen += os.read(terminal, 65536).decode()
            except OSError:  # EIO: the process has ended and closed the terminal
                break
        if not interrupted and seen.count(CLEAR_SCREEN) >= 3:
            watching.send_signal(signal.SIGINT)
            interrupted = True
        if interrupted and watching.poll() is not None and not select.select([terminal], [], [], 0)[0]:
            break
    os.close(terminal)
    assert interrupted, seen
    assert watching.wait(timeout=20) == 0
    assert watching.stderr.read() == ""
    draws = seen.split(CLEAR_SCREEN)[1:]
    assert all(draw.lstrip().replace("\r\n", "\n").startswith("queue ") for draw in draws)
    assert "Traceback" not in seen and "KeyboardInterrupt" not in seen


def test_a_reader_that_stops_reading_ends_it_quietly(redis_url: str, connection: redis.Redis) -> None:
    # More output than a pipe holds (64 KiB), so it is still writing when head has gone.
    connection.sadd("rq:queues", *[f"rq:queue:q{i:04d}-{'x' * 80}" for i in range(1500)])
    assert len(info(redis_url).stdout) > 3 * 65536
    piped = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m jobpool info -u {redis_url} | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert piped.returncode == 0 and piped.stderr == ""
    assert piped.stdout.split() == ["queue", *COUNTS]

    # A reader gone before anything is written: the first write finds the pipe closed.
    gone = popen_info(redis_url, "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert gone.stdout is not None and gone.stderr is not None
    gone.stdout.close()
    assert gone.wait(timeout=30) == 0
    assert gone.stderr.read() == ""

    # While watching: the reader closes the pipe after one line; the next write finds it closed.
    watching = popen_info(
        redis_url, "-Q", "--interval", "0.01", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert watching.stdout is not None and watching.stderr is not None
    assert watching.stdout.readline().startswith("queue ")
    watching.stdout.close()
    assert watching.wait(timeout=30) == 0
    assert watching.stderr.read() == ""


# ---- suspension ---------------------------------------------------------------------------------


def test_a_suspension_is_shown_and_suspended_workers_show_so(
    redis_url: str,
    connection: redis.Redis,
    pool: Callable[..., Pool],
    rq_worker: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    ready(pool("-n", "1", "q"))
    assert info_json(redis_url)["suspended"] is False
    assert "SUSPENDED" not in info(redis_url).stdout

    suspend = subprocess.run(
        [sys.executable, "-m", "jobpool", "suspend", "-u", redis_url, "--duration", "300"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert suspend.returncode == 0
    rq_worker("rq-worker", "q")
    # RQ's worker notices the suspension and records itself as suspended.
    wait_for(lambda: connection.hget("rq:worker:rq-worker", "state") == b"suspended")

    shown = info_json(redis_url)
    assert shown["suspended"] is True and 0 < shown["suspension_ttl"] <= 300
    states = {w["name"]: w["state"] for w in shown["workers"]}
    assert states["rq-worker"] == "suspended" and set(states) == {"rq-worker", "testpool.0.1"}
    text = info(redis_url).stdout
    first, *_ = sections(text)
    assert first[0].startswith("SUSPENDED: workers take no new jobs for another ")
    (row,) = [line for line in text.splitlines() if line.startswith("rq-worker ")]
    assert row.split()[1] == "suspended"
    (rq_row,) = [line for line in rq_info(redis_url, "-W") if line.startswith("rq-worker ")]
    assert ": suspended q." in rq_row  # as rq info shows it

    connection.persist("rq:suspended")  # as `jobpool suspend` without --duration leaves it
    assert info_json(redis_url)["suspension_ttl"] is None
    assert "until `jobpool resume`" in info(redis_url).stdout.splitlines()[0]

    resume = subprocess.run(
        [sys.executable, "-m", "jobpool", "resume", "-u", redis_url], capture_output=True, env=ENV
    )
    assert resume.returncode == 0
    shown = info_json(redis_url)
    assert shown["suspended"] is False and shown["suspension_ttl"] is None
    assert "SUSPENDED" not in info(redis_url).stdout
    wait_for(lambda: connection.hget("rq:worker:rq-worker", "state") == b"idle")
