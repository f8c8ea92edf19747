"""When a cron job's ticks fall, from the last tick enqueued and the time now: pure arithmetic,
no Redis, so that it is tested with any clock.

A tick is the time a job is due: a cron string's match (its fields read in local time, as RQ's
and cron's), or a point of an interval's grid, ``last + k * interval``. Every scheduler computes
the same ticks from the same last tick, which is what lets several of them agree on which tick
is next (see ``cron_claims``).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from croniter import croniter

from .timeutils import from_epoch

CATCH_UP_SECONDS = 60.0
"""Ticks missed by no more than this (a scheduler handing over to another, Redis away for a
moment) are each enqueued late; of those missed by longer (every scheduler down), only the
newest is, once, as RQ's scheduler enqueues a job that fell overdue while it could not."""


def next_cron_time(expression: str, after: datetime) -> datetime:
    """The first time after ``after`` (aware) that ``expression`` matches, in UTC. The fields
    match local time; a local time that repeats (the hour a clock goes back) is its first
    occurrence, which can come before ``after``, so such candidates are passed over."""
    local_after = after.astimezone().replace(tzinfo=None)
    matches = croniter(expression, local_after)
    while True:
        local = matches.get_next(datetime)
        # Via timestamp(): before Python 3.12, astimezone() inverts fold for a skipped time.
        candidate = datetime.fromtimestamp(local.replace(fold=0).timestamp(), timezone.utc)
        if candidate > after:
            return candidate


def previous_cron_time(expression: str, at_or_before: datetime) -> datetime | None:
    """The last time at or before ``at_or_before`` that ``expression`` matches, in UTC."""
    local = at_or_before.astimezone().replace(tzinfo=None)
    matches = croniter(expression, local)
    for _ in range(4):  # a match at a repeated local hour may land after the bound: step back
        earlier = matches.get_prev(datetime)
        candidate = datetime.fromtimestamp(earlier.replace(fold=0).timestamp(), timezone.utc)
        if candidate <= at_or_before:
            return candidate
    return None


def next_tick(last: float, interval: float | None, cron: str | None) -> float:
    """The first tick after ``last`` (epoch seconds)."""
    if interval is not None:
        return last + interval
    if cron is None:
        raise ValueError("a cron job has an interval or a cron string")
    return next_cron_time(cron, from_epoch(last)).timestamp()


def due_ticks(
    last: float,
    now: float,
    interval: float | None = None,
    cron: str | None = None,
    catch_up: float = CATCH_UP_SECONDS,
) -> list[float]:
    """The ticks after ``last`` and at or before ``now`` to enqueue, oldest first: those within
    ``catch_up`` seconds of now, else (all of them older) the newest alone."""
    oldest_kept = now - catch_up
    if interval is not None:
        due = math.floor((now - last) / interval)
        if due < 1:
            return []
        first_kept = max(1, math.ceil((oldest_kept - last) / interval))
        if first_kept > due:
            return [last + due * interval]
        return [last + k * interval for k in range(first_kept, due + 1)]
    if cron is None:
        raise ValueError("a cron job has an interval or a cron string")
    ticks: list[float] = []
    tick = next_cron_time(cron, from_epoch(max(last, oldest_kept))).timestamp()
    while tick <= now:
        ticks.append(tick)
        tick = next_cron_time(cron, from_epoch(tick)).timestamp()
    if ticks or last >= oldest_kept:
        return ticks
    newest = previous_cron_time(cron, from_epoch(oldest_kept))
    return [newest.timestamp()] if newest is not None and newest.timestamp() > last else []
