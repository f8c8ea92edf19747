"""Retry: how many times, and after what intervals, a failed job runs again; also what a job
that returns a Retry gets (RQ 3.0's rules)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
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


def next_retry_interval(intervals: list[int] | None, retries_left: int) -> int:
    """Seconds before a failed job with ``retries_left`` (at least 1) runs again, by RQ's rule:
    the intervals are used in order, the last one for every retry past them."""
    if not intervals:
        return 0
    return intervals[max(len(intervals) - retries_left, 0)]


class Retry:
    def __init__(self, max: int, interval: int | Iterable[int] = 0, enqueue_at_front: bool = False):
        self.max = check_retries(max, least=1)
        self.intervals = check_intervals(interval)
        self.enqueue_at_front = enqueue_at_front

    def __repr__(self) -> str:
        interval = self.intervals[0] if len(self.intervals) == 1 else self.intervals
        return f"Retry(max={self.max}, interval={interval!r}, enqueue_at_front={self.enqueue_at_front!r})"


@dataclass(frozen=True)
class RetryAgain:
    """A job that returned a Retry runs again: how RQ 3.0's worker reschedules it."""

    number_of_retries: int
    """The job's ``number_of_retries`` once this retry is counted."""
    interval: int
    """Seconds until it runs again (0: back onto its queue at once)."""
    at_front: bool
    """Back at the head of its queue (the job's ``enqueue_at_front_on_retry``, or the Retry's)."""


def returned_retry(value: object) -> Retry | None:
    """The Retry a job returned to ask to run again, or None for any other return value. RQ's
    ``rq.Retry`` counts too (a job written for RQ's workers), checked as jobpool's is: a max or
    interval jobpool refuses raises InvalidRetry."""
    if isinstance(value, Retry):
        return value
    rq_retry = getattr(sys.modules.get("rq.job"), "Retry", None)  # only if rq is imported
    if rq_retry is not None and isinstance(value, rq_retry):
        return Retry(value.max, value.intervals, value.enqueue_at_front)
    return None


def retry_again(
    retry: Retry, number_of_retries: int | None, enqueue_at_front_on_retry: bool
) -> RetryAgain | None:
    """How a job that has been retried ``number_of_retries`` times for returning a Retry runs
    again after returning ``retry``; None once those retries reach ``retry.max`` (the job then
    fails). RQ 3.0's rules: the interval is the count-th of the Retry's intervals, the last
    one once the count passes them."""
    done = number_of_retries or 0
    if done >= retry.max:
        return None
    interval = retry.intervals[min(len(retry.intervals) - 1, done)] if retry.intervals else 0
    return RetryAgain(done + 1, interval, enqueue_at_front_on_retry or retry.enqueue_at_front)
