"""Retry: how many times, and after what intervals, a failed job runs again."""

from __future__ import annotations

from collections.abc import Iterable


class Retry:
    def __init__(self, max: int, interval: int | Iterable[int] = 0, enqueue_at_front: bool = False):
        if not isinstance(max, int) or isinstance(max, bool) or max < 1:
            raise ValueError(f"Retry max must be an integer of at least 1, got {max!r}")
        intervals = [interval] if isinstance(interval, int) else list(interval)
        if any(not isinstance(i, int) or i < 0 for i in intervals):
            raise ValueError(f"Retry intervals must be non-negative integers, got {interval!r}")
        self.max = max
        self.intervals = intervals
        self.enqueue_at_front = enqueue_at_front

    def __repr__(self) -> str:
        interval = self.intervals[0] if len(self.intervals) == 1 else self.intervals
        return f"Retry(max={self.max}, interval={interval!r}, enqueue_at_front={self.enqueue_at_front!r})"
