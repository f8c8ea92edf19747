"""Job functions for the tests (importable by workers as ``jobs.<name>``)."""

from __future__ import annotations

from typing import Any

from jobpool import get_current_job


def add(x: int, y: int) -> int:
    return x + y


def echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def record_meta(key: str, value: Any) -> str | None:
    """Saves meta from inside the job and returns the job's id."""
    job = get_current_job()
    if job is None:
        return None
    job.meta[key] = value
    job.save_meta()
    return job.id


def current_job_id() -> str | None:
    job = get_current_job()
    return job.id if job is not None else None


class Counter:
    def __init__(self, start: int) -> None:
        self.start = start

    def plus(self, n: int) -> int:
        return self.start + n

    def __call__(self, n: int) -> int:
        return self.start * n


def on_success_hook(job: Any, connection: Any, result: Any) -> None:
    return None


def describe_own_executions() -> tuple[str, str, str, bool]:
    """Run by RQ's worker: reads this job's execution through jobpool."""
    import rq

    from jobpool.job import Job

    rq_job = rq.get_current_job()
    assert rq_job is not None
    (execution,) = Job.fetch(rq_job.id, connection=rq_job.connection).get_executions()
    return execution.id, execution.composite_key, execution.worker_name, execution.created_at is not None


def sleep_for(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def spin_until_timeout() -> None:
    while True:
        pass


def started_at_epoch(then_sleep: float = 0.0) -> float:
    """When the job started running (for pickup latency); it then sleeps ``then_sleep`` seconds."""
    import time

    started = time.time()
    time.sleep(then_sleep)
    return started


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this")


def return_unpicklable() -> Unpicklable:
    return Unpicklable()


def on_failure_hook(job: Any, connection: Any, exc_type: Any, value: Any, traceback: Any) -> None:
    job.meta["failure_seen"] = exc_type.__name__
    job.save_meta()


def on_success_meta(job: Any, connection: Any, result: Any) -> None:
    job.meta["success_seen"] = result
    job.save_meta()


def failing_success_hook(job: Any, connection: Any, result: Any) -> None:
    raise RuntimeError("callback broke")


def stuck_in_c() -> None:
    """Does not return to Python for minutes: a billion rounds of PBKDF2, in C (signal
    handlers, and so the soft timeout, wait for it)."""
    import hashlib

    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 10**9)


def sleep_then_fail_once(seconds: float) -> str:
    """Sleeps on its first run (long enough to be killed), returns at once after that."""
    from jobpool import get_current_job

    job = get_current_job()
    assert job is not None
    attempts = int(job.connection.incr(f"attempts:{job.id}"))
    if attempts == 1:
        import time

        time.sleep(seconds)
    return f"attempt {attempts}"


def wait_for_gate(key: str) -> str:
    """Blocks until something is pushed to the list ``key`` (a test opens the gate)."""
    job = get_current_job()
    assert job is not None
    job.connection.blpop([key], timeout=60)
    return key


def counted_sleep(seconds: float) -> float:
    """Counts its runs in ``runs:<job id>`` (a job run twice shows 2), then sleeps."""
    import time

    job = get_current_job()
    assert job is not None
    job.connection.incr(f"runs:{job.id}")
    time.sleep(seconds)
    return seconds


def log_run(seconds: float) -> str:
    """Appends "start <pid>" to ``log:<job id>``, sleeps, then appends "end <pid>": a run that
    was stopped has no end."""
    import os
    import time

    job = get_current_job()
    assert job is not None
    log = f"log:{job.id}"
    job.connection.rpush(log, f"start {os.getpid()}")
    time.sleep(seconds)
    job.connection.rpush(log, f"end {os.getpid()}")
    return "done"


def logged_sleep(path: str, seconds: float) -> float:
    """Appends this job's id to the file ``path`` (one line a run, whatever Redis is doing),
    then sleeps."""
    import os
    import time

    job = get_current_job()
    assert job is not None
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{job.id}\n".encode())
    finally:
        os.close(descriptor)
    time.sleep(seconds)
    return seconds


async def async_double(x: int) -> int:
    """An ``async def`` job: awaits, then returns."""
    import asyncio

    await asyncio.sleep(0.01)
    return 2 * x


async def async_sleep(seconds: float) -> float:
    import asyncio

    await asyncio.sleep(seconds)
    return seconds


async def async_fail(message: str) -> None:
    import asyncio

    await asyncio.sleep(0)
    raise ValueError(message)


def returns_retry(library: str, max: int, interval: int | list[int] = 0, at_front: bool = False) -> Any:
    """Counts its runs in ``runs:<job id>`` and returns ``library``'s Retry (``rq`` or
    ``jobpool``: each worker knows its own)."""
    import importlib

    lib = importlib.import_module(library)
    job = lib.get_current_job()
    job.connection.incr(f"runs:{job.id}")
    return lib.Retry(max, interval, at_front)


def note_status(job: Any, connection: Any, *rest: Any) -> None:
    """A callback (any kind): appends to ``seen:<job id>`` the job's status as the worker
    handed it over, then as Redis has it, then the exception type and traceback it was given."""
    cached, stored = job.get_status(refresh=False), job.get_status()
    seen = [cached.value if cached else "none", stored.value if stored else "none"]
    if len(rest) == 3:  # on_failure: type, value, traceback
        seen += [rest[0].__name__, "traceback" if rest[2] is not None else "no traceback"]
    connection.rpush(f"seen:{job.id}", *seen)


def kill_own_process() -> None:
    """Dies by SIGKILL: RQ's work-horse, or a pool's worker."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def returns(value: Any) -> Any:
    return value


def thread_names() -> list[str]:
    """The names of the threads of the process running the job."""
    import threading

    return sorted(thread.name for thread in threading.enumerate())


def count_run(redis_url: str, key: str) -> int:
    """Counts its runs in the Redis at ``redis_url`` under ``key`` (whatever library runs it)."""
    import redis

    with redis.Redis.from_url(redis_url) as connection:
        return int(connection.incr(key))


def fail_once(redis_url: str) -> str:
    """Raises on its first run (counted in ``runs`` at ``redis_url``), returns after that."""
    runs = count_run(redis_url, "runs")
    if runs == 1:
        raise ValueError("first run")
    return f"run {runs}"


def exclusive_run(redis_url: str, key: str, seconds: float) -> int:
    """Notes in ``<key>:seen`` how many runs sharing ``key`` run with it (itself included), then
    sleeps: a rate limit of one keeps every note at 1."""
    import time

    import redis

    with redis.Redis.from_url(redis_url) as connection:
        running = int(connection.incr(f"{key}:running"))
        connection.rpush(f"{key}:seen", running)
        time.sleep(seconds)
        connection.decr(f"{key}:running")
        return running


def note_order(redis_url: str, key: str, tag: str) -> str:
    """Appends ``tag`` to the list ``key``: the order jobs ran in."""
    import redis

    with redis.Redis.from_url(redis_url) as connection:
        connection.rpush(key, tag)
    return tag
