"""Repeat: a job that runs again after each successful execution, ``times`` more times (RQ 3.0's
``rq.repeat.Repeat``, with its checks and its errors).

The job hash keeps RQ's fields, ``repeats_left`` and ``repeat_intervals`` (JSON). The worker's
record of a success (rust/lua/finish.lua) sends the job round again in the same script run, so
a repeat is neither lost nor doubled by a worker that dies as it ends: see ``next_repeat`` and
``repeat_job`` in rust/lua/lib/library.lua.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Repeat:
    """``times`` repeats after the first run; ``interval``: seconds before each (a list: one per
    repeat, its last reused for the repeats past its end; 0, the default, at once)."""

    times: int
    intervals: list[int]

    def __init__(self, times: int, interval: int | Iterable[int] | None = 0):
        if times < 1:
            raise ValueError("times: please enter a value greater than 0")
        if isinstance(interval, int):
            if interval < 0:
                raise ValueError("intervals: negative numbers are not allowed")
            self.intervals = [interval]
        elif isinstance(interval, Iterable):
            listed = list(interval)
            for value in listed:
                if value < 0:
                    raise ValueError("intervals: negative numbers are not allowed")
            self.intervals = listed
        else:
            raise TypeError("intervals must be an int or iterable of ints")
        self.times = times

    @classmethod
    def get_interval(cls, count: int, intervals: list[int]) -> int:
        """The interval before repeat ``count`` (0-based): the last one past the list's end."""
        return intervals[-1] if count >= len(intervals) else intervals[count]
