"""Commands to workers: RQ's pub/sub messages on ``<prefix>:pubsub:<worker_name>``, so RQ's own
senders and jobpool's reach the same workers."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from . import keys
from .exceptions import InvalidJobOperation
from .job import Job
from .serializers import Serializer


def send_command(connection: Redis, worker_name: str, command: str, **kwargs: Any) -> None:
    payload = {"command": command, **kwargs}
    connection.publish(keys.worker_commands(worker_name), json.dumps(payload))


def send_shutdown_command(connection: Redis, worker_name: str) -> None:
    """Asks the worker to finish its job and stop (a warm shutdown)."""
    send_command(connection, worker_name, "shutdown")


def send_kill_horse_command(connection: Redis, worker_name: str) -> None:
    """Asks the worker to kill what is running its current job."""
    send_command(connection, worker_name, "kill-horse")


def send_stop_job_command(connection: Redis, job_id: str, serializer: Serializer | str | None = None) -> None:
    """Stops a running job (it ends as stopped, and is not retried). NoSuchJobError for an unknown
    job, InvalidJobOperation for one that no worker is running."""
    job = Job.fetch(job_id, connection=connection, serializer=serializer)
    if not job.worker_name:
        raise InvalidJobOperation(f"Job {job_id} is not running, so it cannot be stopped")
    send_command(connection, job.worker_name, "stop-job", job_id=job.id)
