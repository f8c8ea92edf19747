"""jobpool: a Redis job queue with RQ's API and RQ's Redis data.

``import rq`` becomes ``import jobpool``: the names below, and the modules ``jobpool.job``,
``jobpool.queue``, ``jobpool.registry``, ``jobpool.results``, ``jobpool.executions``,
``jobpool.serializers``, ``jobpool.exceptions``, ``jobpool.command`` and ``jobpool.decorators``,
mirror RQ's.
"""

# Loaded with the package, as ``import rq`` loads its modules, so ``jobpool.registry.X`` just works.
from . import command, decorators, executions, registry, results, serializers  # noqa: F401
from ._native import __version__
from .callbacks import Callback
from .job import Retry, cancel_job, get_current_job, requeue_job
from .queue import Queue
from .rate_limit import RateLimit
from .repeat import Repeat
from .worker import Worker

VERSION = __version__
SimpleWorker = Worker  # RQ's name for a worker that runs jobs in its own process

__all__ = [
    "VERSION",
    "Callback",
    "Queue",
    "RateLimit",
    "Repeat",
    "Retry",
    "SimpleWorker",
    "Worker",
    "__version__",
    "cancel_job",
    "get_current_job",
    "requeue_job",
]
