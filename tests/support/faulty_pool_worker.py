"""Preloaded by a pool under test (``jobpool start --preload support.faulty_pool_worker``): its workers
SIGKILL themselves at random at the edges of every step of their work in batches.

The hooks sit before and after: a take; the hold of a batch in the ledger; the start of a held
job; keeping a job's record in the ledger; a step (sent and waited for, or sent ahead with a
batch's take: then the kill comes with the step in flight); collecting a step sent ahead; the
release of a held job the worker gives up as it stops. Each kill appends the hook's name to
``$JOBPOOL_TEST_KILL_LOG``; each hook kills with probability ``$JOBPOOL_TEST_KILL_PROBABILITY``,
or, with ``$JOBPOOL_TEST_KILL_AT`` set to one hook's name (``before a release``, say), only that
one does.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from typing import Any

from jobpool.pool.pool_worker import PoolHooks, PoolWorker

PROBABILITY = float(os.environ["JOBPOOL_TEST_KILL_PROBABILITY"])
KILL_LOG = os.environ["JOBPOOL_TEST_KILL_LOG"]
KILL_AT = os.environ.get("JOBPOOL_TEST_KILL_AT")  # the one hook that kills, if set
_chance: dict[int, random.Random] = {}  # by pid: each forked worker draws its own


def _maybe_die(point: str) -> None:
    if KILL_AT is not None and point != KILL_AT:
        return
    chance = _chance.setdefault(os.getpid(), random.Random(os.getpid()))
    if chance.random() < PROBABILITY:
        with open(KILL_LOG, "a") as log:
            log.write(point + "\n")
        os.kill(os.getpid(), signal.SIGKILL)


def _hook(owner: type, name: str, what: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
        _maybe_die(f"before {what}")
        result = original(self, *args, **kwargs)
        sent_ahead = name == "_step" and kwargs.get("defer", len(args) > 3 and args[3])
        _maybe_die(f"with {what} in flight" if sent_ahead else f"after {what}")
        return result

    setattr(owner, name, hooked)


# The worker's calls into the core, and the hooks by which its supervisor's ledger follows it.
for _owner, _name, _what in [
    (PoolWorker, "_take", "a take"),
    (PoolHooks, "hold", "holding a batch"),
    (PoolHooks, "start_held", "starting a held job"),
    (PoolHooks, "keep_unrecorded", "keeping a record in the ledger"),
    (PoolWorker, "_step", "a step"),
    (PoolWorker, "_collect", "collecting a step"),
    (PoolWorker, "_release", "a release"),
]:
    _hook(_owner, _name, _what)
