"""The Lua scripts of ``rust/lua/``, runnable from redis-py.

Their text comes from the extension (``_native.lua_scripts()``), so producer and worker run the
same code. Each call is one EVALSHA; redis-py reloads a script the server lost (NOSCRIPT) and,
inside a pipeline, checks for missing scripts before it executes.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

from . import _native

ID_MARK: str = _native.ID_MARK
"""Where a template passed to a script takes the job id or queue name (see the scripts); the
core's (rust/keys.rs)."""

_SCRIPTS: dict[str, Script] = {
    name: Script(None, source.encode())  # type: ignore[arg-type]  # bytes need no client encoder
    for name, source in _native.lua_scripts()
}


def run(name: str, client: Any, keys: list[str], args: list[Any]) -> Any:
    """Runs script ``name`` on ``client`` (a connection or a pipeline)."""
    return _SCRIPTS[name](keys=keys, args=args, client=client)
