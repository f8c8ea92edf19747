"""The Redis key schema: every key name jobpool and RQ share, in one table.

The table is ``rust/keys.rs``'s, read from the core; ``tests/test_keys.py`` checks that both
languages render the same keys.
The prefix comes from ``RQ_KEY_PREFIX`` (read once, at import, as RQ 3.0 does; default ``rq``).
It may hold a Redis Cluster hash tag such as ``{rq}``, which puts a deployment's keys in one slot.

Keys jobpool adds of its own are in that table too, each with a comment saying what it holds.
"""

from __future__ import annotations

import os
import re

from . import _native
from .exceptions import InvalidKeyPrefix

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:{}-]+")

# The table is the core's (``rust/keys.rs``, where each of jobpool's own keys says what it holds):
# one table for both languages.
TEMPLATES: dict[str, str] = dict(_native.key_templates())


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


def scheduler_lock(queue_name: str) -> str:
    """RQ's lock of the scheduler that moves ``queue_name``'s due jobs onto it."""
    return render("scheduler_lock", queue=queue_name)


def scheduler(name: str) -> str:
    """RQ's hash of the scheduler ``name`` (its pid and host: ``Queue.scheduler_pid``)."""
    return render("scheduler", scheduler=name)


def maintenance_lock(queue_name: str) -> str:
    """Held by the pool whose supervisor recovers ``queue_name``'s abandoned jobs."""
    return render("maintenance_lock", queue=queue_name)


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


# The template lists the scripts take (a template holds ``_native.ID_MARK`` where a script puts
# a job id, queue or rate-limit name), rendered by the core under this prefix: their order is
# the scripts' (rust/lua/lib/library.lua), which rust/keys.rs's ``KeySchema`` keeps.
_DEPENDENTS_TEMPLATES = tuple(_native.dependents_templates(PREFIX))
_RATE_LIMIT_TEMPLATES = tuple(_native.rate_limit_templates(PREFIX))


def dependents_templates() -> list[str]:
    """What the scripts that release dependents take: job hash, dependencies set, queue list,
    deferred registry and wake-up list templates."""
    return list(_DEPENDENTS_TEMPLATES)


def rate_limit_templates() -> list[str]:
    """What the scripts take of a rate limit: its config hash, allowed set and waiting set
    templates, then the set of rate limits."""
    return list(_RATE_LIMIT_TEMPLATES)


# RQ's keys that only the Python API touches, so not in TEMPLATES (which rust/keys.rs mirrors).


def registry_cleaning(queue_name: str) -> str:
    """RQ's ``<prefix>:clean_registries:<queue>``: set while a worker cleans the queue's
    registries (``Queue.acquire_maintenance_lock``)."""
    return f"{PREFIX}:clean_registries:{queue_name}"


def intermediate_queue(queue_key: str) -> str:
    """RQ's intermediate queue of the queue whose key is ``queue_key``."""
    return f"{queue_key}:intermediate"
