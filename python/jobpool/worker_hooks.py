"""The hooks by which a worker's owner follows its work: one object, every hook in one place.

A worker on its own has no owner: its hooks are ``WorkerHooks``, which do nothing and let it hold
nothing. A pool's worker has ``pool.pool_worker.PoolHooks``: it reports to its supervisor what it
owns and runs (so that the supervisor heartbeats, hard-kills and settles for it), and keeps the
jobs it holds ahead, and the records it has not written yet, in the pool's shared ledger.

For each job, the worker calls, in this order: ``owned`` (it took the job, or starts one it held),
``check_stop`` (just before the job runs), ``starting``, then, once the job has run,
``keep_unrecorded`` (its record waits for a later step), ``written`` (records are written) and
``freed`` (the job is no longer the worker's). Holding jobs ahead adds ``hold`` (before a take
ahead), ``shrink_held`` (it brought fewer), ``start_held`` (may the next held job start?) and
``drop_held`` (the worker gives back what it holds). ``ready`` comes once, before the first take.
"""

from __future__ import annotations

from ._native import TakenJob
from .job_runner import Outcome

Performed = tuple[TakenJob, Outcome]
"""A job that ran, and how it ended, until its outcome is recorded."""


class WorkerHooks:
    """A worker's hooks when nobody owns it: nothing is reported, nothing is held."""

    def ready(self) -> None:
        """Registered, about to take its first job."""

    def owned(self, taken: TakenJob) -> None:
        """``taken`` is now the worker's: it is about to start it."""

    def check_stop(self, taken: TakenJob) -> None:
        """Raises JobStopped if the owner asked to stop ``taken`` before it began."""

    def starting(self, taken: TakenJob) -> None:
        """``taken`` starts running."""

    def keep_unrecorded(self, performed: Performed) -> bool:
        """``performed`` ended; its record goes out with a later step. Whether it is kept where the
        owner finds it should the worker die first (alone, nowhere: such a worker writes every
        record before it starts another job, so it never needs to)."""
        return True

    def written(self, recorded: list[Performed]) -> None:
        """The records of ``recorded`` are written."""

    def freed(self, taken: TakenJob) -> None:
        """``taken``'s record is written (or it was put back): it is no longer the worker's."""

    def hold(self, execution_ids: list[str]) -> None:
        """The worker is about to take the jobs of ``execution_ids`` ahead."""

    def shrink_held(self, taken: int) -> None:
        """The take ahead brought ``taken`` jobs, fewer than asked for."""

    def start_held(self) -> bool:
        """Whether the worker may start the next job it holds (False: its owner took back every
        one it had not started)."""
        return True

    def drop_held(self) -> bool:
        """The worker gives up the jobs it holds, to put them back itself: whether they were still
        its own (False: its owner took them back first, and puts them back)."""
        return True
