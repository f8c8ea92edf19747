"""A private redis-server on a free loopback port, for the demo and the tests.

It runs with no persistence in a temporary directory and is stopped (and the directory
removed) by ``stop()`` or on leaving the ``with`` block.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import redis

START_DEADLINE_SECONDS = 10.0


class RedisServerError(RuntimeError):
    """redis-server is missing or would not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedRedis:
    def __init__(
        self,
        executable: str = "redis-server",
        unix_socket: bool = False,
        password: str | None = None,
        tls_files: tuple[str, str, str] | None = None,
    ):
        """``unix_socket`` also listens on ``<dir>/redis.sock``; ``password`` is required of
        clients; ``tls_files`` (certificate, key, CA certificate: PEM files) also listens for TLS
        on ``tls_port``."""
        found = shutil.which(executable)
        if found is None:
            raise RedisServerError(
                f"{executable} not found: install Redis (Debian: apt-get install redis-server)"
            )
        self.executable = found
        self.unix_socket = unix_socket
        self.password = password
        self.tls_files = tls_files
        self.tls_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.directory: str | None = None
        self.port = 0

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    @property
    def unix_path(self) -> str | None:
        return f"{self.directory}/redis.sock" if self.unix_socket and self.directory else None

    def _command(self) -> list[str]:
        assert self.directory is not None
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        if self.unix_socket:
            command += ["--unixsocket", f"{self.directory}/redis.sock", "--unixsocketperm", "700"]
        if self.password:
            command += ["--requirepass", self.password]
        if self.tls_files:
            certificate, key, ca_certificate = self.tls_files
            command += [
                "--tls-port",
                str(self.tls_port),
                "--tls-cert-file",
                certificate,
                "--tls-key-file",
                key,
            ]
            command += ["--tls-ca-cert-file", ca_certificate, "--tls-auth-clients", "no"]
        return command

    def start(self, attempts: int = 3) -> str:
        """Starts the server and waits until it answers PING; returns its URL."""
        self.directory = tempfile.mkdtemp(prefix="jobpool-redis-")
        for _ in range(attempts):
            self.port = _free_port()
            self.tls_port = _free_port() if self.tls_files else 0
            self.process = subprocess.Popen(
                self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_until_ready():
                return self.url
            self._terminate()  # most likely the port was taken in between: try another
        self.stop()
        raise RedisServerError(f"redis-server would not start after {attempts} attempts")

    def _wait_until_ready(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.2, password=self.password
        )
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    # Another server may hold the port (ours then exits, failing to bind): the
                    # one that answers must be ours, or this would hand out a stranger's server.
                    if client.ping():
                        return int(client.info("server")["process_id"]) == self.process.pid
                except redis.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop(self) -> None:
        self._terminate()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
