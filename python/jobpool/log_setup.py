"""The pool's logging, set up: ``level`` and up, to stderr, through the pool's batching handler
(``log_lines``), in its text format or as one JSON object a line (``json_lines``)."""

from __future__ import annotations

import logging

from .json_lines import JsonFormatter
from .log_lines import BatchingHandler, LineFormatter

LOG_FORMATS = ("text", "json")


def configure(level: str, log_format: str = "text") -> None:
    """Adds the pool's handler to the root logger, unless it has handlers already (a
    ``DICT_CONFIG`` set them: then they are the pool's)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = BatchingHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else LineFormatter())
    logging.basicConfig(level=level, handlers=[handler])
