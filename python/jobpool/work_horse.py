"""A work horse: one job run in a forked child, as RQ's ``Worker`` runs each job, so that a job
that segfaults, calls ``os._exit`` or is killed by the OOM killer fails alone and its worker
goes on.

The horse runs the job and writes its outcome, pickled, into a pipe; the worker reads it and
records it (recording stays in the worker: a horse's death can never leave a record half
written). A horse that dies without an outcome fails its job with the reason its exit status
gives, in RQ's words. A horse still running past the job's timeout plus a grace (its own soft
timeout did not stop it: it is stuck in C code) is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable

from .job_runner import JobStopped, Outcome
from .result_encoding import format_exception

# How long past its job's timeout a horse may run before its worker kills it (as the pool's
# supervisor gives a worker whose job overran).
HARD_KILL_GRACE_SECONDS = 5.0
# How often the worker wakes while its horse runs (to heartbeat, and to check the deadline).
WAKE_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # prctl's option: a signal for this process when its parent dies
# The signals that stop a worker or its job: held back across the fork, so the worker always
# knows its horse's pid when one arrives.
_STOPPING_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR2}


def death_reason(status: int, hard_killed: bool, what_was_killed: str) -> str:
    """Why a job failed when the process running it died with ``status``, in RQ's words where
    RQ has them; ``what_was_killed`` says who killed what when the job overran."""
    if hard_killed:
        return (
            "JobTimeoutException: Task exceeded maximum timeout value and did not return to Python; "
            f"{what_was_killed}\n"
        )
    detail = (
        f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit code {os.WEXITSTATUS(status)}"
    )
    return f"Work-horse terminated unexpectedly; waitpid returned {status} ({detail}); \n"


def run_in_horse(
    run: Callable[[], Outcome], timeout: float | None, while_waiting: Callable[[], None]
) -> Outcome:
    """``run()`` in a forked child; its outcome, or a failure if the child died without one.
    ``timeout`` (None: none) is the job's; ``while_waiting`` is called about once a second
    while the horse runs.

    A JobStopped raised in this process meanwhile (a cold shutdown, a stop-job or kill-horse
    command, from a signal handler) kills the horse, waits for it, and is raised again."""
    started_at, clock = time.time(), time.perf_counter()
    parent_pid = os.getpid()
    _flush_standard_streams()  # else the horse inherits, and writes again, what is buffered
    read_end, write_end = os.pipe()
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING_SIGNALS)
        raise
    if pid == 0:
        os.close(read_end)
        _horse(run, write_end, parent_pid)  # never returns
    os.close(write_end)
    reaped = False  # once it is, its pid may be another process's
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING_SIGNALS)  # a pending stop runs here
        payload, hard_killed = _read_outcome(read_end, pid, timeout, while_waiting)
        status = _reap(pid)
        reaped = True
    except JobStopped:
        if not reaped:
            _kill(pid)
            _reap(pid)
        raise
    finally:
        os.close(read_end)
    if payload:
        try:
            outcome: Outcome = pickle.loads(payload)
            return outcome
        except Exception as error:  # a horse killed as it wrote: its outcome is cut short
            reason = f"The work horse's outcome could not be read: {error!r}\n"
    else:
        reason = death_reason(status, hard_killed, "its work horse was killed by its worker")
    return Outcome(False, reason=reason, started_at=started_at, working_seconds=time.perf_counter() - clock)


def _horse(run: Callable[[], Outcome], write_end: int, parent_pid: int) -> None:
    """The child: its own process group (a terminal's Ctrl+C reaches the worker, which decides),
    SIGTERM's default action (it dies, as RQ's horse), then the job, its outcome, and an exit
    that runs none of the worker's clean-up."""
    status = 0
    try:
        die_with_parent(parent_pid)  # a worker SIGKILLed leaves no horse running its job
        os.setpgrp()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING_SIGNALS)
        try:
            outcome = run()
        except BaseException as error:  # run() records its job's failures; this is anything else
            outcome = Outcome(False, reason=format_exception(error))
        payload = memoryview(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
        while payload:
            payload = payload[os.write(write_end, payload) :]
        _flush_standard_streams()  # what the job printed: os._exit flushes nothing
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies (Linux), and exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the check below and the supervisor's own shutdown remain
    if os.getppid() != parent_pid:
        os._exit(1)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed, replaced, or None
            stream.flush()


def _read_outcome(
    read_end: int, pid: int, timeout: float | None, while_waiting: Callable[[], None]
) -> tuple[bytes, bool]:
    """Everything the horse writes, read until it closes its end (it exits); whether it was
    killed past its deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout + HARD_KILL_GRACE_SECONDS
    chunks: list[bytes] = []
    hard_killed = False
    while True:
        readable, _, _ = select.select([read_end], [], [], WAKE_SECONDS)
        if readable:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                return b"".join(chunks), hard_killed
            chunks.append(chunk)
            continue
        while_waiting()
        if deadline is not None and not hard_killed and time.monotonic() > deadline:
            _kill(pid)
            hard_killed = True


def _kill(pid: int) -> None:
    """SIGKILL to the horse's process group (what it forked too); a horse already gone is fine."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError as error:
        if error.errno not in (errno.ESRCH, errno.EPERM):
            raise
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # it had not made its own group yet


def _reap(pid: int) -> int:
    """The horse's exit status, once it has exited (0 if something else reaped it)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0
