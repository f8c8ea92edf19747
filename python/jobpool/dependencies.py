"""Dependencies between jobs: ``Dependency`` and ``depends_on`` as users give them, and the
release of a job's dependents once their parents are met (one script, lua/release_dependents.lua,
by the rules of lua/lib/library.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import keys, scripts
from .exceptions import InvalidJobDependency
from .job_hash import JobFields, validate_job_id
from .timeutils import epoch_seconds, utcformat, utcnow


class Dependency:
    """What a job waits for: ``Dependency(jobs, allow_failure=False, enqueue_at_front=False)``."""

    def __init__(
        self,
        jobs: JobFields | str | Sequence[JobFields | str],
        allow_failure: bool = False,
        enqueue_at_front: bool = False,
    ):
        listed = [jobs] if isinstance(jobs, (JobFields, str)) else list(jobs)
        if not listed:
            raise InvalidJobDependency("Dependency needs at least one job or job id")
        for item in listed:
            if not isinstance(item, (JobFields, str)):
                raise InvalidJobDependency(f"A dependency must be a Job or a job id, not {item!r}")
        self.dependencies = listed
        self.allow_failure = allow_failure
        self.enqueue_at_front = enqueue_at_front

    @property
    def job_ids(self) -> list[str]:
        return [
            item.id if isinstance(item, JobFields) else validate_job_id(item) for item in self.dependencies
        ]


def parse_depends_on(depends_on: Any) -> tuple[list[str], bool | None, bool | None]:
    """(parent ids, allow failure, enqueue at front) from ``depends_on`` as users pass it: a Job,
    an id, a Dependency, or a list of those. As in RQ, the flags of any Dependency apply to the
    whole, and stay None (unwritten) when no Dependency is given."""
    items = depends_on if isinstance(depends_on, (list, tuple)) else [depends_on]
    parent_ids: list[str] = []
    allow_failure: bool | None = None
    enqueue_at_front: bool | None = None
    for item in items:
        if isinstance(item, Dependency):
            parent_ids.extend(item.job_ids)
            allow_failure = allow_failure or item.allow_failure
            enqueue_at_front = enqueue_at_front or item.enqueue_at_front
        elif isinstance(item, JobFields):
            parent_ids.append(item.id)
        elif isinstance(item, str):
            parent_ids.append(validate_job_id(item))
        else:
            raise InvalidJobDependency(f"depends_on takes Jobs, job ids or Dependency objects, not {item!r}")
    if not parent_ids:
        raise InvalidJobDependency("depends_on was given no job")
    return parent_ids, allow_failure, enqueue_at_front


def release_dependents(
    client: Any, job_id: str, skip_parent: bool = False, met_parent: str | None = None
) -> Any:
    """Enqueues the dependents of ``job_id`` whose dependencies are all met now (one script).
    With ``skip_parent``, ``job_id`` itself counts as met (RQ's rule when it is canceled with
    enqueue_dependents); or, given ``met_parent``, that parent does (RQ's ``exclude_job_id``)."""
    counted_met = met_parent if met_parent is not None else job_id if skip_parent else ""
    return scripts.run(
        "release_dependents",
        client,
        keys=[keys.job_dependents(job_id), keys.QUEUES],
        args=[
            *keys.dependents_templates(),
            utcformat(utcnow()),
            "1" if counted_met else "0",
            counted_met or job_id,
            *keys.rate_limit_templates(),
            epoch_seconds(),
        ],
    )
