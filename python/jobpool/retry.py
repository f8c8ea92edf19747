"""Retry: how many times, and after what intervals, a failed job runs again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .durations import MAX_SECONDS
from .exceptions import InvalidRetry

MAX_RETRIES = 2**31 - 1
"""The most retries a job may have: a 32-bit integer, far inside what the worker's scripts read
back and decrement exactly."""


def check_retries(retries: object, least: int = 0) -> int:
    """``retries`` if it is a whole number from ``least`` to MAX_RETRIES, else InvalidRetry."""
    if not isinstance(retries, int) or isinstance(retries, bool) or not least <= retries <= MAX_RETRIES:
        raise InvalidRetry(f"Retry max must be an integer from {least} to {MAX_RETRIES}, got {retries!r}")
    return retries


def check_intervals(intervals: Any) -> list[int]:
    """``intervals`` as a list of whole seconds from 0 to MAX_SECONDS, else InvalidRetry (a job
    stores them as JSON, which its worker reads when the job fails)."""
    try:
        listed = [intervals] if isinstance(intervals, int) else list(intervals)
    except TypeError:
        raise InvalidRetry(
            f"Retry interval must be an integer or a list of integers, got {intervals!r}"
        ) from None
    for interval in listed:
        if not isinstance(interval, int) or isinstance(interval, bool) or not 0 <= interval <= MAX_SECONDS:
            raise InvalidRetry(
                f"Retry intervals must be integers from 0 to {MAX_SECONDS} seconds (ten years), "
                f"got {intervals!r}"
            )
    return listed


class Retry:
    def __init__(self, max: int, interval: int | Iterable[int] = 0, enqueue_at_front: bool = False):
        self.max = check_retries(max, least=1)
        self.intervals = check_intervals(interval)
        self.enqueue_at_front = enqueue_at_front

    def __repr__(self) -> str:
        interval = self.intervals[0] if len(self.intervals) == 1 else self.intervals
        return f"Retry(max={self.max}, interval={interval!r}, enqueue_at_front={self.enqueue_at_front!r})"
