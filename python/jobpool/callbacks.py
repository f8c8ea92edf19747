"""Callback: a function the worker calls when a job succeeds, fails or is stopped."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .durations import parse_timeout
from .exceptions import FunctionReferenceError
from .functions import resolve_function_reference
from .timeouts import death_penalty

DEFAULT_CALLBACK_TIMEOUT = 60


class Callback:
    """``Callback(func_or_dotted_path, timeout=60)``: ``on_success(job, connection, result)``,
    ``on_failure(job, connection, type, value, traceback)``, ``on_stopped(job, connection)``."""

    def __init__(self, func: str | Callable[..., Any], timeout: int | str | None = None):
        if inspect.iscoroutinefunction(func):
            raise TypeError("Coroutine callbacks are not supported")
        if not isinstance(func, str) and not inspect.isfunction(func) and not inspect.isbuiltin(func):
            raise FunctionReferenceError(f"A callback must be a function or a dotted path, not {func!r}")
        self.func = func
        self.name = resolve_function_reference(func)[1]
        self.timeout = parse_timeout(timeout, "callback timeout") or DEFAULT_CALLBACK_TIMEOUT

    def __repr__(self) -> str:
        return f"Callback({self.name!r}, timeout={self.timeout})"


def run_callback(callback: Callable[..., Any], timeout: int | None, *args: Any) -> None:
    """``callback(*args)`` under its timeout (60 s when it has none)."""
    with death_penalty(timeout or DEFAULT_CALLBACK_TIMEOUT, what="Callback"):
        callback(*args)
