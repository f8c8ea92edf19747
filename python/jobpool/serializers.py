"""Serializers: any object with ``dumps(obj) -> bytes`` and ``loads(bytes) -> obj``.

The default is pickle at its highest protocol, as RQ's; ``JSONSerializer`` writes UTF-8 JSON.
``resolve_serializer`` accepts a serializer, None, the aliases 'pickle' and 'json', or a dotted path.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable

from .functions import import_attribute


@runtime_checkable
class Serializer(Protocol):
    def dumps(self, obj: Any, /) -> bytes: ...

    def loads(self, data: bytes, /) -> Any: ...


class DefaultSerializer:
    @staticmethod
    def dumps(obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> Any:
        return pickle.loads(data)


PickleSerializer = DefaultSerializer


class JSONSerializer:
    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode("utf-8")

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data.decode("utf-8"))


ALIASES: dict[str, Serializer] = {"pickle": DefaultSerializer, "json": JSONSerializer}


def resolve_serializer(serializer: Serializer | str | None = None) -> Serializer:
    if not serializer:
        return DefaultSerializer
    if serializer is DefaultSerializer or serializer is JSONSerializer:
        return serializer  # the common case, without the (slow) runtime Protocol check
    if isinstance(serializer, str):
        resolved = ALIASES.get(serializer) or import_attribute(serializer)
    else:
        resolved = serializer
    if not isinstance(resolved, Serializer):
        raise TypeError(f"Serializer {serializer!r} should have dumps and loads methods")
    return resolved
