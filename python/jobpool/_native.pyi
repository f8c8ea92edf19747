"""jobpool's Rust extension (hand-written stub, checked against the built module by mypy.stubtest)."""

__all__ = [
    "DEFAULT_JOB_TIMEOUT",
    "ID_MARK",
    "MAX_HELD",
    "Core",
    "Ending",
    "Ledger",
    "StepResult",
    "TakenJob",
    "Takes",
    "__version__",
    "dependents_templates",
    "key_templates",
    "lua_scripts",
    "rate_limit_templates",
    "render_key",
]

from typing import Literal, final

__version__: str
MAX_HELD: int
"""The most jobs a pool worker holds at once (``jobpool start --prefetch`` is capped to it)."""
DEFAULT_JOB_TIMEOUT: int
"""The timeout of a job that stores none (RQ's 180 s): the one the take script, the worker's soft
timeout and ``Queue.DEFAULT_TIMEOUT`` all use."""
ID_MARK: str
"""Where a template passed to a script takes a job id, queue or rate-limit name."""

_Failure = Literal["failed", "stopped", "abandoned", "retry", "max_retries_exceeded"]
"""Why an execution did not finish: it raised or timed out, was stopped on request, or its worker
died (its heartbeat lapsed); or it returned a ``Retry``: "retry" (it runs again, as the ending's
``retry`` says) or "max_retries_exceeded" (its Retry's max was reached: it fails)."""

_Recorded = Literal[
    "finished", "failed", "stopped", "retried", "scheduled", "released", "stale", "cleared", "deleted"
]
"""What recording an ending did: finished, failed or stopped as asked; "retried" or "scheduled"
(a failure with retries left); "released" (an abandoned execution of a job still held, which never
started: back to its queue); "stale" (already recorded, or no longer this execution's);
"cleared" / "deleted" (the job was canceled or deleted meanwhile)."""

_Released = Literal["released", "stale", "deleted"]
"""What putting back a held job did: "released" (back at the front of its queue); "stale" (no
longer started: put back or taken back already, or canceled); "deleted" (its hash is gone)."""

@final
class TakenJob:
    """A job a take took."""

    @property
    def queue(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def execution_id(self) -> str: ...
    @property
    def heartbeat_ttl(self) -> int: ...
    @property
    def fields(self) -> dict[str, bytes]:
        """The job hash, as stored."""

@final
class Ending:
    """How an execution ended, to record: finished (``failure`` None, with ``return_value``:
    base64 of the serialized value, None for None), or a ``failure`` with RQ's traceback fields
    (none: empty). A job that returned a Retry has it in ``return_value``; for "retry",
    ``retry`` is (its ``number_of_retries`` after this one, the seconds until it runs again, 0
    for at once onto its queue, whether at the queue's head); ValueError when either is missing."""

    def __new__(
        cls,
        job_id: str,
        execution_id: str,
        queue: str,
        started_at: float | None,
        working_seconds: float,
        failure: _Failure | None = None,
        return_value: bytes | None = None,
        exc_info: bytes | None = None,
        exc_string: bytes | None = None,
        retry: tuple[int, int, bool] | None = None,
    ) -> Ending: ...
    @property
    def job_id(self) -> str: ...
    @property
    def execution_id(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def working_seconds(self) -> float: ...
    @property
    def failure(self) -> _Failure | None: ...
    @property
    def return_value(self) -> bytes | None: ...
    @property
    def exc_info(self) -> bytes: ...
    @property
    def exc_string(self) -> bytes: ...
    @property
    def retry(self) -> tuple[int, int, bool] | None: ...

@final
class Takes:
    """A step's takes: a job from ``queues`` (priority order) for each of ``execution_ids``.
    ``held``: taken ahead, held until each starts; ``marked_held``: each stays marked held until
    a later step records it with its start (a worker that works in batches)."""

    def __new__(
        cls,
        queues: list[str],
        worker: str,
        execution_ids: list[str],
        heartbeat_ttl: int,
        held: bool = False,
        marked_held: bool = False,
    ) -> Takes: ...
    @property
    def queues(self) -> list[str]: ...
    @property
    def worker(self) -> str: ...
    @property
    def execution_ids(self) -> list[str]: ...
    @property
    def heartbeat_ttl(self) -> int: ...
    @property
    def held(self) -> bool: ...
    @property
    def marked_held(self) -> bool: ...

@final
class StepResult:
    """What a step did."""

    @property
    def outcomes(self) -> list[_Recorded]:
        """The outcome of each ending the step recorded, in order."""

    @property
    def taken(self) -> list[TakenJob]:
        """The jobs it took (the first takes: a take finds nothing only when every queue is
        empty)."""

def key_templates() -> list[tuple[str, str]]:
    """Every key template as (name, template); identical to ``jobpool.keys.TEMPLATES``."""

def render_key(name: str, prefix: str, values: list[tuple[str, str]]) -> str:
    """The key ``name`` under ``prefix``; raises KeyError for an unknown name or missing value."""

def dependents_templates(prefix: str) -> list[str]:
    """Under ``prefix``, the templates the scripts that release dependents take: job hash,
    dependencies set, queue list, deferred registry, wake-up list (each with ``ID_MARK``)."""

def rate_limit_templates(prefix: str) -> list[str]:
    """Under ``prefix``, the rate-limit templates the scripts take: config hash, allowed set,
    waiting set (each with ``ID_MARK``), then the set of rate limits."""

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
        marked_held: bool = False,
    ) -> TakenJob | None:
        """The next job from ``queues`` (priority order), marked started; None when all are empty
        (after blocking up to ``wait`` seconds, if given). ``heartbeat_ttl`` 0 derives it from the
        job's timeout. ``marked_held``: the job stays marked held until its record marks it
        started (a worker that works in batches)."""

    def fail(self, worker: str | None, ending: Ending, running: bool = False) -> _Recorded:
        """Records a failed, stopped or abandoned ``ending`` (retried when it has retries left),
        or a returned Retry; ValueError for a finished one (``step`` records those).
        ``running``: ``worker`` runs another job meanwhile (its state stays busy)."""

    def release(self, worker: str, job_id: str, execution_id: str, queue: str) -> _Released:
        """Puts back ``job_id``, which ``worker`` took ahead from ``queue`` under ``execution_id``
        and never started (it is stopping, or died holding it), at the front of its queue."""

    def step(
        self,
        worker: str,
        endings: list[Ending],
        takes: Takes | None,
        default_result_ttl: int,
        running: bool = False,
        defer: bool = False,
        mark_started: bool = False,
    ) -> StepResult | None:
        """A worker's step, in one round trip and one script run: records ``endings`` (with
        ``mark_started``, each job's start written with its record, if it is still marked held),
        then ``takes``. ``running``: a job runs while it is in flight. With ``defer``, sends it
        and returns None: ``collect`` returns what it did."""

    def collect(self) -> StepResult:
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
        self, queues: list[str], exc_info: bytes, exc_string: bytes, lapsed_by: float | None = None
    ) -> list[tuple[str, str, str, str]]:
        """Fails or retries lapsed executions (or lapsing by ``lapsed_by``, epoch seconds);
        (queue, job id, execution id, outcome) each."""

