"""The pool's text log read back as records: a line that starts with the pool's time stamp begins
a record, and the lines after it that do not (a traceback) are the rest of that record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (jobpool\.[a-z_]+) (DEBUG|INFO|WARNING|ERROR) (.+)")


@dataclass
class Record:
    logger: str
    level: str
    message: str
    rest: list[str] = field(default_factory=list)  # the lines after the first: a traceback


def records(text: str) -> list[Record]:
    """The records of a text log; raises AssertionError on a first line that begins no record."""
    found: list[Record] = []
    for line in text.splitlines():
        match = LINE.fullmatch(line)
        if match:
            logger, level, message = match.groups()
            found.append(Record(logger, level, message))
        else:
            assert found, f"the log begins with a line that is no record: {line!r}"
            found[-1].rest.append(line)
    return found
