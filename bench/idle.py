"""Idle cost: the Redis load of a pool with nothing to do, by pool size.

Once the pool is up (jobpool: READY=1 on a NOTIFY_SOCKET of our own; RQ: its workers registered)
and no client has connected to Redis for a few seconds (jobpool's workers connect lazily, on their
first take, and an idle pool lets one worker look at a time), Redis's commands are counted over
``Profile.runs`` consecutive windows: the requests the pool's clients sent, and the commands Redis
executed, including inside Lua scripts. Executed comes from ``INFO commandstats`` (after
``CONFIG RESETSTAT``); the commands run inside scripts are named by MONITOR
(``ScriptCommandWatch``), and sent = executed - inside scripts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from bench.pools import JOBPOOL, POOL_KINDS, RQ_FORK, PoolKind, RunningPool
from bench.redis_counting import (
    ScriptCommandWatch,
    counter_difference,
    executed_commands,
    reset_server_stats,
    sorted_counts,
)
from bench.reporting import EN_DASH, TIMES, Spread, decimal_cell, progress, table
from bench.suite_types import Context, Target

QUIET_SECONDS = 3.0
"""Windows start once no client has connected to Redis for this long (at most twice a window)."""
QUIET_MAX_SECONDS_PER_WORKER = 2.0
IDLE_POOLS = (JOBPOOL, RQ_FORK)
"""RQ's SimpleWorker idles as its default worker does (both wait in BLPOP)."""
SLACK_RATIO = 1.2
SLACK_PER_SECOND = 1.0
"""Idle load counts as independent of the pool's size when the largest pool's requests per second
are at most SLACK_RATIO times the smallest's plus SLACK_PER_SECOND (a window's edges and the
supervisor's periodic tasks make a count vary by one or two either way)."""


def connected_clients(admin: redis.Redis) -> int:
    return int(admin.info("clients")["connected_clients"])


def wait_until_connections_settle(admin: redis.Redis, size: int, quiet_seconds: float) -> None:
    """Waits until the number of clients connected to Redis has not changed for ``quiet_seconds``
    (at most QUIET_MAX_SECONDS_PER_WORKER per worker)."""
    deadline = time.monotonic() + QUIET_MAX_SECONDS_PER_WORKER * size + quiet_seconds
    count = connected_clients(admin)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds:
        if time.monotonic() > deadline:
            progress(f"warning: clients still connecting after {QUIET_MAX_SECONDS_PER_WORKER * size:.0f} s")
            return
        time.sleep(0.25)
        now = connected_clients(admin)
        if now != count:
            count, quiet_since = now, time.monotonic()


@dataclass(frozen=True)
class IdleWindow:
    """What an idle pool cost Redis over ``seconds``; made by ``IdleWindow.of``."""

    seconds: float
    requests_per_second: float
    executed_per_second: float
    sent: dict[str, int]
    """Requests: the commands the pool's clients sent."""
    executed: dict[str, int]
    """Commands Redis executed, including inside scripts."""

    @classmethod
    def of(cls, seconds: float, sent: Mapping[str, int], executed: Mapping[str, int]) -> IdleWindow:
        return cls(
            seconds,
            sum(sent.values()) / seconds,
            sum(executed.values()) / seconds,
            sorted_counts(sent),
            sorted_counts(executed),
        )


class WindowCounter:
    """Counts Redis commands window by window: each ``window()`` returns what ran since the last
    (or since ``start()``) and starts the next."""

    def __init__(self, admin: redis.Redis, watch: ScriptCommandWatch) -> None:
        self.admin = admin
        self.watch = watch
        self.started = 0.0

    def start(self) -> None:
        self.watch.collect(self.admin)  # forget what scripts ran before
        reset_server_stats(self.admin)
        self.started = time.monotonic()

    def window(self) -> IdleWindow:
        executed = executed_commands(self.admin)
        seconds = time.monotonic() - self.started
        inside_scripts = self.watch.collect(self.admin)  # its ECHO marker is before the reset
        reset_server_stats(self.admin)
        self.started = time.monotonic()
        return IdleWindow.of(seconds, counter_difference(executed, inside_scripts), executed)


