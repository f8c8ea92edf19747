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
