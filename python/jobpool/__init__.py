"""jobpool: a Redis job queue with RQ's API and RQ's Redis data.

``import rq`` becomes ``import jobpool``: the names below, and the modules ``jobpool.job``,
``jobpool.queue``, ``jobpool.registry``, ``jobpool.results``, ``jobpool.executions``,
``jobpool.serializers``, ``jobpool.exceptions``, ``jobpool.command``, ``jobpool.decorators`` and
``jobpool.cron`` (with ``jobpool.cron_job_registry`` and ``jobpool.cron_scheduler_registry``) and
``jobpool.group``, mirror RQ's (``Group`` is also exported here; RQ has it in ``rq.group`` only).
"""

# Loaded with the package, as ``import rq`` loads its modules, so ``jobpool.registry.X`` just works.
from . import command, decorators, executions, group, registry, results, serializers  # noqa: F401
from ._native import __version__
from .callbacks import Callback
from .group import Group
from .job import Retry, cancel_job, get_current_job, requeue_job
from .queue import Queue
from .rate_limit import RateLimit
from .repeat import Repeat
from .webhook import Webhook
from .worker import SimpleWorker, Worker

VERSION = __version__

__all__ = [
    "VERSION",
    "Callback",
    "Group",
    "Queue",
    "RateLimit",
    "Repeat",
    "Retry",
    "SimpleWorker",
    "Webhook",
    "Worker",
    "__version__",
    "cancel_job",
    "get_current_job",
    "requeue_job",
]
