"""What the benchmark suite hands each of its sections, and what a section hands back.

A section (``drain``, ``latency``, ...) is a module with ``run(context: Context) -> Section``. The
suite (``python -m bench``: ``bench/suite.py``) starts one private redis-server, runs the sections one
after another on it, and puts their figures into one JSON file and one markdown report.

A section's figures are frozen dataclasses, down to the last record, whose fields are the JSON's keys
in the JSON's order: ``figures_document`` writes them with ``dataclasses.asdict``, nothing else. A
figure derived from others (a median, a rate per job, a ratio) is a field too, worked out when the
record is made, by its ``of`` class method where it has one; what only the markdown needs is a
method or property, never in the JSON.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import Field, asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import psutil
import redis

from jobpool.embedded_redis import EmbeddedRedis


@dataclass(frozen=True)
class Profile:
    """How big a suite run is: ``full`` (``make bench``, the published figures), ``quick``
    (``make bench-quick``, under a minute) or ``tiny`` (the test suite: the harness runs, nothing
    more)."""

    name: str
    runs: int
    """Runs per figure; every figure is their median, printed with the min-max spread."""
    pool_sizes: tuple[int, ...]
    """Pool sizes of the drain section."""
    workloads: tuple[str, ...]
    """Names from ``workload.WORKLOADS`` the drain section runs."""
    dramatiq_pool_sizes: tuple[int, ...]
    """The pool sizes at which the drain section runs Dramatiq too (every workload)."""
    drain_seconds: float
    """About how long one drain of a pool of 1 lasts: sizes the queue from an expected rate."""
    enqueue_jobs: int
    """Jobs per enqueue-rate run (single enqueues; ``enqueue_many`` takes twice as many)."""
    cost_jobs: int
    """N of the cost-per-job measure (drains of N and 2N jobs)."""
    latency_seconds: float
    """How long the steady light load of the latency section lasts, per run."""
    latency_rate: float
    """Jobs per second of that load."""
    idle_sizes: tuple[int, ...]
    """Pool sizes of the idle section (with one size, its target is not judged)."""
    idle_window_seconds: float
    """The full profile's is 5 s: jobpool's supervisor heartbeats its workers every 5 s, so each
    window holds one heartbeat (shorter windows swing with it)."""
    memory_jobs: int
    """Jobs a pool runs before its memory is measured."""
    latency_of_fork_pool: bool
    """Whether the latency section measures RQ's default (fork per job) worker pool too."""
    recovery_kills: int
    """Busy workers killed per pool in the recovery section."""
    recovery_bound_seconds: float
    """How long a job is watched after its worker's kill (RQ's SimpleWorker never settles it)."""

    @property
    def publishable(self) -> bool:
        return self.name == "full"


PROFILES = {
    "full": Profile(
        name="full",
        runs=3,
        pool_sizes=(1, 2, 4, 8),
        workloads=("noop", "sleep_1ms", "burn_1ms"),
        dramatiq_pool_sizes=(1, 2, 8),
        drain_seconds=1.5,
        enqueue_jobs=3_000,
        cost_jobs=200,
        latency_seconds=5.0,
        latency_rate=200.0,
        idle_sizes=(1, 8, 32),
        idle_window_seconds=5.0,
        memory_jobs=10_000,
        latency_of_fork_pool=True,
        recovery_kills=3,
        recovery_bound_seconds=10.0,
    ),
    "quick": Profile(
        name="quick",
        runs=3,
        pool_sizes=(2,),
        workloads=("noop",),
        dramatiq_pool_sizes=(2,),
        drain_seconds=0.25,
        enqueue_jobs=300,
        cost_jobs=20,
        latency_seconds=0.5,
        latency_rate=200.0,
        idle_sizes=(2,),
        idle_window_seconds=0.5,
        memory_jobs=200,
        latency_of_fork_pool=False,
        recovery_kills=1,
        recovery_bound_seconds=1.0,
    ),
    "tiny": Profile(
        name="tiny",
        runs=1,
        pool_sizes=(1, 2),
        workloads=("noop",),
        dramatiq_pool_sizes=(2,),
        drain_seconds=0.1,
        enqueue_jobs=20,
        cost_jobs=5,
        latency_seconds=0.5,
        latency_rate=50.0,
        idle_sizes=(1, 2),
        idle_window_seconds=0.5,
        memory_jobs=20,
        latency_of_fork_pool=False,
        recovery_kills=1,
        recovery_bound_seconds=1.0,
    ),
}


@dataclass(frozen=True)
class Context:
    """What every section runs against."""

    profile: Profile
    url: str
    """The suite's private redis-server."""
    admin: redis.Redis
    """A client of it for the benchmark's own reads and writes (never counted as a pool's)."""
    redis_process: psutil.Process
    log_dir: Path
    """Where pools write their logs (a temporary directory)."""


@contextmanager
def private_context(profile: Profile, log_prefix: str) -> Iterator[Context]:
    """A private redis-server on loopback, started for the run and stopped after it, and the
    Context on it (its logs in a temporary directory named from ``log_prefix``)."""
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory(prefix=log_prefix) as log_dir:
        admin = redis.Redis.from_url(server.url)
        assert server.process is not None
        try:
            yield Context(profile, server.url, admin, psutil.Process(server.process.pid), Path(log_dir))
        finally:
            admin.close()


@dataclass(frozen=True)
class Target:
    """A goal jobpool is measured against, and whether this run met it (sections name each)."""

    goal: str
    measured: str
    met: bool


class Section(Protocol):
    """A section's figures: a dataclass (see the module's docstring)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    name: str

    def markdown(self) -> list[str]:
        """Its part of the report: a ``##`` heading, the method in a sentence or two, tables."""
        ...

    def targets(self) -> dict[str, Target]:
        """The targets it judges, by name."""
        ...


def figures_document(sections: Mapping[str, Section]) -> dict[str, Any]:
    """The figures of a run's JSON: every target judged, by name, and every section's record."""
    return {
        "targets": {
            name: asdict(target)
            for section in sections.values()
            for name, target in section.targets().items()
        },
        "sections": {name: asdict(section) for name, section in sections.items()},
    }
