"""``jobpool start`` as users run it: a subprocess against the test's private redis-server,
reporting to a real unix datagram socket as systemd's NOTIFY_SOCKET, with its log in a file.
The ``pool`` fixture (conftest.py) starts them and kills whatever is left at the end."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import psutil
import redis

import jobpool as jobpool_package
from conftest import wait_for
from support.redis_replies import Members

TESTS = Path(__file__).parent.parent  # tests/: the job modules, and this package
# The processes a test starts import the jobpool the test imports (a work tree's, say), not
# whichever one the interpreter would find by itself (an installed one).
PYTHONPATH = os.pathsep.join([str(TESTS), str(Path(jobpool_package.__file__).parent.parent)])


def jobpool(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """The ``jobpool`` command line, run to its end against ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "jobpool", *args, "-u", url], capture_output=True, text=True, timeout=60
    )


class Pool:
    """``jobpool start`` in a subprocess, told to report to our NOTIFY_SOCKET."""

    def __init__(self, url: str, directory: Path, *args: str, environ: dict[str, str] | None = None):
        self.url = url
        self.notify_path = directory / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.log = directory / "pool.log"
        self.messages: list[str] = []
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.notify_path),
            "PYTHONPATH": PYTHONPATH,
            **(environ or {}),
        }
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobpool", "start", "-u", url, "--name", "testpool", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def wait_for_message(self, field: str, deadline_seconds: float = 20.0) -> str:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            self.notify.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(message)
            if field in message.split("\n"):
                return message
        raise AssertionError(f"no {field} from the pool; its log:\n{self.log.read_text()}")

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def busy_worker(self, job_id: str) -> psutil.Process:
        found: list[psutil.Process] = []

        def look() -> bool:
            found[:] = [p for p in self.workers() if job_id in " ".join(p.cmdline())]
            return bool(found)

        wait_for(look)
        return found[0]

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the pool did not exit; its log:\n{self.log.read_text()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            workers = self.workers()
            self.process.kill()  # its workers die with it (PR_SET_PDEATHSIG); make sure of it
            self.process.wait()
            for worker in workers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker.kill()
        self.notify.close()


def lapse_executions(connection: redis.Redis, queue: str) -> None:
    """Makes every execution in ``queue``'s started registry look lapsed now, as 30 s without a
    heartbeat would (a killed or stalled pool's), so a test need not wait for its ttl."""
    for member in cast(Members, connection.zrange(f"rq:wip:{queue}", 0, -1)):
        connection.zadd(f"rq:wip:{queue}", {member: 0})
