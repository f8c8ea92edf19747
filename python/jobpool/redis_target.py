"""Where Redis is, for the Rust core: parsed once, here, with redis-py's own rules, from a URL or
from a redis-py client, and handed to ``_native.Core`` as plain fields."""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from . import _native, keys
from .exceptions import InvalidRedisUrl


def target_of(source: redis.Redis | str) -> dict[str, Any]:
    """The Core's connection fields (host, port or unix_path, db, username, password)."""
    if isinstance(source, str):
        try:
            options = parse_url(source)
        except ValueError as exc:
            raise InvalidRedisUrl(f"{source!r} is not a Redis URL: {exc}") from exc
        connection_class = options.get("connection_class")
    else:
        pool = source.connection_pool
        options = dict(pool.connection_kwargs)
        connection_class = pool.connection_class
    if connection_class is not None and issubclass(connection_class, SSLConnection):
        raise InvalidRedisUrl("TLS (rediss://) connections are not supported by jobpool's worker yet")
    fields: dict[str, Any] = {
        "db": int(options.get("db") or 0),
        "username": options.get("username"),
        "password": options.get("password"),
    }
    if (
        connection_class is not None and issubclass(connection_class, UnixDomainSocketConnection)
    ) or options.get("path"):
        fields["unix_path"] = options["path"]
    else:
        fields["host"] = options.get("host") or "localhost"
        fields["port"] = int(options.get("port") or 6379)
    return fields


def connect_core(source: redis.Redis | str) -> _native.Core:
    """A Rust core for ``source`` (it connects lazily, in whichever process first uses it)."""
    return _native.Core(keys.PREFIX, **target_of(source))
