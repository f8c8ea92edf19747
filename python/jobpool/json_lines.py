"""``jobpool start --log-format json``: one JSON object a line, for a log pipeline to read.

Every line has ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger`` and ``message``; a
job's lines add its fields (``log_lines.JOB_FIELDS``: ``job_id``, ``queue``, ``func``,
``outcome``, ``duration_ms``, ``worker``, ``exc_type``), a line with a traceback has it as
``traceback``, and any other ``extra`` a record was logged with (the start-up banner's, the burst
summary's) comes as keys of its own.

A line never exceeds PIPE_BUF, so that the pool's handler writes it in one atomic write and the
lines of workers sharing a pipe never interleave: a longer one has its longest text cut (a
traceback keeps its end, where the exception is; a message its start). The whole traceback stays
in Redis, with the job's result.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from .log_lines import JOB_FIELDS, PIPE_BUF, JobFields, LineFormatter

# The attributes every LogRecord has: the others were given as ``extra``.
RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
MAX_LINE_BYTES = PIPE_BUF - 1  # and its newline
CUT = "[...]"


class JsonFormatter(LineFormatter):
    """A record as one JSON object; a job's INFO line (``job_line``) too, without a record."""

    plain = False

    def __init__(self) -> None:
        super().__init__()
        self._utc_second = -1
        self._utc_second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.utc_text(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in RECORD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _fitted(entry)

    def job_text(self, created: float, name: str, text: str, fields: JobFields) -> str:
        entry: dict[str, Any] = {
            "time": self.utc_text(created),
            "level": "INFO",
            "logger": name,
            "message": text,
        }
        entry.update(zip(JOB_FIELDS, fields, strict=True))
        return _fitted(entry)

    def utc_text(self, created: float) -> str:
        """``created`` (epoch seconds) as ISO 8601 in UTC, to the millisecond; the second's text
        is made once a second."""
        second = int(created)
        if second != self._utc_second:
            self._utc_second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._utc_second = second
        return f"{self._utc_second_text}.{int((created - second) * 1000):03d}Z"


def _fitted(entry: dict[str, Any]) -> str:
    """``entry`` as a JSON line of at most MAX_LINE_BYTES (ASCII: a character is a byte)."""
    duration = entry.get("duration_ms")
    if isinstance(duration, float):
        entry["duration_ms"] = round(duration, 3)
    line = _encoded(entry)
    while len(line) > MAX_LINE_BYTES:
        texts = [key for key, value in entry.items() if isinstance(value, str) and len(value) > len(CUT)]
        if not texts:
            break
        longest = max(texts, key=lambda key: len(entry[key]))
        value: str = entry[longest]
        keep = max(len(value) - (len(line) - MAX_LINE_BYTES) - len(CUT), 0)
        entry[longest] = CUT + value[len(value) - keep :] if longest == "traceback" else value[:keep] + CUT
        line = _encoded(entry)
    return line


def _encoded(entry: dict[str, Any]) -> str:
    """``entry`` in JSON; a value JSON has no type for (in a record's ``extra``) as its str()."""
    try:
        return json.dumps(entry)  # json's own encoder, made once
    except TypeError:
        return json.dumps(entry, default=str)
