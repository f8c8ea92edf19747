"""``jobpool info``'s output: a snapshot (``info_snapshot``) drawn as tables or as one JSON
object, once or every ``interval`` seconds until interrupted, as ``rq info --interval``.

Ctrl-C ends a watch quietly (status 0), as ``rq info`` does. So does a reader that stops
reading (``jobpool info | head -1``): the output simply ends, with status 0 and nothing on
stderr, as for a reader that read it all, since nothing went wrong that the caller must know.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from .info_snapshot import COUNTS, Snapshot, WorkerSummary, iso, read_snapshot

CLEAR_SCREEN = "\033[2J\033[1;1H"
"""What ``rq info --interval`` writes (click.clear) before each draw on a terminal."""
NO_WORKERS = "\u2013"
"""What ``rq info --by-queue`` shows for a queue no worker listens on (an en dash)."""


@dataclass(frozen=True)
class View:
    """Which parts to show, and how: ``rq info``'s ``--only-queues``, ``--only-workers`` and
    ``--by-queue``, and jobpool's ``--json``."""

    only_queues: bool = False
    only_workers: bool = False
    by_queue: bool = False
    as_json: bool = False


def show(
    connection: Redis, queue_names: list[str], view: View, interval: float | None, count: int | None
) -> int:
    """Draws once, or every ``interval`` seconds (``count`` times, if given) until interrupted;
    returns the exit status."""
    out = sys.stdout
    watching = interval is not None
    clear = watching and not view.as_json and out.isatty()
    draws = 0
    next_draw = time.monotonic()
    try:
        while True:
            frame = draw(read_snapshot(connection, queue_names), view, watching)
            if clear:
                frame = CLEAR_SCREEN + frame
            elif draws and not view.as_json:
                frame = "\n" + frame  # plain repeated output: a blank line between draws
            out.write(frame)
            out.flush()
            draws += 1
            if interval is None or (count is not None and draws >= count):
                return 0
            now = time.monotonic()
            next_draw = max(next_draw + interval, now)  # a slow draw delays the next, no more
            time.sleep(next_draw - now)
    except KeyboardInterrupt:
        if out.isatty():
            out.write("\n")  # the shell's prompt, after the ^C, on a line of its own
        return 0
    except BrokenPipeError:
        _discard_output()
        return 0


def draw(snapshot: Snapshot, view: View, watching: bool) -> str:
    """One draw: a JSON object on one line, or the tables (with the time, when watching)."""
    if view.as_json:
        return json.dumps(as_json(snapshot, view), separators=(",", ":")) + "\n"
    lines = text_lines(snapshot, view)
    if watching:
        lines += ["", f"Updated: {snapshot.taken_at.astimezone():%Y-%m-%d %H:%M:%S}"]
    return "\n".join(lines) + "\n"


# ---- text --------------------------------------------------------------------------------------


def text_lines(snapshot: Snapshot, view: View) -> list[str]:
    sections = []
    if snapshot.suspended:
        sections.append([_suspension_line(snapshot.suspension_ttl)])
    if not view.only_workers:
        sections.append(queue_table(snapshot))
    if not view.only_queues:
        sections.append(workers_by_queue(snapshot) if view.by_queue else worker_table(snapshot.workers))
    lines: list[str] = []
    for section in sections:
        lines += ([""] if lines else []) + section
    return lines


def _suspension_line(ttl: int | None) -> str:
    how_long = f" for another {ttl} s" if ttl is not None else " until `jobpool resume`"
    return f"SUSPENDED: workers take no new jobs{how_long}"


def queue_table(snapshot: Snapshot) -> list[str]:
    """One row a queue: its name, then its counts right-aligned under their headers."""
    rows = [["queue", *COUNTS]]
    rows += [[queue.name, *(str(queue.counts[count]) for count in COUNTS)] for queue in snapshot.queues]
    return _table(rows, right_aligned=set(range(1, len(COUNTS) + 1)))


def worker_table(workers: list[WorkerSummary]) -> list[str]:
    rows = [["worker", "state", "queues", "successful", "failed", "current job"]]
    rows += [
        [
            worker.name,
            worker.state,
            ",".join(worker.queue_names),
            str(worker.successful_job_count),
            str(worker.failed_job_count),
            worker.current_job_id or "",
        ]
        for worker in workers
    ]
    return _table(rows, right_aligned={3, 4})


def workers_by_queue(snapshot: Snapshot) -> list[str]:
    """``rq info --by-queue``'s lines: ``queue: worker (state), ...``, an en dash for none."""
    states = {worker.name: worker.state for worker in snapshot.workers}
    width = max((len(queue.name) for queue in snapshot.queues), default=0) + 1
    lines = []
    for queue in snapshot.queues:
        workers = [f"{name} ({states[name]})" for name in queue.worker_names if name in states]
        lines.append(f"{queue.name + ':':<{width}} {', '.join(workers) or NO_WORKERS}")
    return lines


def _table(rows: list[list[str]], right_aligned: set[int]) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart; no trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


# ---- JSON --------------------------------------------------------------------------------------


def as_json(snapshot: Snapshot, view: View) -> dict[str, Any]:
    """The snapshot as one object: ``queues`` (left out with ``--only-workers``), ``workers``
    (left out with ``--only-queues``), ``suspended`` and ``suspension_ttl``."""
    shown: dict[str, Any] = {
        "time": iso(snapshot.taken_at),
        "suspended": snapshot.suspended,
        "suspension_ttl": snapshot.suspension_ttl,
    }
    if not view.only_workers:
        shown["queues"] = [
            {"name": queue.name, **queue.counts, "workers": queue.worker_names} for queue in snapshot.queues
        ]
    if not view.only_queues:
        shown["workers"] = [_worker_json(worker) for worker in snapshot.workers]
    return shown


def _worker_json(worker: WorkerSummary) -> dict[str, Any]:
    """A worker under the names RQ's ``Worker`` gives these attributes."""
    return {
        "name": worker.name,
        "state": worker.state,
        "current_job": worker.current_job_id,
        "queues": worker.queue_names,
        "successful_job_count": worker.successful_job_count,
        "failed_job_count": worker.failed_job_count,
        "total_working_time": worker.total_working_time,
        "birth_date": iso(worker.birth_date),
        "last_heartbeat": iso(worker.last_heartbeat),
        "hostname": worker.hostname,
        "pid": worker.pid,
    }


def _discard_output() -> None:
    """Points stdout at /dev/null: the reader has gone, and anything still buffered must not
    fail again, noisily, as the interpreter flushes stdout on exit (the remedy Python's
    documentation gives, in its note on SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
