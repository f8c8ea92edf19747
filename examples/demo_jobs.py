"""Job functions for the demo (workers import them as ``demo_jobs.<name>``)."""

from __future__ import annotations

from jobpool import get_current_job


def count_words(text: str) -> int:
    job = get_current_job()
    if job is not None:
        job.meta["words"] = text.split()
        job.save_meta()
    return len(text.split())


def total(*numbers: int) -> int:
    return sum(numbers)


def divide(a: int, b: int) -> float:
    return a / b
