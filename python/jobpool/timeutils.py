"""Timestamps in RQ's encodings: hash fields as ``%Y-%m-%dT%H:%M:%S.%fZ`` (UTC), registry
scores as integer epoch seconds, execution and result fields as epoch floats."""

from __future__ import annotations

import calendar
from datetime import datetime, timezone

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_LEGACY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def utcformat(dt: datetime) -> str:
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.strftime(TIMESTAMP_FORMAT)


def utcparse(text: str) -> datetime:
    """Parses a hash timestamp (raises ValueError when it is not one)."""
    if text.endswith("Z") and "T" in text:
        try:
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)  # fast path, in C
        except ValueError:
            pass
    try:
        parsed = datetime.strptime(text, TIMESTAMP_FORMAT)
    except ValueError:
        parsed = datetime.strptime(text, _LEGACY_FORMAT)
    return parsed.replace(tzinfo=timezone.utc)


def epoch_seconds(dt: datetime | None = None) -> int:
    """Integer epoch seconds, as RQ scores its registries. Naive datetimes are local time,
    as RQ's scheduler reads them."""
    if dt is None:
        dt = utcnow()
    if dt.tzinfo is None:
        return int(dt.timestamp())
    return calendar.timegm(dt.utctimetuple())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
