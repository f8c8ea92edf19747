"""The supervisor's decisions that need no process to check: crash-loop back-off, the reports
protocol, and which runs a heartbeat stops. (Everything else of the supervisor is tested end to
end in test_pool.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import redis

from jobpool.pool.children import Child
from jobpool.pool.reports import Own, Owned, Reported, Start, job_deadline, read_report
from jobpool.pool.respawns import FIRST_RESPAWN_DELAY, MAX_RESPAWN_DELAY, Respawns
from jobpool.pool.supervisor import Supervisor
from jobpool.work_horse import HARD_KILL_GRACE_SECONDS, death_reason


def _status_killed(signum: int) -> int:
    return signum  # waitpid's status for a process killed by `signum` (no core dump)


def test_a_worker_that_dies_young_waits_longer_each_time() -> None:
    respawns = Respawns(burst=False, metrics=None)
    delays = []
    for _ in range(8):
        child = Child(0, 1234, "logic.0.1", -1, -1, started=time.monotonic())
        respawns.plan(child, _status_killed(signal.SIGSEGV), stopping=False)
        delays.append(respawns.delay[0])
    assert delays[:3] == [FIRST_RESPAWN_DELAY, FIRST_RESPAWN_DELAY * 2, FIRST_RESPAWN_DELAY * 4]
    assert delays[-1] == MAX_RESPAWN_DELAY
    old = Child(0, 1234, "logic.0.1", -1, -1, started=time.monotonic() - 3600)
    respawns.plan(old, _status_killed(signal.SIGSEGV), stopping=False)
    assert respawns.delay[0] == 0.0  # a worker that lived long is replaced at once


def test_clean_exits_in_burst_mode_end_the_slot_and_recycling_does_not() -> None:
    respawns = Respawns(burst=True, metrics=None)
    recycled = Child(0, 1, "a", -1, -1, started=time.monotonic())
    respawns.plan(recycled, 3 << 8, stopping=False)  # exit status 3: replace me
    assert 0 in respawns.at and 0 not in respawns.done_slots
    done = Child(0, 2, "b", -1, -1, started=time.monotonic())
    respawns.plan(done, 0, stopping=False)  # exit status 0 in burst mode: the queues are empty
    assert 0 in respawns.done_slots


def test_reports_track_what_a_worker_owns_and_the_deadline_is_the_running_jobs() -> None:
    reported = Reported()
    for line in reported.lines(b"ready\nown j1 e1 q\nstart e1 1234.5 1200.0\nown j2 e2 q\n"):
        reported.apply(read_report(line))
    assert reported.ready and reported.owned["e1"] == Owned("j1", "e1", "q", "running", 1234.5, 1200.0)
    taken = reported.owned["e2"]
    assert (taken.job_id, taken.state, taken.recorded) == ("j2", "taken", False)
    reported.apply(Start("e2", 99.0, 98.0))  # e1 ended: its record is in flight
    assert reported.owned["e1"].state == "ended"
    assert reported.owned["e2"] == Owned("j2", "e2", "q", "running", 99.0, 98.0)
    for line in reported.lines(b"free e1\nnonsense\n"):
        reported.apply(read_report(line))
    assert list(reported.owned) == ["e2"]


def test_reports_read_back_as_written() -> None:
    for report in (Own("j1", "e1", "q"), Start("e1", 1234.5, 1200.25)):
        assert read_report(report.line().encode()) == report


def test_a_running_job_is_killed_only_past_its_deadline_and_the_grace() -> None:
    """The worker's deadline (``job_deadline``) and the supervisor's hard kill (``overran``)."""
    assert job_deadline(180, 1000.0) == 1180.0 and job_deadline(-1, 1000.0) == 0
    running = Owned("j1", "e1", "q", "running", job_deadline(180, 1000.0), 1000.0)
    assert not running.overran(1180.0 + HARD_KILL_GRACE_SECONDS)
    assert running.overran(1180.5 + HARD_KILL_GRACE_SECONDS)
    unlimited = Owned("j1", "e1", "q", "running", job_deadline(-1, 1000.0), 1000.0)
    ended = Owned("j1", "e1", "q", "ended", 1180.0, 1000.0)
    assert not unlimited.overran(1e12) and not ended.overran(1e12)


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
        child.reported.owned[execution] = Owned("j1", execution, "q", "running", 0.0)
        for status, worker in (("finished", "logic.0.1"), ("failed", "logic.0.1"), ("canceled", "logic.0.1")):
            connection.hset("rq:job:j1", mapping={"status": status, "worker_name": worker})
            supervisor.heartbeat.stop_runs_taken_elsewhere({f"j1:{execution}"})
            assert sleeper.poll() is None, status
        connection.hset("rq:job:j1", mapping={"status": "started", "worker_name": "other.0.1"})
        supervisor.heartbeat.stop_runs_taken_elsewhere({f"j1:{execution}"})
        assert sleeper.wait(timeout=5) == -signal.SIGUSR2  # the stop-job signal, with the ledger's request
        assert supervisor.ledger.stop_requested(0, execution)
    finally:
        sleeper.kill()
        sleeper.wait()
