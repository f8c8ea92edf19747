"""A supervisor's subscription to its workers' command channels, ``<prefix>:pubsub:<worker>``.

It subscribes to the exact channel of each live worker, as RQ's workers subscribe to their own,
rather than to a pattern: a Redis ACL that grants channels (``&rq:*``) also refuses a pattern
subscription that is not one of its own patterns, and then no command would arrive.

A subscription's connection can be lost without a word: the server closes it (``CLIENT KILL``, a
restart), or the path to the server forgets it (a NAT or firewall timeout, a proxy), and then
nothing ever arrives on it. A closed connection fails at the next read; a silent one is found by
a PING every ``PING_SECONDS`` that is not answered within ``SILENT_SECONDS``. Either way the
connection is dropped, and the next ``follow`` subscribes to every live worker's channel anew,
on a new connection.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from redis.client import PubSub

from . import keys

logger = logging.getLogger("jobpool.supervisor")

PING_SECONDS = 5.0
SILENT_SECONDS = 3.0

Command = tuple[str, dict[str, Any]]
"""A worker's name, and the command (RQ's JSON message, decoded) sent to it."""


class CommandChannels:
    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection
        self.pubsub: PubSub | None = None
        self.workers: set[str] = set()  # whose channels the connection is subscribed to
        self.pinged_at: float | None = None  # when the PING still unanswered was sent
        self.next_ping = 0.0

    def follow(self, workers: set[str]) -> None:
        """Subscribes to the channels of ``workers`` (the live ones) that it does not follow yet,
        and unsubscribes from those of workers gone. After ``drop``, on a new connection."""
        if self.pubsub is None:
            self.pubsub = self.connection.pubsub()
            self.workers = set()
            self.pinged_at = None
        if workers - self.workers:
            self.pubsub.subscribe(*(keys.worker_commands(name) for name in workers - self.workers))
        if self.workers - workers:
            self.pubsub.unsubscribe(*(keys.worker_commands(name) for name in self.workers - workers))
        self.workers = set(workers)

    def receive(self, wait: float = 0.0) -> list[Command]:
        """The commands that have arrived (waiting up to ``wait`` seconds for the first message),
        and PING answers."""
        assert self.pubsub is not None, "follow() first"
        commands = []
        while (message := self.pubsub.get_message(timeout=wait)) is not None:
            wait = 0.0
            if message["type"] == "pong":
                self.pinged_at = None
            elif message["type"] == "message":
                command = _command(message)
                if command is not None:
                    commands.append(command)
        return commands

    def check(self) -> None:
        """PINGs the connection now and then; drops it when a PING went unanswered too long.
        Only while it follows a worker: a connection with no subscription reads nothing."""
        assert self.pubsub is not None, "follow() first"
        now = time.monotonic()
        if not self.workers:
            self.pinged_at = None
        elif self.pinged_at is not None and now - self.pinged_at > SILENT_SECONDS:
            logger.warning(
                "The subscription to worker commands went silent (no answer to a PING in %.0f s); "
                "subscribing again on a new connection",
                SILENT_SECONDS,
            )
            self.drop()
        elif self.pinged_at is None and now >= self.next_ping:
            self.pubsub.ping()
            self.pinged_at = now
            self.next_ping = now + PING_SECONDS

    def drop(self) -> None:
        """Closes the subscription's connection (lost, or silent); ``follow`` makes a new one."""
        if self.pubsub is not None:
            self.pubsub.close()
            self.pubsub = None


def _command(message: dict[str, Any]) -> Command | None:
    channel = message["channel"].decode(errors="replace")
    try:
        command = json.loads(message["data"])
    except (ValueError, TypeError):
        command = None
    if not isinstance(command, dict):
        logger.warning("Unreadable command on %s: %r", channel, message["data"][:200])
        return None
    return channel[len(keys.worker_commands("")) :], command
