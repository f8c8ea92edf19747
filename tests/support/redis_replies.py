"""The replies of a client made without ``decode_responses`` (the tests' ``connection``), typed.

redis-py types a reply as ``bytes | str`` (and worse for sorted sets and streams), since only the
client knows whether it decodes; the tests ``cast`` a reply to one of these to say what it holds.
"""

from __future__ import annotations

Members = list[bytes]
"""``LRANGE``, ``ZRANGE``, ``KEYS``: the members, as stored."""

Scored = list[tuple[bytes, float]]
"""``ZRANGE ... WITHSCORES``: each member with its score."""

Entries = list[tuple[bytes, dict[bytes, bytes]]]
"""``XRANGE``: each entry's id and fields."""

Fields = dict[bytes, bytes]
"""``HGETALL``: a hash's fields."""
