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
  frame: the record names its caller by hand. It carries the job's fields (``JOB_FIELDS``): the
  text format leaves them out of the line, ``--log-format json`` (``json_lines``) writes them, and
  a record made for other handlers has them as attributes (``%(job_id)s`` in a user's format).
- A record longer than PIPE_BUF (a traceback) is written in pieces of whole lines, each atomic.
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
PIPE_BUF = 4096
# A job line's fields, in the order ``job_line`` and ``job_record`` take them: the job's id, its
# queue, its function's name (None when its data could not be read), how its ending was recorded
# ("finished", "failed", "retried", ...), how long it ran (ms), the worker that ran it, and the type
# of the exception it raised (None when it raised none).
JOB_FIELDS = ("job_id", "queue", "func", "outcome", "duration_ms", "worker", "exc_type")
JobFields = tuple[str, str, str | None, str | None, float, str, str | None]


class LineFormatter(logging.Formatter):
    """The pool's line format; ``asctime`` as logging's default, its text made once a second."""

    # Whether a job's INFO line is its text alone (``job_text`` here): the pool's handler then
    # writes it without calling ``job_text``.
    plain = True

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

    def job_text(self, created: float, name: str, text: str, fields: JobFields) -> str:
        """A job's INFO line (``job_line``), as ``format`` writes its record: the fields are
        in the text already."""
        return f"{self.time_text(created)} {name} INFO {text}"


class BatchingHandler(logging.StreamHandler):
    """stderr: a line a write, or the lines of a ``written_together()`` block in one."""

    def __init__(self) -> None:
        super().__init__()
        self.batching = False
        self._kept: list[str] = []
        self._kept_bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if self.batching:
                self._keep(line, record.levelno)
            else:
                self._write(line)
        except RecursionError:  # as logging.StreamHandler
            raise
        except Exception:
            self.handleError(record)

    def write_info(self, formatter: LineFormatter, name: str, text: str, fields: JobFields) -> None:
        """A job's INFO line of logger ``name`` in the pool's format, written (or kept) as
        ``emit`` would write its record: the same text, without a LogRecord (see ``job_line``)."""
        if formatter.plain:
            line = f"{formatter.time_text(time.time())} {name} INFO {text}{self.terminator}"
        else:
            line = formatter.job_text(time.time(), name, text, fields) + self.terminator
        if self.batching:
            self._keep(line, logging.INFO)
        else:
            self._write(line)

    def _keep(self, line: str, level: int) -> None:
        self._kept.append(line)
        self._kept_bytes += len(line)
        if level >= logging.WARNING or self._kept_bytes >= MAX_KEPT_BYTES:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._kept:
                lines, self._kept, self._kept_bytes = "".join(self._kept), [], 0
                self._write(lines)
            else:
                super().flush()

    def _write(self, text: str) -> None:
        """Writes ``text`` (whole lines) in one write if it fits in PIPE_BUF, else in pieces of
        whole lines that each do (a line longer than that alone goes out as it is)."""
        with self.lock:  # type: ignore[union-attr]
            if len(text) <= PIPE_BUF // 4 or len(text.encode(errors="replace")) <= PIPE_BUF:
                self.stream.write(text)
            else:
                for piece in _pieces(text):
                    self.stream.write(piece)
                    super().flush()
            super().flush()


def _pieces(text: str) -> Iterator[str]:
    """``text``'s lines, gathered in pieces of at most PIPE_BUF bytes."""
    piece: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        length = len(line.encode(errors="replace"))
        if piece and size + length > PIPE_BUF:
            yield "".join(piece)
            piece, size = [], 0
        piece.append(line)
        size += length
    if piece:
        yield "".join(piece)


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


def job_line(
    logger: logging.Logger, caller: Callable[..., Any], fields: JobFields, message: str, *args: object
) -> None:
    """``logger.info(message, *args)`` about a job (its ``fields``), naming ``caller`` as the
    line's origin rather than looking it up in the stack (a fifth of a line's cost). Under the
    pool's own logging (one BatchingHandler with the pool's format, and no filter on the way), the
    line is written without a LogRecord, which is most of what is left of its cost; any other
    configuration gets the record, for its handlers, filters and format."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _pool_handler(logger)
    if handler is not None:
        handler.write_info(handler.formatter, logger.name, message % args, fields)  # type: ignore[arg-type]
    else:
        job_record(logger, caller, logging.INFO, fields, message, *args)


def job_record(
    logger: logging.Logger,
    caller: Callable[..., Any],
    level: int,
    fields: JobFields,
    message: str,
    *args: object,
    traceback: str | None = None,
) -> None:
    """Logs ``message % args`` about a job at ``level``, as a record that has the job's
    ``fields`` as attributes; a ``traceback`` (text) follows the message as an exception's
    would (``exc_text``: every formatter writes it)."""
    if not logger.isEnabledFor(level):
        return
    code = caller.__code__
    record = logger.makeRecord(
        logger.name,
        level,
        code.co_filename,
        code.co_firstlineno,
        message,
        args,
        None,
        code.co_name,
        extra=dict(zip(JOB_FIELDS, fields, strict=True)),
    )
    if traceback:
        record.exc_text = traceback.rstrip("\n")
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
