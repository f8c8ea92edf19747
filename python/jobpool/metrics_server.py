"""Serving a collector's metrics over HTTP with prometheus-client (an optional dependency:
``pip install jobpool[metrics]``), for ``jobpool start --metrics-port`` and ``jobpool exporter``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .exceptions import JobpoolError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.registry import Collector, CollectorRegistry


def require_prometheus_client() -> None:
    """Raises a JobpoolError saying what to install when prometheus-client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise JobpoolError(
            "metrics need prometheus-client: pip install 'jobpool[metrics]' (or prometheus-client)"
        ) from None


def registry_of(collector: Collector) -> CollectorRegistry:
    """A registry holding ``collector`` alone (not prometheus-client's global one: no metrics of
    the client's own, nor of whatever else the process imported)."""
    require_prometheus_client()
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def serve_in_thread(collector: Collector, host: str, port: int) -> WSGIServer:
    """Serves ``collector``'s metrics at http://host:port/ (any path) from a daemon thread. A
    process forked afterwards (a pool's worker) closes its copy of the listening socket: a worker
    that outlives its supervisor for a moment must not keep the port from the next one."""
    registry = registry_of(collector)
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise JobpoolError(f"cannot serve metrics on {host}:{port}: {error}") from None
    os.register_at_fork(after_in_child=server.socket.close)
    return server
