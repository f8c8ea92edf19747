"""systemd's notify protocol (sd_notify), in a few lines and no dependency: datagrams such as
``READY=1`` sent to the unix socket named by ``NOTIFY_SOCKET``."""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    """Sends notifications when the service runs under systemd with Type=notify, else nothing."""

    def __init__(self, environ: dict[str, str] | None = None):
        environ = dict(os.environ) if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address  # abstract namespace
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() else None

    def notify(self, *fields: str) -> None:
        if not self.address:
            return
        # systemd gone (shutting down, say), or not reading (its queue full): nothing to tell. The
        # send never blocks: a supervisor that waits on its notifications stops reaping its workers.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.setblocking(False)
            sock.sendto("\n".join(fields).encode(), self.address)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")
