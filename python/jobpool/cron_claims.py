"""How cron schedulers on many pools and hosts share one Redis and enqueue each tick once.

Two keys of jobpool's own (see ``keys``):

- ``<prefix>:jobpool:cron-tick:<cron job>``: the cron job's last tick, as epoch seconds (with
  `` anchor`` after it while no tick has been enqueued yet: the time its ticks count from). A
  tick's job is enqueued in a MULTI/EXEC that WATCHes this key, reads it first, and advances it
  with the enqueue: two schedulers racing for a tick both read the old value, one transaction
  commits, and the other one's is refused by Redis (the key changed), so it enqueues nothing.
  The job and the tick are written together or not at all: a scheduler killed at any instant
  leaves the tick either enqueued and recorded, or neither (the next scheduler enqueues it).
- ``<prefix>:jobpool:cron-lock:<config>``: held by one scheduler per cron configuration, for
  ``LOCK_TTL_SECONDS``, refreshed every second by its holder (``lua/cron_lock.lua``). It is there
  so that one scheduler does the work rather than all of them: the transactions above, not the
  lock, are what make a tick enqueued once. A holder that dies lets another take over when the
  lock lapses; the ticks that fell due meanwhile are then enqueued, late, each once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from . import keys, scripts
from .redis_values import as_text

LOCK_TTL_SECONDS = 5.0
"""How long a cron lock outlives its holder's last refresh: the longest cron stops when the
host that holds it dies (another takes the lock within a second after)."""
LOCK_REFRESH_SECONDS = 1.0
"""How often a scheduler takes or refreshes its lock (a holder also wakes when a tick is due)."""
TICK_KEY_TTL = 31536000
"""A cron job's last tick lives as long as RQ keeps its history (a year), refreshed at each tick."""
_ANCHOR = " anchor"


class LastTick(NamedTuple):
    """What a cron job's tick key holds: a time, and whether a job was enqueued for it."""

    at: float
    enqueued: bool


def parse_last_tick(raw: bytes | str | None) -> LastTick | None:
    if raw is None:
        return None
    text = as_text(raw)
    anchored = text.endswith(_ANCHOR)
    return LastTick(float(text.removesuffix(_ANCHOR)), not anchored)


def hold_lock(connection: Redis, config_id: str, owner: str, ttl: float = LOCK_TTL_SECONDS) -> bool:
    """Takes the configuration's lock, or refreshes it if ``owner`` holds it; whether it does."""
    held = scripts.run(
        "cron_lock", connection, keys=[keys.cron_lock(config_id)], args=[owner, max(1, int(ttl * 1000))]
    )
    return bool(held)


def release_lock(connection: Redis, config_id: str, owner: str) -> None:
    """Gives the lock up, if ``owner`` holds it, so that another scheduler takes over at once."""
    scripts.run("cron_lock", connection, keys=[keys.cron_lock(config_id)], args=[owner, 0])


def read_last_ticks(connection: Redis, tick_ids: Sequence[str], anchors: Sequence[float]) -> list[LastTick]:
    """Each cron job's last tick; a cron job that has none yet gets ``anchor`` (the time its
    ticks count from) if no other scheduler gave it one first. Two round trips at most."""
    tick_keys = [keys.cron_tick(tick_id) for tick_id in tick_ids]
    last = [parse_last_tick(raw) for raw in connection.mget(tick_keys)] if tick_keys else []
    missing = [index for index, tick in enumerate(last) if tick is None]
    if missing:
        with connection.pipeline(transaction=False) as pipe:
            for index in missing:
                pipe.set(tick_keys[index], f"{anchors[index]!r}{_ANCHOR}", nx=True, ex=TICK_KEY_TTL)
            pipe.execute()
        for index, raw in zip(missing, connection.mget([tick_keys[i] for i in missing]), strict=True):
            last[index] = parse_last_tick(raw)
    return [tick if tick is not None else LastTick(anchors[i], False) for i, tick in enumerate(last)]


def enqueue_once(connection: Redis, tick_id: str, tick: float, write: Callable[[Pipeline], None]) -> bool:
    """Runs ``write`` (which adds the tick's enqueue to the transaction it is given) and advances
    the cron job's last tick to ``tick``, in one MULTI/EXEC, unless the last tick is ``tick`` or
    later already, or another scheduler advances it meanwhile. Whether this call enqueued it."""
    tick_key = keys.cron_tick(tick_id)
    with connection.pipeline() as pipe:
        try:
            pipe.watch(tick_key)
            last = parse_last_tick(pipe.get(tick_key))
            if last is not None and last.at >= tick:
                return False
            pipe.multi()
            write(pipe)
            pipe.set(tick_key, repr(tick), ex=TICK_KEY_TTL)
            pipe.execute()
        except WatchError:
            return False
    return True
