"""The Redis key schema: every key name jobpool and RQ share, in one table.

``rust/keys.rs`` holds the same table; ``tests/test_keys.py`` checks the two are identical.
The prefix comes from ``RQ_KEY_PREFIX`` (read once, at import, as RQ 3.0 does; default ``rq``).
It may hold a Redis Cluster hash tag such as ``{rq}``, which puts a deployment's keys in one slot.

Keys jobpool adds of its own are listed here too, each with a comment saying what it holds.
"""

from __future__ import annotations

import os
import re

from .exceptions import InvalidKeyPrefix

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:{}-]+")

TEMPLATES: dict[str, str] = {
    "job": "{prefix}:job:{job_id}",
    "job_dependents": "{prefix}:job:{job_id}:dependents",
    # RQ builds this one as prefix + ':' + id: the double colon is part of the data layout.
    "job_dependencies": "{prefix}:job::{job_id}:dependencies",
    "results": "{prefix}:results:{job_id}",
    "execution": "{prefix}:execution:{job_id}:{execution_id}",
    "executions": "{prefix}:executions:{job_id}",
    "queue": "{prefix}:queue:{queue}",
    "queues": "{prefix}:queues",
    "started": "{prefix}:wip:{queue}",
    "finished": "{prefix}:finished:{queue}",
    "failed": "{prefix}:failed:{queue}",
    "deferred": "{prefix}:deferred:{queue}",
    "ready": "{prefix}:ready:{queue}",
    "scheduled": "{prefix}:scheduled:{queue}",
    "canceled": "{prefix}:canceled:{queue}",
    "worker": "{prefix}:worker:{worker}",
    "worker_executions": "{prefix}:worker:{worker}:executions",
    "workers": "{prefix}:workers",
    "queue_workers": "{prefix}:workers:{queue}",
    "worker_commands": "{prefix}:pubsub:{worker}",
    "suspended": "{prefix}:suspended",
    "scheduler_lock": "{prefix}:scheduler-lock:{queue}",
    "scheduler": "{prefix}:scheduler:{scheduler}",
    "group": "{prefix}:group:{group}",
    "groups": "{prefix}:groups",
    "clean_groups": "{prefix}:clean_groups",
    # RQ 3.0's rate limits (rq/rate_limit.py): a limit's config hash (its concurrency), the jobs
    # holding its slots, the jobs waiting for one, and the set of every limit's name.
    "rate_limit": "{prefix}:rl:{rate_limit}",
    "rate_limit_allowed": "{prefix}:rl:{rate_limit}:allowed",
    "rate_limit_waiting": "{prefix}:rl:{rate_limit}:rate_limited",
    "rate_limit_keys": "{prefix}:rl-keys",
    # jobpool's own: a short list an idle worker blocks on; every push of a job id onto the queue
    # also pushes a marker here (see `push_job` in rust/lua/lib/library.lua). RQ never reads it.
    "wakeup": "{prefix}:jobpool:wakeup:{queue}",
    # jobpool's own: held by the pool whose supervisor recovers a queue's abandoned jobs.
    "maintenance_lock": "{prefix}:jobpool:maintenance-lock:{queue}",
    # jobpool's own: left by a supervisor that took back a worker's take ahead before Redis ran
    # it, so that the take takes nothing (see rust/lua/reclaim.lua). Short-lived, and rare.
    "reclaimed": "{prefix}:jobpool:reclaimed:{execution_id}",
    # RQ's cron data: a cron job's history of the jobs it enqueued, the names of the cron jobs
    # that enqueued lately, and the cron schedulers (a registry by heartbeat, and one hash each).
    "cron_job_history": "{prefix}:cron_job:{cron_job}:jobs",
    "cron_jobs": "{prefix}:cron_jobs",
    "cron_schedulers": "{prefix}:cron_schedulers",
    "cron_scheduler": "{prefix}:cron_scheduler:{scheduler}",
    # jobpool's own: held (a few seconds, refreshed) by the one cron scheduler that enqueues the
    # cron jobs of a configuration, whichever pools or hosts run it (see cron_claims.py).
    "cron_lock": "{prefix}:jobpool:cron-lock:{cron_config}",
    # jobpool's own: a cron job's last enqueued tick (epoch seconds), advanced in the transaction
    # that enqueues the tick's job, so that each tick is enqueued once.
    "cron_tick": "{prefix}:jobpool:cron-tick:{cron_job}",
}


