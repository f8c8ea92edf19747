"""The pool's log lines, made cheap: a worker logs one line per job, and on no-op jobs a plain
``logging`` line cost about 13 µs of a job's 80 µs of worker CPU.

- ``LineFormatter`` is the pool's format, with the time's text worked out once a second rather
  than once a line.
- ``BatchingHandler`` writes to stderr as ``logging.StreamHandler`` does; inside
  ``written_together()`` (a worker's step records a batch of jobs) it keeps the lines and writes
  them in one write as the block ends, rather than one write a line. Nothing is held past the
  block. WARNING and above, or a batch near PIPE_BUF, go out at once, after whatever was kept,
  so the order holds, and each write stays atomic on a pipe: the lines of workers sharing one
  (systemd's journal, a terminal) never interleave.
- ``job_line`` logs a job's line as ``Logger.info`` would, without its look-up of the caller's
  frame: the record names its caller by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # then ",<milliseconds>": logging's default asctime
# The most kept before a write: under PIPE_BUF (4096 on Linux), so each write is atomic.
MAX_KEPT_BYTES = 3500


class LineFormatter(logging.Formatter):
    """The pool's line format; ``asctime`` as logging's default, its text made once a second."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.time_text(record.created)

    def time_text(self, created: float) -> str:
        """``created`` (epoch seconds) as logging's default asctime."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime(TIME_FORMAT, self.converter(second))
            self._second = second
        return f"{self._second_text},{int((created - second) * 1000):03d}"


class BatchingHandler(logging.StreamHandler):
    """stderr: a line a write, or the lines of a ``written_together()`` block in one."""

    def __init__(self) -> None:
        super().__init__()
        self.batching = False
        self._kept: list[str] = []
        self._kept_bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not self.batching:
            super().emit(record)
            return
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._keep(line, record.levelno)

    def write_info(self, formatter: LineFormatter, name: str, text: str) -> None:
        """An INFO line of logger ``name`` in the pool's format, written (or kept) as ``emit``
        would write its record: the same text, without a LogRecord (see ``job_line``)."""
        line = f"{formatter.time_text(time.time())} {name} INFO {text}{self.terminator}"
        if self.batching:
            self._keep(line, logging.INFO)
            return
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(line)
            super().flush()

    def _keep(self, line: str, level: int) -> None:
        self._kept.append(line)
        self._kept_bytes += len(line)
        if level >= logging.WARNING or self._kept_bytes >= MAX_KEPT_BYTES:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._kept:
                lines, self._kept, self._kept_bytes = "".join(self._kept), [], 0
                self.stream.write(lines)
            super().flush()


def configure(level: str) -> None:
    """The pool's logging: ``level`` and up, to stderr, in the pool's format."""
    handler = BatchingHandler()
    handler.setFormatter(LineFormatter())
    logging.basicConfig(level=level, handlers=[handler])


@contextmanager
def written_together() -> Iterator[None]:
    """The lines logged inside the block are written together as it ends (by the pool's
    handler; other handlers write as they always do)."""
    handlers = [each for each in logging.getLogger().handlers if isinstance(each, BatchingHandler)]
    for handler in handlers:
        handler.batching = True
    try:
        yield
    finally:
        for handler in handlers:
            handler.batching = False
            handler.flush()


def job_line(logger: logging.Logger, caller: Callable[..., Any], message: str, *args: object) -> None:
    """``logger.info(message, *args)``, naming ``caller`` as the line's origin rather than
    looking it up in the stack (a fifth of a line's cost). Under the pool's own logging (one
    BatchingHandler with the pool's format, and no filter on the way), the line is written
    without a LogRecord, which is most of what is left of its cost; any other configuration gets
    the record, for its handlers, filters and format."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _pool_handler(logger)
    if handler is not None:
        handler.write_info(handler.formatter, logger.name, message % args)  # type: ignore[arg-type]
    else:
        code = caller.__code__
        record = logger.makeRecord(
            logger.name,
            logging.INFO,
            code.co_filename,
            code.co_firstlineno,
            message,
            args,
            None,
            code.co_name,
        )
        logger.handle(record)


def _pool_handler(logger: logging.Logger) -> BatchingHandler | None:
    """The one handler a record of ``logger`` reaches, when it is the pool's own, in the pool's
    format, and nothing on the way filters or adds to it; else None."""
    found: BatchingHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        for handler in current.handlers:
            if found is not None or not isinstance(handler, BatchingHandler):
                return None
            if (
                handler.filters
                or handler.level > logging.INFO
                or not isinstance(handler.formatter, LineFormatter)
            ):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found
