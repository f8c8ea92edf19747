"""A TCP proxy in front of a redis-server that can make its pub/sub connections go silent: the
sockets stay open at both ends and nothing passes any more, as when a NAT or a firewall forgets a
connection. Neither Redis nor its client learns of it from the network; only an unanswered
request tells. The other connections go on as before, and new ones pass normally."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    subscriber: bool = False  # the client has sent a SUBSCRIBE (or PSUBSCRIBE)
    silent: bool = False  # what either end sends is dropped
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.closed.set()
        for end in (self.client, self.server):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


class FreezingProxy:
    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.links: list[_Link] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def silence_subscribers(self) -> int:
        """Silences every open connection that has subscribed; returns how many."""
        with self.lock:
            links = [link for link in self.links if link.subscriber and not link.closed.is_set()]
        for link in links:
            link.silent = True
        return len(links)

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for link in self.links:
                link.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            link = _Link(client, socket.create_connection(("127.0.0.1", self.server_port)))
            with self.lock:
                self.links.append(link)
            threading.Thread(target=self._pump, args=(link, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(link, False), daemon=True).start()

    def _pump(self, link: _Link, upstream: bool) -> None:
        """Copies one direction of ``link`` until either end closes; drops the bytes while the
        link is silent (so a closing end is still seen, and closes the other)."""
        source, sink = (link.client, link.server) if upstream else (link.server, link.client)
        try:
            while data := source.recv(65536):
                if upstream and b"SUBSCRIBE" in data.upper():
                    link.subscriber = True
                if not link.silent:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            link.close()