@dataclass(frozen=True)
class IdlePool:
    """An idle pool's windows; made by ``IdlePool.of``."""

    pool: str
    """The pool kind's name."""
    workers: int
    requests_per_second: Spread
    executed_per_second: Spread
    windows: tuple[IdleWindow, ...]

    @classmethod
    def of(cls, kind: PoolKind, workers: int, windows: tuple[IdleWindow, ...]) -> IdlePool:
        return cls(
            kind.name,
            workers,
            Spread.of(window.requests_per_second for window in windows),
            Spread.of(window.executed_per_second for window in windows),
            windows,
        )

    @property
    def kind(self) -> PoolKind:
        return POOL_KINDS[self.pool]


def measure_pool(
    context: Context, watch: ScriptCommandWatch, kind: PoolKind, size: int
) -> tuple[IdleWindow, ...]:
    admin = context.admin
    admin.flushdb()
    counter = WindowCounter(admin, watch)
    with RunningPool(kind, context.url, size, context.log_dir) as pool:
        pool.wait_until_ready(admin)
        wait_until_connections_settle(admin, size, quiet_seconds(context.profile.idle_window_seconds))
        counter.start()
        windows = []
        for _ in range(context.profile.runs):
            time.sleep(context.profile.idle_window_seconds)
            windows.append(counter.window())
        pool.check_alive()
    return tuple(windows)


def quiet_seconds(window_seconds: float) -> float:
    return min(QUIET_SECONDS, 2 * window_seconds)


@dataclass(frozen=True)
class Idle:
    name = "idle"
    window_seconds: float
    pools: tuple[IdlePool, ...]

    def pools_of(self, kind: PoolKind) -> list[IdlePool]:
        return [pool for pool in self.pools if pool.pool == kind.name]

    def markdown(self) -> list[str]:
        rows = [
            [
                f"{pool.kind.label}, {pool.workers}",
                decimal_cell(pool.requests_per_second),
                decimal_cell(pool.executed_per_second),
            ]
            for pool in self.pools
        ]
        return [
            "## Idle cost",
            "",
            f"Redis calls per second of an idle pool, in {self.window_seconds:g} s windows once no "
            f"client has connected for {quiet_seconds(self.window_seconds):g} s (median of the windows, "
            f"min{EN_DASH}max). "
            "Requests are what the pool's clients sent; executed includes the commands run inside "
            "Lua scripts.",
            "",
            *table(["pool, workers", "requests/s", "commands executed/s"], rows),
        ]

    def targets(self) -> dict[str, Target]:
        ours = self.pools_of(JOBPOOL)
        if len(ours) < 2:
            return {}
        rates = [pool.requests_per_second.median for pool in ours]
        measured = ", ".join(f"{pool.workers}: {pool.requests_per_second.median:.1f}/s" for pool in ours)
        return {
            "idle_load_independent_of_size": Target(
                f"an idle pool's Redis requests per second independent of its size (largest at most "
                f"{SLACK_RATIO}{TIMES} the smallest + {SLACK_PER_SECOND:.0f}/s)",
                f"requests by pool size: {measured}",
                max(rates) <= min(rates) * SLACK_RATIO + SLACK_PER_SECOND,
            )
        }


def run(context: Context) -> Idle:
    pools = []
    with ScriptCommandWatch(context.url) as watch:
        for kind in IDLE_POOLS:
            for size in context.profile.idle_sizes:
                windows = measure_pool(context, watch, kind, size)
                pool = IdlePool.of(kind, size, windows)
                progress(
                    f"idle: {kind.label} x{size}: {pool.requests_per_second.median:.1f} requests/s, "
                    f"{pool.executed_per_second.median:.1f} executed/s"
                )
                pools.append(pool)
    context.admin.flushdb()
    return Idle(context.profile.idle_window_seconds, tuple(pools))
