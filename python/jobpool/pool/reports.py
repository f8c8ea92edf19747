"""The ledger of what each pool worker owns: the lines a worker reports to its supervisor, how the
supervisor reads them back, and what it keeps of them.

A worker writes one line to its report pipe for each change of what it owns (see
``pool_worker.PoolHooks``); each report here is a typed value that formats its own line
(``line()``), and ``read_report`` reads a line back into one. Both sides use these and nothing
else, so the wire format is said once:

- ``ready``: registered, about to take its first job;
- ``own <job_id> <execution_id> <queue>``: taken, about to start;
- ``start <execution_id> <deadline> <started_at>``: running until the epoch ``deadline`` (0 for no
  limit, see ``job_deadline``); the job that ran before it has ended, its record in flight;
- ``free <execution_id>``: recorded, or put back;
- ``ended <queue> <recorded> <microseconds>`` and ``redis-error``: with metrics on, or in a burst
  (``MeteredPoolWorker``): how a job's ending was recorded and how long it ran; a failed Redis call.

(The reports are plain slotted dataclasses, not frozen ones: a worker makes three a job.)

The supervisor keeps, per worker, a ``Reported``: whether it is ready, and its taken, running and
ended executions (``Owned``). A job taken ahead is not here until it starts: it is held in the
pool's shared ``Ledger`` (``rust/ledger.rs``), where the supervisor can take it back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..work_horse import HARD_KILL_GRACE_SECONDS


def job_deadline(timeout: int, started_at: float) -> float:
    """The epoch at which a job that started at ``started_at`` overruns ``timeout`` (seconds, as
    ``job_runner.taken_timeout`` reads it), 0 when it has no limit."""
    return started_at + timeout if timeout > 0 else 0


@dataclass
class Owned:
    """An execution a worker owns: taken, then running, then ended (its record in flight) until
    the worker says it is recorded. A job taken ahead is not here until it starts: it is held
    in the ledger."""

    job_id: str
    execution_id: str
    queue: str
    state: str = "taken"  # "taken", "running" or "ended"
    deadline: float = 0.0  # while running: the epoch its timeout ends, 0 for none
    started_at: float = field(default_factory=time.time)  # the epoch it started (or was taken)
    recorded: bool = False  # whether a heartbeat has written RQ's records of it

    def overran(self, now: float) -> bool:
        """Whether it runs past its deadline and the grace after it: it never returned to Python
        to time out (stuck in C code), and its worker is to be killed."""
        return (
            self.state == "running" and bool(self.deadline) and now > self.deadline + HARD_KILL_GRACE_SECONDS
        )


@dataclass(slots=True)
class Ready:
    def line(self) -> str:
        return "ready"


@dataclass(slots=True)
class Own:
    job_id: str
    execution_id: str
    queue: str

    def line(self) -> str:
        return f"own {self.job_id} {self.execution_id} {self.queue}"


@dataclass(slots=True)
class Start:
    execution_id: str
    deadline: float  # see job_deadline
    started_at: float

    def line(self) -> str:
        return f"start {self.execution_id} {self.deadline:.3f} {self.started_at:.6f}"


@dataclass(slots=True)
class Free:
    execution_id: str

    def line(self) -> str:
        return f"free {self.execution_id}"


@dataclass(slots=True)
class Ended:
    queue: str
    recorded: str  # the core's outcome of its record: "finished", "failed", "stale"...
    seconds: float  # how long it ran

    def line(self) -> str:
        return f"ended {self.queue} {self.recorded} {int(self.seconds * 1e6)}"


@dataclass(slots=True)
class RedisError:
    def line(self) -> str:
        return "redis-error"


@dataclass(slots=True)
class Unreadable:
    """A line that is none of the above (logged, and otherwise ignored)."""

    words: tuple[str, ...]


Report = Ready | Own | Start | Free | Ended | RedisError
"""What a worker reports."""


def read_report(line: bytes) -> Report | Unreadable:
    """The report a worker wrote as ``line`` (without its newline)."""
    words = line.decode().split()
    try:
        match words:
            case ["ready"]:
                return Ready()
            case ["own", job_id, execution_id, queue]:
                return Own(job_id, execution_id, queue)
            case ["start", execution_id, deadline, started_at]:
                return Start(execution_id, float(deadline), float(started_at))
            case ["free", execution_id]:
                return Free(execution_id)
            case ["ended", queue, recorded, microseconds]:
                return Ended(queue, recorded, int(microseconds) / 1e6)
            case ["redis-error"]:
                return RedisError()
    except ValueError:
        pass
    return Unreadable(tuple(words))


@dataclass
class Reported:
    """What one worker has reported: whether it is ready, and the executions it owns."""

    ready: bool = False
    owned: dict[str, Owned] = field(default_factory=dict)
    _unfinished: bytes = b""  # the start of a line whose end has not been read yet

    def lines(self, data: bytes) -> list[bytes]:
        """The whole lines of ``data`` read from the worker's pipe, with what the read before
        left unfinished."""
        *lines, self._unfinished = (self._unfinished + data).split(b"\n")
        return lines

    def apply(self, report: Report | Unreadable) -> Owned | None:
        """Notes what ``report`` changes; returns the execution that started, for a ``Start``."""
        match report:
            case Ready():
                self.ready = True
            case Own(job_id, execution_id, queue):
                self.owned[execution_id] = Owned(job_id, execution_id, queue)
            case Start(execution_id, deadline, started_at):
                for owned in self.owned.values():  # a worker runs one job at a time
                    if owned.state == "running":
                        owned.state = "ended"
                started = self.owned.get(execution_id)
                if started is not None:
                    started.state = "running"
                    started.deadline = deadline
                    started.started_at = started_at
                return started
            case Free(execution_id):
                self.owned.pop(execution_id, None)
        return None

    def running(self) -> list[Owned]:
        return [owned for owned in self.owned.values() if owned.state == "running"]
