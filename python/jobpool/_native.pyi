"""jobpool's Rust extension (hand-written stub, checked against the built module by mypy.stubtest)."""

__all__ = ["Core", "Ledger", "__version__", "key_templates", "lua_scripts", "render_key"]

from typing import final

__version__: str

# (queue, job id, execution id, heartbeat ttl, the job hash)
_Taken = tuple[str, str, str, int, dict[str, bytes]]
# The next take requested with a transition: (queues, worker, execution id, heartbeat ttl,
# whether it is a take ahead, held until it starts).
_NextTake = tuple[list[str], str, str, int, bool]
# (the outcome of a step's record, or None when it had none; the job it took, or None)
_Step = tuple[str | None, _Taken | None]

def key_templates() -> list[tuple[str, str]]:
    """Every key template as (name, template); identical to ``jobpool.keys.TEMPLATES``."""

def render_key(name: str, prefix: str, values: list[tuple[str, str]]) -> str:
    """The key ``name`` under ``prefix``; raises KeyError for an unknown name or missing value."""

def lua_scripts() -> list[tuple[str, str]]:
    """Every Lua script as (name, source)."""

@final
class Core:
    """One process's connection to Redis and the worker operations on it (lazily connected,
    reopened after a fork). Errors raise jobpool.exceptions.RedisUnavailable, RedisCommandError
    or UnexpectedReply."""

    def __new__(
        cls,
        prefix: str,
        host: str | None = None,
        port: int = 6379,
        unix_path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        tls_verify: bool = True,
        tls_ca_certificate: bytes | None = None,
        tls_client_certificate: tuple[bytes, bytes] | None = None,
    ) -> Core: ...
    def connect(self) -> None:
        """Opens this process's connection and loads the scripts now, rather than at the first
        call."""

    @property
    def round_trips(self) -> int:
        """Requests sent to Redis and answered so far (a pipeline counts once)."""

    def take(
        self,
        queues: list[str],
        worker: str,
        execution_id: str,
        heartbeat_ttl: int,
        wait: float | None = None,
        defer: bool = False,
        held: bool = False,
    ) -> _Taken | None:
        """The next job from ``queues`` (priority order), marked started; None when all are empty
        (after blocking up to ``wait`` seconds, if given). ``heartbeat_ttl`` 0 derives it from the
        job's timeout. With ``defer``, sends the take and returns None: ``collect`` returns it.
        ``held``: a take ahead, while a job runs; the job is held until it starts."""

    def finish(
        self,
        job_id: str,
        execution_id: str,
        queue: str,
        worker: str | None,
        started_at: float | None,
        working_seconds: float,
        return_value: bytes | None,
        default_result_ttl: int,
        next: _NextTake | None = None,
        defer: bool = False,
        started: tuple[str, str] | None = None,
        running: bool = False,
    ) -> _Step | None:
        """Records a success ("finished", or "stale" if already recorded) and, with ``next``,
        takes the next job in the same round trip. With ``defer``, sends the step and returns
        None: ``collect`` returns what it did. ``started`` (job id, execution id): a held job
        starts now; ``running``: a job runs while the step is in flight (the worker stays busy)."""

    def fail(
        self,
        job_id: str,
        execution_id: str,
        queue: str,
        worker: str | None,
        started_at: float | None,
        working_seconds: float,
        failure: str,
        exc_info: bytes,
        exc_string: bytes,
        next: _NextTake | None = None,
        defer: bool = False,
        started: tuple[str, str] | None = None,
        running: bool = False,
    ) -> _Step | None:
        """Records a "failed", "stopped" or "abandoned" execution, or puts back a "released" held
        job that never started; the outcome is "failed", "stopped", "retried", "scheduled",
        "released", "stale" or "cleared". Returns or defers as finish."""

    def collect(self) -> _Step:
        """What the step sent with ``defer=True`` did; a step whose reply was lost is repeated."""

    def heartbeat(
        self,
        executions: list[tuple[str, str, str, int, str, float]],
        workers: list[tuple[str, int]],
        registrations: dict[str, tuple[list[str], list[tuple[str, str]]]] | None = None,
    ) -> list[str]:
        """Refreshes (job id, execution id, queue, ttl, worker, started at) executions and
        (name, ttl) workers, writing RQ's records of an execution (its hash, index entry and
        worker's executions set) at its first beat; returns the ``<job_id>:<execution_id>`` of
        executions no longer running. A worker
        named in ``registrations`` (name: its queues, and its hash's fields but ``birth`` and
        ``last_heartbeat`` as (field, value) pairs) is registered again if its hash has
        neither ``birth`` nor ``death``, and kept in the worker sets while it lives."""

    def reclaim(
        self, worker: str, queues: list[str], execution_id: str
    ) -> tuple[str, str | None, str | None]:
        """Puts back the job ``worker`` took ahead under ``execution_id`` (its hold was reclaimed
        in the ledger): ("released", job id, queue), or ("absent", None, None)."""

    def recover_abandoned(
        self, queues: list[str], exc_info: bytes, exc_string: bytes
    ) -> list[tuple[str, str, str, str]]:
        """Fails or retries lapsed executions; (queue, job id, execution id, outcome) each."""

@final
class Ledger:
    """What each worker of a pool holds and runs, in memory shared across fork (make it before
    forking). A held job is started by its worker or reclaimed by the supervisor, never both."""

    def __new__(cls, slots: int) -> Ledger: ...
    def __len__(self) -> int: ...
    def hold(self, slot: int, execution_id: str) -> None:
        """Worker: it is about to take ``execution_id`` (32 hex digits) ahead."""

    def start_held(self, slot: int) -> bool:
        """Worker: starts its held job; False when the supervisor took it back first."""

    def drop_held(self, slot: int) -> bool:
        """Worker: gives up its hold; False when the supervisor took it back first."""

    def held(self, slot: int) -> tuple[int, str, float] | None:
        """Supervisor: (token, execution id, epoch seconds the hold began) of the job held in
        ``slot``, or None."""

    def reclaim(self, slot: int, token: int) -> bool:
        """Supervisor: takes back the hold ``token``; False when the worker started or dropped it."""

    def request_stop(self, slot: int, execution_id: str) -> None:
        """Supervisor: asks the worker in ``slot`` to stop ``execution_id``, running or about to
        start (then it signals the worker). Replaces any earlier request."""

    def stop_requested(self, slot: int, execution_id: str) -> bool:
        """Worker: whether its supervisor asked it to stop ``execution_id``."""

    def clear(self, slot: int) -> None:
        """Supervisor: empties the slot of a worker that is gone."""
