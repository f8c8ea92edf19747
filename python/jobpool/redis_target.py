"""Where Redis is, for the Rust core: parsed once, here, with redis-py's own rules, from a URL or
from a redis-py client, and handed to ``_native.Core`` as plain fields."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
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
    if connection_class is not None and issubclass(connection_class, SSLConnection):
        fields.update(_tls_fields(options))
    return fields


def _tls_fields(options: dict[str, Any]) -> dict[str, Any]:
    """rediss:// settings, as redis-py names them (ssl_cert_reqs, ssl_ca_certs, ssl_certfile,
    ssl_keyfile), with the files read."""
    cert_reqs = options.get("ssl_cert_reqs", "required")
    fields: dict[str, Any] = {"tls": True, "tls_verify": cert_reqs not in ("none", ssl.CERT_NONE, None)}
    try:
        if ca_certs := options.get("ssl_ca_certs"):
            fields["tls_ca_certificate"] = Path(ca_certs).read_bytes()
        if certfile := options.get("ssl_certfile"):
            keyfile = options.get("ssl_keyfile") or certfile
            fields["tls_client_certificate"] = (Path(certfile).read_bytes(), Path(keyfile).read_bytes())
    except OSError as exc:
        raise InvalidRedisUrl(f"cannot read a TLS file: {exc}") from exc
    return fields


def connect_core(source: redis.Redis | str) -> _native.Core:
    """A Rust core for ``source`` (it connects lazily, in whichever process first uses it)."""
    return _native.Core(keys.PREFIX, **target_of(source))


_process_cores: dict[tuple[int, tuple[tuple[str, Any], ...]], _native.Core] = {}
"""The cores ``process_core`` made, by (process id, target)."""


def process_core(source: redis.Redis | str) -> _native.Core:
    """This process's core for the Redis ``source`` points at, made at its first use: the API's
    calls into the core (a registry's cleanup) share its connection and loaded scripts rather
    than each opening its own. A forked child makes its own: its parent's cores stay in the
    table, never used (their lock may have been held at the fork) nor dropped (dropping closes
    what is the parent's connection)."""
    key = (os.getpid(), tuple(sorted(target_of(source).items())))
    core = _process_cores.get(key)
    if core is None:
        core = _process_cores.setdefault(key, connect_core(source))
    return core
