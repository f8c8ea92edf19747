"""Timeouts and TTLs as users write them: seconds (int or numeric string), '-1' for none,
or digits plus a unit: '2d', '1h', '3m', '5s'.

A job's numbers are checked here, before anything is written: Redis applies a script's writes
up to the command that fails, so a number Redis refuses (EXPIRE fails from about 9.2e15 s) must
never reach the enqueue script.
"""

from __future__ import annotations

import numbers

from .exceptions import TimeoutFormatError

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

MAX_SECONDS = 10 * 365 * 86400
"""The longest timeout, TTL or retry interval a job may be given: ten years. Longer is surely a
mistake (-1 means no limit), and this bound keeps every sum the workers make with it (a deadline,
a heartbeat, a registry score) far inside what Redis, Lua's numbers and setitimer accept."""


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


def _check_limit(seconds: int, value: object, what: str, limit: int | None) -> int:
    if limit is not None and seconds > limit:
        raise TimeoutFormatError(f"{what} must be at most {limit} seconds (ten years); got {value!r}")
    return seconds


def parse_timeout(
    value: int | float | str | None, what: str = "timeout", limit: int | None = MAX_SECONDS
) -> int | None:
    """A job timeout in seconds: positive up to ``limit``, or -1 for none. None stays None.
    ``limit=None`` reads a stored timeout as any client may have written it."""
    if value is None:
        return None
    seconds = _to_seconds(value, what)
    if seconds == 0 or seconds < -1:
        raise TimeoutFormatError(f"{what} must be positive, or -1 for no {what}; got {value!r}")
    return _check_limit(seconds, value, what, limit)


def parse_ttl(value: int | float | str | None, what: str) -> int | None:
    """A TTL in seconds: zero or more up to MAX_SECONDS, or -1 for forever. None stays None (the
    default applies). result_ttl=0 is RQ's 'do not keep the result'."""
    if value is None:
        return None
    seconds = _to_seconds(value, what)
    if seconds < -1:
        raise TimeoutFormatError(f"{what} must be zero or more seconds, or -1 for forever; got {value!r}")
    return _check_limit(seconds, value, what, MAX_SECONDS)