def validate_prefix(prefix: str) -> str:
    """Returns ``prefix`` if RQ accepts it as a key prefix, else raises InvalidKeyPrefix."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise InvalidKeyPrefix(
            f"Invalid RQ_KEY_PREFIX {prefix!r}: only letters, digits, and _ . : - {{ }} are allowed"
        )
    return prefix


PREFIX = validate_prefix(os.environ.get("RQ_KEY_PREFIX", "rq"))


def _format_string(name: str) -> str:
    """The template ``name`` as a str.format string with the prefix filled in (its braces escaped)."""
    escaped_prefix = PREFIX.replace("{", "{{").replace("}", "}}")
    return TEMPLATES[name].replace("{prefix}", escaped_prefix)


def render(name: str, **values: str) -> str:
    """The key ``name`` under the current prefix; braces in values are copied literally."""
    return _format_string(name).format(**values)


def positional_template(name: str, field: str = "queue") -> str:
    """The template ``name`` as RQ's ``key_template`` attributes hold it, ``field`` as ``{0}``:
    ``<prefix>:<kind>:{0}`` (the prefix's braces escaped)."""
    return _format_string(name).replace("{" + field + "}", "{0}")


_JOB = _format_string("job")
_QUEUE = _format_string("queue")
_RESULTS = _format_string("results")

QUEUES = render("queues")
WORKERS = render("workers")
SUSPENDED = render("suspended")
CRON_JOBS = render("cron_jobs")
CRON_SCHEDULERS = render("cron_schedulers")
GROUPS = render("groups")
CLEAN_GROUPS = render("clean_groups")


def job(job_id: str) -> str:
    return _JOB.format(job_id=job_id)


def job_dependents(job_id: str) -> str:
    return render("job_dependents", job_id=job_id)


def job_dependencies(job_id: str) -> str:
    return render("job_dependencies", job_id=job_id)


def results(job_id: str) -> str:
    return _RESULTS.format(job_id=job_id)


def execution(job_id: str, execution_id: str) -> str:
    return render("execution", job_id=job_id, execution_id=execution_id)


def executions(job_id: str) -> str:
    return render("executions", job_id=job_id)


def queue(name: str) -> str:
    return _QUEUE.format(queue=name)


def queue_name_from_key(key: str) -> str:
    """The queue name in a ``<prefix>:queue:<name>`` key (as ``<prefix>:queues`` holds them)."""
    head = _QUEUE.format(queue="")
    if not key.startswith(head):
        raise ValueError(f"{key!r} is not a queue key under prefix {PREFIX!r}")
    return key[len(head) :]


def registry(kind: str, queue_name: str) -> str:
    """A registry's key; ``kind`` is one of started, finished, failed, deferred, ready,
    scheduled, canceled."""
    return render(kind, queue=queue_name)


def wakeup(queue_name: str) -> str:
    return render("wakeup", queue=queue_name)


def worker(name: str) -> str:
    return render("worker", worker=name)


def worker_executions(name: str) -> str:
    return render("worker_executions", worker=name)


def queue_workers(queue_name: str) -> str:
    return render("queue_workers", queue=queue_name)


def worker_commands(name: str) -> str:
    return render("worker_commands", worker=name)


def cron_job_history(name: str) -> str:
    return render("cron_job_history", cron_job=name)


def cron_scheduler(name: str) -> str:
    return render("cron_scheduler", scheduler=name)


def cron_lock(config_id: str) -> str:
    return render("cron_lock", cron_config=config_id)


def cron_tick(tick_id: str) -> str:
    return render("cron_tick", cron_job=tick_id)


def group(name: str) -> str:
    return render("group", group=name)


RATE_LIMIT_KEYS = render("rate_limit_keys")


def rate_limit(name: str) -> str:
    """A rate limit's config hash (RQ's ``RateLimitRegistry.config_key``)."""
    return render("rate_limit", rate_limit=name)


def rate_limit_allowed(name: str) -> str:
    return render("rate_limit_allowed", rate_limit=name)


def rate_limit_waiting(name: str) -> str:
    return render("rate_limit_waiting", rate_limit=name)


def rate_limit_templates() -> list[str]:
    """The rate-limit templates the scripts take (see rust/lua/lib/library.lua)."""
    mark = "\0"
    return [rate_limit(mark), rate_limit_allowed(mark), rate_limit_waiting(mark), RATE_LIMIT_KEYS]


# RQ's keys that only the Python API touches, so not in TEMPLATES (which rust/keys.rs mirrors).


def registry_cleaning(queue_name: str) -> str:
    """RQ's ``<prefix>:clean_registries:<queue>``: set while a worker cleans the queue's
    registries (``Queue.acquire_maintenance_lock``)."""
    return f"{PREFIX}:clean_registries:{queue_name}"


def intermediate_queue(queue_key: str) -> str:
    """RQ's intermediate queue of the queue whose key is ``queue_key``."""
    return f"{queue_key}:intermediate"