@final
class Ledger:
    """What each worker of a pool holds and runs, in memory shared across fork (make it before
    forking). A worker holds a batch of jobs taken ahead, started one after another; each is
    started by its worker or reclaimed by the supervisor, never both."""

    def __new__(cls, slots: int) -> Ledger: ...
    def __len__(self) -> int: ...
    def hold(self, slot: int, execution_ids: list[str]) -> None:
        """Worker: it is about to take the jobs of ``execution_ids`` (32 hex digits each, 1 to
        16 of them) ahead, to start in that order."""

    def start_held(self, slot: int) -> bool:
        """Worker: starts the next job it holds; False when the supervisor took it back first."""

    def shrink_held(self, slot: int, taken: int) -> bool:
        """Worker: its take ahead brought ``taken`` jobs, fewer than it held places for; False
        when the supervisor took the hold back first."""

    def drop_held(self, slot: int) -> bool:
        """Worker: gives up the jobs it holds; False when the supervisor took them back first."""

    def held(self, slot: int) -> tuple[int, list[str], float] | None:
        """Supervisor: (token, the execution ids not started, epoch seconds the running job
        began) of the jobs held in ``slot``, or None."""

    def reclaim(self, slot: int, token: int) -> bool:
        """Supervisor: takes back the jobs of the hold ``token`` not started; False when the
        worker started one or dropped them first."""

    def request_stop(self, slot: int, execution_id: str) -> None:
        """Supervisor: asks the worker in ``slot`` to stop ``execution_id``, running or about to
        start (then it signals the worker). Replaces any earlier request."""

    def stop_requested(self, slot: int, execution_id: str) -> bool:
        """Worker: whether its supervisor asked it to stop ``execution_id``."""

    def note_ended(self, slot: int, ending: Ending) -> bool:
        """Worker: appends ``ending`` (a job that ended, its record not sent yet) to its log of
        ended jobs; False when it does not fit (send the record before starting another job)."""

    def forget_ended(self, slot: int, count: int) -> None:
        """Worker: forgets the first ``count`` entries of its log (their records are written)."""

    def ended(self, slot: int) -> list[Ending]:
        """Supervisor, once the worker in ``slot`` is gone: the endings in its log of ended jobs."""

    def clear(self, slot: int) -> None:
        """Supervisor: empties the slot of a worker that is gone (its log of ended jobs too)."""
