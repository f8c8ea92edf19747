"""A standalone worker's commands: RQ's pub/sub messages on its channel,
``<prefix>:pubsub:<worker>``, heard by a thread of the worker's process, as RQ's workers hear
them (a pool's supervisor hears its workers' instead: ``command_channels.py``).

The thread waits on its own connection's subscription, so listening costs the worker's loop
nothing: no Redis call a job. It subscribes again after a lost or silent connection, as the
supervisor does (``CommandChannels``). What it does with a command, as RQ's workers do:

- ``shutdown``: SIGINT to the worker's main thread, a warm shutdown (a second one while a job
  runs is a cold one, as a second SIGINT is);
- ``stop-job``, ``stop-execution``: if the worker runs that job (that execution), SIGUSR2 to the
  main thread, whose handler ends the job as ``stopped``; the worker carries on;
- ``kill-horse``: the same, but the job ends as ``failed`` (retried if it has retries left), as
  when RQ's work horse or a pool's worker is killed.

A command for a job the worker does not run is logged and ignored, as RQ's workers ignore it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from typing import Any, Protocol

from redis import Redis

from ._native import TakenJob
from .command_channels import CommandChannels

logger = logging.getLogger("jobpool.worker")

# The longest the thread waits for a message before it looks whether to stop.
LISTEN_SECONDS = 1.0
# How long it waits before subscribing again after its connection failed.
RETRY_SECONDS = 2.0


class CommandedWorker(Protocol):
    """What the listener reads and sets on its worker (``worker.BaseWorker``, which starts the
    listener and so sits above it): the job it runs, and the stop request a command leaves it."""

    @property
    def connection(self) -> Redis: ...
    @property
    def name(self) -> str: ...

    _current: TakenJob | None
    _stop_request: tuple[str, bool] | None


class CommandListener:
    """Subscribes ``worker`` to its channel now, then applies its commands from a daemon thread
    until ``close``."""

    def __init__(self, worker: CommandedWorker, main_thread: threading.Thread) -> None:
        self.worker = worker
        self.main_thread_id = main_thread.ident
        self.channels = CommandChannels(worker.connection)
        self.channels.follow({worker.name})
        self.closed = threading.Event()
        # Held while a signal is sent: once close() has it, no signal comes after the worker has
        # put back its signal handlers (a SIGUSR2 nobody handles would end the process).
        self.signalling = threading.Lock()
        self.thread = threading.Thread(
            target=self._listen, name=f"jobpool-commands-{worker.name}", daemon=True
        )
        # The thread starts with every signal blocked (it inherits this thread's mask), so that a
        # signal sent to the process reaches the main thread, and interrupts a job's wait there.
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            self.thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)

    def close(self) -> None:
        """No more commands: the thread sends no signal from now on; its subscription is closed,
        which ends its wait, and it is given a second to end (as RQ's workers give theirs)."""
        with self.signalling:
            self.closed.set()
        # Ends the thread's wait by shutting its connection's socket; the thread closes the
        # connection itself (a PubSub is not for two threads to close).
        connection = getattr(self.channels.pubsub, "connection", None)
        sock = getattr(connection, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=LISTEN_SECONDS)

    def _listen(self) -> None:
        while not self.closed.is_set():
            try:
                self.channels.follow({self.worker.name})
                for _, command in self.channels.receive(wait=LISTEN_SECONDS):
                    self.apply(command)
                self.channels.check()
            except Exception as error:  # a Redis error: the thread must outlive it
                if self.closed.is_set():
                    break
                logger.warning(
                    "Worker %s: listening for commands failed (%s); subscribing again in %.0f s",
                    self.worker.name,
                    error,
                    RETRY_SECONDS,
                )
                self.channels.drop()
                self.closed.wait(RETRY_SECONDS)
        self.channels.drop()

    def apply(self, command: dict[str, Any]) -> None:
        kind = command.get("command")
        name = self.worker.name
        if kind == "shutdown":
            logger.info("Worker %s: shutdown command", name)
            self._signal(signal.SIGINT)
        elif kind in ("stop-job", "stop-execution", "kill-horse"):
            current = self.worker._current
            wanted = kind == "kill-horse" or (
                current is not None
                and command.get("job_id") == current.job_id
                and command.get("execution_id") in (None, current.execution_id)
            )
            if current is None or not wanted:
                logger.info("Worker %s is not running job %s: %s ignored", name, command.get("job_id"), kind)
                return
            logger.info("Worker %s: %s command for job %s", name, kind, current.job_id)
            self.worker._stop_request = (current.execution_id, kind == "kill-horse")
            self._signal(signal.SIGUSR2)
        else:
            logger.warning("Worker %s: unknown command %r ignored", name, kind)

    def _signal(self, signum: int) -> None:
        with self.signalling:
            if not self.closed.is_set() and self.main_thread_id is not None:
                signal.pthread_kill(self.main_thread_id, signum)
