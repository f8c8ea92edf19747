"""Decoding what redis-py returns.

jobpool's connections do not decode responses (job data is binary), so strings arrive as bytes;
redis-py's type hints allow for str too. These helpers give the rest of the code one typed view.
"""

from __future__ import annotations

from typing import Any


def as_text(value: Any) -> str:
    """A reply holding text, as str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a bytes or str reply from Redis, got {value!r}")


def as_texts(values: Any) -> list[str]:
    """A reply holding a list (or set) of texts, as a list of str."""
    return [as_text(value) for value in values]


def as_fields(raw: Any) -> dict[str, bytes]:
    """A hash reply (HGETALL, or a stream entry's fields), with str names and bytes values."""
    return {as_text(name): value.encode() if isinstance(value, str) else value for name, value in raw.items()}
