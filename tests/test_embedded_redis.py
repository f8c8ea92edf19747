"""The private redis-server (``jobpool.embedded_redis``, the test suite's and the demo's) is never
a stranger's: a port another server holds is given up, not used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from jobpool import embedded_redis
from jobpool.embedded_redis import EmbeddedRedis


def test_a_port_another_server_holds_is_given_up_for_a_free_one(
    monkeypatch: pytest.MonkeyPatch, connection: redis.Redis
) -> None:
    """The first port offered is the session server's: the new server cannot bind it and exits,
    but that port still answers PING. The new one must not take the stranger for itself."""
    stranger_port = int(connection.connection_pool.connection_kwargs["port"])
    stranger_pid = int(connection.info("server")["process_id"])
    connection.set("stranger-key", "1")
    ports: Iterator[int] = iter([stranger_port])
    real_free_port = embedded_redis._free_port
    monkeypatch.setattr(embedded_redis, "_free_port", lambda: next(ports, None) or real_free_port())
    with EmbeddedRedis() as server:
        assert server.port != stranger_port
        client = redis.Redis.from_url(server.url)
        assert int(client.info("server")["process_id"]) != stranger_pid
        assert client.get("stranger-key") is None
        client.close()
    assert connection.get("stranger-key") == b"1"  # the stranger is untouched, and still up
