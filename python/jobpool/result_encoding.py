"""How a job's outcome is encoded, as RQ encodes it: return values (the results stream's
``return_value``) and tracebacks (the job hash's ``exc_info``, the stream's ``exc_string``).
Shared by the job hash, the results stream and whatever records an ending (worker, recovery)."""

from __future__ import annotations

import traceback
import zlib
from base64 import b64encode
from typing import Any

from .serializers import Serializer

UNSERIALIZABLE_RETURN_VALUE = "Unserializable return value"


def encode_return_value(serializer: Serializer, value: Any) -> bytes | None:
    """A return value as the results stream holds it (base64 of the serialized value); None is
    not stored, and a value the serializer cannot encode is stored as RQ's placeholder text."""
    if value is None:
        return None
    try:
        serialized = serializer.dumps(value)
    except Exception:
        serialized = serializer.dumps(UNSERIALIZABLE_RETURN_VALUE)
    return b64encode(serialized)


def format_exception(error: BaseException) -> str:
    """A traceback as RQ records it."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def encode_traceback(text: str) -> tuple[bytes, bytes]:
    """(exc_info for the job hash, exc_string for the results stream), as RQ encodes them."""
    compressed = zlib.compress(text.encode())
    return compressed, b64encode(compressed)


def decode_exc_info(stored: bytes) -> str:
    """exc_info as RQ reads it: zlib-compressed, or plain text as very old RQ wrote it."""
    try:
        return zlib.decompress(stored).decode(errors="replace")
    except zlib.error:
        return stored.decode(errors="replace")
