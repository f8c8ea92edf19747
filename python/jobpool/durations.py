"""Timeouts and TTLs as users write them: seconds (int or numeric string), '-1' for none,
or digits plus a unit: '2d', '1h', '3m', '5s'."""

from __future__ import annotations

import numbers

from .exceptions import TimeoutFormatError

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _to_seconds(value: int | float | str, what: str) -> int:
    if isinstance(value, bool):
        raise TimeoutFormatError(f"{what} must be a number of seconds, not {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise TimeoutFormatError(f"{what} must be a whole number of seconds, not {value!r}")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        digits, unit = text[:-1], text[-1:].lower()
        if digits.isdigit() and unit in _UNIT_SECONDS:
            return int(digits) * _UNIT_SECONDS[unit]
    raise TimeoutFormatError(
        f"{what} {value!r} is not understood: use an integer number of seconds, -1, or digits and a "
        "unit such as '1h', '23m', '10s', '2d'"
    )


def parse_timeout(value: int | float | str | None, what: str = "timeout") -> int | None:
    """A job timeout in seconds: positive, or -1 for none. None stays None."""
    if value is None:
        return None
    seconds = _to_seconds(value, what)
    if seconds == 0 or seconds < -1:
        raise TimeoutFormatError(f"{what} must be positive, or -1 for no {what}; got {value!r}")
    return seconds


def parse_ttl(value: int | float | str | None, what: str) -> int | None:
    """A TTL in seconds: zero or more, or -1 for forever. None stays None (the default applies).
    result_ttl=0 is RQ's 'do not keep the result'."""
    if value is None:
        return None
    seconds = _to_seconds(value, what)
    if seconds < -1:
        raise TimeoutFormatError(f"{what} must be zero or more seconds, or -1 for forever; got {value!r}")
    return seconds
