"""Job functions: how a callable becomes the dotted name stored in a job, and back."""

from __future__ import annotations

import builtins
import importlib
import inspect
import re
from functools import lru_cache
from typing import Any

from .exceptions import FunctionReferenceError

_DOTTED_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def resolve_function_reference(func: Any, for_worker: bool = True) -> tuple[Any, str]:
    """(instance, func_name) as RQ stores them: ``module.qualname`` for functions and builtins,
    the method name with its instance for bound methods, ``__call__`` with the object for callable
    instances, and a dotted-path string as given.

    Raises FunctionReferenceError for what a worker could never import: lambdas, functions
    defined inside other functions or in ``__main__``, and strings that are not dotted paths.
    A job its producer runs itself (``for_worker`` False: a queue with ``is_async=False``) gets
    RQ's rules instead: only ``__main__`` is refused at enqueue; a nested function fails when it
    runs, and a bare name is a builtin.
    """
    if inspect.ismethod(func):
        return func.__self__, func.__name__
    if inspect.isfunction(func) or inspect.isbuiltin(func):
        module, qualname = func.__module__, func.__qualname__
        if module == "__main__":
            raise FunctionReferenceError(
                f"{qualname} is defined in __main__, which workers cannot import; move it to a module"
            )
        if "<" in qualname and for_worker:
            raise FunctionReferenceError(
                f"{module}.{qualname} cannot be imported by a worker (a lambda or a function defined "
                "inside another); use a module-level function"
            )
        return None, f"{module}.{qualname}"
    if isinstance(func, str):
        if not for_worker and func.isidentifier():
            return None, func  # a builtin's bare name, as RQ allows
        if not _DOTTED_PATH.fullmatch(func):
            raise FunctionReferenceError(f"{func!r} is not a dotted path to a function ('module.function')")
        return None, func
    if not inspect.isclass(func) and callable(func):
        return func, "__call__"
    raise FunctionReferenceError(f"Expected a callable or a dotted path, got {func!r}")


@lru_cache(maxsize=1024)
def import_attribute(name: str) -> Any:
    """The object at dotted path ``name``: the longest importable module prefix, then attributes;
    a bare name is a builtin (as RQ's). Cached: a worker looks up the same few functions for every
    job (a new worker process, as after a reload, starts with an empty cache)."""
    if name.isidentifier():
        try:
            return getattr(builtins, name)
        except AttributeError:
            raise FunctionReferenceError(f"{name!r}: no builtin of that name") from None
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and not module_name.startswith(exc.name):
                raise  # the module exists but imports something that does not
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError as exc:
            raise FunctionReferenceError(f"{name!r}: module {module_name!r} has no {exc.name!r}") from exc
        return obj
    raise FunctionReferenceError(f"{name!r}: no importable module in this path")


def truncated_repr(value: Any, max_length: int | None) -> str:
    text = repr(value)
    if max_length is not None and len(text) > max_length:
        return text[:max_length] + "..."
    return text


def call_string(
    func_name: str | None, args: Any, kwargs: dict[str, Any], max_length: int | None = 75
) -> str | None:
    """``func(arg_reprs, k=v)`` with keyword arguments sorted, each repr cut at max_length (RQ's
    default job description)."""
    if func_name is None:
        return None
    parts = [truncated_repr(arg, max_length) for arg in args]
    parts += sorted(f"{key}={truncated_repr(value, max_length)}" for key, value in kwargs.items())
    return f"{func_name}({', '.join(parts)})"
