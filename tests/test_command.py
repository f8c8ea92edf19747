"""Worker commands: RQ's pub/sub messages, so RQ's senders and jobpool's are interchangeable."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
import rq.command

import jobs
from jobpool import Queue
from jobpool.command import send_kill_horse_command, send_shutdown_command, send_stop_job_command
from jobpool.exceptions import InvalidJobOperation, NoSuchJobError


def _next_message(pubsub: Any, deadline_seconds: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            return json.loads(message["data"])
    raise AssertionError("no command arrived")


def test_commands_match_rq(connection: redis.Redis) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2)
    connection.hset(job.key, "worker_name", "w1")  # as a worker running it would have written
    pubsub = connection.pubsub()
    pubsub.subscribe("rq:pubsub:w1")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    for ours, theirs in (
        (
            lambda: send_shutdown_command(connection, "w1"),
            lambda: rq.command.send_shutdown_command(connection, "w1"),
        ),
        (
            lambda: send_kill_horse_command(connection, "w1"),
            lambda: rq.command.send_kill_horse_command(connection, "w1"),
        ),
        (
            lambda: send_stop_job_command(connection, job.id),
            lambda: rq.command.send_stop_job_command(connection, job.id),
        ),
    ):
        ours()
        theirs()
        assert _next_message(pubsub) == _next_message(pubsub)
    pubsub.close()


def test_stop_job_that_is_not_running(connection: redis.Redis) -> None:
    job = Queue("q", connection=connection).enqueue(jobs.add, 1, 2)
    with pytest.raises(InvalidJobOperation, match="not running"):
        send_stop_job_command(connection, job.id)
    with pytest.raises(NoSuchJobError):
        send_stop_job_command(connection, "unknown")
