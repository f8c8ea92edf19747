"""The supervisor's decisions that need no process to check: crash-loop back-off, and the
reports protocol. (Everything else of the supervisor is tested end to end in test_pool.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import redis

from jobpool.pool.supervisor import (
    FIRST_RESPAWN_DELAY,
    MAX_RESPAWN_DELAY,
    Child,
    Owned,
    Supervisor,
)
from jobpool.work_horse import death_reason


def _supervisor() -> Supervisor:
    return Supervisor("redis://127.0.0.1:1/0", ["q"], 1, name="logic")  # connects to nothing until used


def _status_killed(signum: int) -> int:
    return signum  # waitpid's status for a process killed by `signum` (no core dump)


def test_a_worker_that_dies_young_waits_longer_each_time() -> None:
    supervisor = _supervisor()
    delays = []
    for _ in range(8):
        child = Child(0, 1234, "logic.0.1", -1, -1, started=time.monotonic())
        supervisor._plan_respawn(child, _status_killed(signal.SIGSEGV))
        delays.append(supervisor.respawn_delay[0])
    assert delays[:3] == [FIRST_RESPAWN_DELAY, FIRST_RESPAWN_DELAY * 2, FIRST_RESPAWN_DELAY * 4]
    assert delays[-1] == MAX_RESPAWN_DELAY
    old = Child(0, 1234, "logic.0.1", -1, -1, started=time.monotonic() - 3600)
    supervisor._plan_respawn(old, _status_killed(signal.SIGSEGV))
    assert supervisor.respawn_delay[0] == 0.0  # a worker that lived long is replaced at once


def test_clean_exits_in_burst_mode_end_the_slot_and_recycling_does_not() -> None:
    supervisor = _supervisor()
    supervisor.burst = True
    recycled = Child(0, 1, "a", -1, -1, started=time.monotonic())
    supervisor._plan_respawn(recycled, 3 << 8)  # exit status 3: replace me
    assert 0 in supervisor.respawn_at and 0 not in supervisor.done_slots
    done = Child(0, 2, "b", -1, -1, started=time.monotonic())
    supervisor._plan_respawn(done, 0)  # exit status 0 in burst mode: the queues are empty
    assert 0 in supervisor.done_slots


def test_reports_track_what_a_worker_owns_and_the_deadline_is_the_running_jobs() -> None:
    supervisor = _supervisor()
    child = Child(0, 1, "a", -1, -1, started=time.monotonic())
    for line in ("ready", "own j1 e1 q", "start e1 1234.5 1200.0", "own j2 e2 q"):
        supervisor._apply_report(child, line.split())
    assert child.ready and child.owned["e1"] == Owned("j1", "e1", "q", "running", 1234.5, 1200.0)
    taken = child.owned["e2"]
    assert (taken.job_id, taken.state, taken.recorded) == ("j2", "taken", False)
    supervisor._apply_report(child, ["start", "e2", "99.0", "98.0"])  # e1 ended: its record is in flight
    assert child.owned["e1"].state == "ended"
    assert child.owned["e2"] == Owned("j2", "e2", "q", "running", 99.0, 98.0)
    for line in ("free e1", "nonsense"):
        supervisor._apply_report(child, line.split())
    assert list(child.owned) == ["e2"]


def test_death_reasons_are_readable() -> None:
    killed = "its worker was killed by the supervisor"
    assert "signal 9" in death_reason(signal.SIGKILL, False, killed)
    assert "terminated unexpectedly" in death_reason(signal.SIGKILL, False, killed)
    assert "exit code 1" in death_reason(1 << 8, False, killed)
    assert "JobTimeoutException" in death_reason(signal.SIGKILL, True, killed)
    assert killed in death_reason(signal.SIGKILL, True, killed)
    assert os.WIFSIGNALED(_status_killed(signal.SIGKILL))


def test_only_a_run_given_back_to_its_queue_elsewhere_is_stopped(
    redis_url: str, connection: redis.Redis
) -> None:
    """An execution missing from the started registry at a heartbeat was recorded by its own
    worker (whose report is not read yet), failed by recovery, canceled, or retried elsewhere:
    only the last is stopped."""
    supervisor = Supervisor(redis_url, ["q"], 1, name="logic")
    sleeper = subprocess.Popen(["sleep", "60"])  # stands for the worker: SIGUSR2 would end it
    try:
        child = Child(0, sleeper.pid, "logic.0.1", -1, -1, started=time.monotonic())
        supervisor.children[sleeper.pid] = child
        execution = os.urandom(16).hex()
        child.owned[execution] = Owned("j1", execution, "q", "running", 0.0)
        for status, worker in (("finished", "logic.0.1"), ("failed", "logic.0.1"), ("canceled", "logic.0.1")):
            connection.hset("rq:job:j1", mapping={"status": status, "worker_name": worker})
            supervisor._stop_runs_taken_elsewhere({f"j1:{execution}"})
            assert sleeper.poll() is None, status
        connection.hset("rq:job:j1", mapping={"status": "started", "worker_name": "other.0.1"})
        supervisor._stop_runs_taken_elsewhere({f"j1:{execution}"})
        assert sleeper.wait(timeout=5) == -signal.SIGUSR2  # the stop-job signal, with the ledger's request
        assert supervisor.ledger.stop_requested(0, execution)
    finally:
        sleeper.kill()
        sleeper.wait()
