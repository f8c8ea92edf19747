"""Serializers: any object with ``dumps(obj) -> bytes`` and ``loads(bytes) -> obj``.

The default is pickle at its highest protocol, as RQ's; ``JSONSerializer`` writes UTF-8 JSON.
``resolve_serializer`` accepts a serializer, None, the aliases 'pickle' and 'json', or a dotted path.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable

from .exceptions import InvalidSerializer
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
    """The serializer ``serializer`` names. As RQ's: a dotted path that does not import raises
    a ValueError (``FunctionReferenceError``), an object without ``dumps`` and ``loads``
    NotImplementedError (``InvalidSerializer``, also a TypeError), with RQ's message first."""
    if not serializer:
        return DefaultSerializer
    if serializer is DefaultSerializer or serializer is JSONSerializer:
        return serializer  # the common case, without the (slow) runtime Protocol check
    if isinstance(serializer, str):
        resolved = ALIASES.get(serializer) or import_attribute(serializer)
    else:
        resolved = serializer
    if not isinstance(resolved, Serializer):
        raise InvalidSerializer(f"Serializer should have (dumps, loads) methods. Got {serializer!r}")
    return resolved
