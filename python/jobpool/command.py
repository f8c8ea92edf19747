"""Commands to workers: RQ's pub/sub messages on ``<prefix>:pubsub:<worker_name>``, so RQ's own
senders and jobpool's reach the same workers."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from . import keys
from .exceptions import InvalidJobOperation
from .executions import Execution
from .job import Job
from .serializers import Serializer


def publish_command(connection: Redis, worker_name: str, command: str, **kwargs: Any) -> int:
    """Publishes ``{"command": command, **kwargs}`` on the worker's channel, as ``send_command``
    does, and returns how many subscribers received it: 0 when nothing listens on that channel
    (the worker is gone, or its pool cannot subscribe). A jobpool pool's supervisor, or an RQ
    worker, counts as one."""
    payload = {"command": command, **kwargs}
    return int(connection.publish(keys.worker_commands(worker_name), json.dumps(payload)))


def send_command(connection: Redis, worker_name: str, command: str, **kwargs: Any) -> None:
    """Publishes ``{"command": command, **kwargs}`` on the worker's channel, as RQ does."""
    publish_command(connection, worker_name, command, **kwargs)


def send_shutdown_command(connection: Redis, worker_name: str) -> None:
    """Asks the worker to finish its job and stop (a warm shutdown)."""
    send_command(connection, worker_name, "shutdown")


def send_kill_horse_command(connection: Redis, worker_name: str) -> None:
    """Asks the worker to kill what is running its current job."""
    send_command(connection, worker_name, "kill-horse")


def send_stop_job_command(connection: Redis, job_id: str, serializer: Serializer | str | None = None) -> None:
    """Asks the worker running a job to stop it (it ends as stopped, and is not retried), as RQ
    does: NoSuchJobError for an unknown job, InvalidJobOperation for one that no worker is
    running, and no word on whether a worker received it (``jobpool stop-job`` checks that)."""
    job = Job.fetch(job_id, connection=connection, serializer=serializer)
    if not job.worker_name:
        raise InvalidJobOperation(f"Job {job_id} is not running, so it cannot be stopped")
    send_command(connection, job.worker_name, "stop-job", job_id=job.id)


def send_stop_execution_command(connection: Redis, job_id: str, execution_id: str) -> None:
    """Asks the worker running one execution of a job to stop it (it ends as stopped), as RQ
    does: InvalidJobOperation if no worker runs that execution (its record is gone)."""
    try:
        execution = Execution.fetch(id=execution_id, job_id=job_id, connection=connection)
    except ValueError:
        raise InvalidJobOperation("Execution is not running") from None
    send_command(
        connection, execution.worker_name, "stop-execution", job_id=job_id, execution_id=execution_id
    )
