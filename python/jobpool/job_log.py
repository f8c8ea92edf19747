"""What a worker logs of a job that did not succeed, and why.

A job that succeeded gets one INFO line, written cheaply (``BaseWorker._log_record``). One that
failed gets a WARNING line that says why in one line (the exception's type and message, or
why the job could not be loaded: its function cannot be imported, its hash cannot be read), then
the traceback at ERROR, as RQ's worker prints it. A job stopped, or retried because it returned
a Retry, says so in its one line. Failures may cost more than a success's line: they build a
LogRecord each (whose job fields a user's handlers see as attributes).

The reason is the failure's text as the job's Outcome holds it (what RQ stores as ``exc_info``):
a traceback, or a line of the worker's own ("Job stopped by user: ...").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from . import log_lines
from ._native import TakenJob
from .job_runner import Outcome

TRACEBACK_HEADER = "Traceback (most recent call last):"
# A type as a traceback names it: ``ValueError``, ``app.errors.Refused``.
TYPE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# The exceptions that mean the job never began: its hash or data cannot be read, or its function
# cannot be found; and the frame that means its function's module failed to import.
LOAD_ERRORS = {
    "jobpool.exceptions.DeserializationError": "cannot read the job",
    "jobpool.exceptions.FunctionReferenceError": "cannot find the job's function",
}
IMPORT_FRAME = re.compile(r'jobpool[/\\]functions\.py", line \d+, in import_attribute\n')
# The longest exception message a WARNING line holds (its first line): the traceback has it all.
MAX_MESSAGE_CHARS = 500


def exception_summary(reason: str) -> tuple[str | None, str]:
    """(the type of the exception a failure's ``reason`` ends with, as its traceback names it,
    and the first line of its message); a reason with no traceback (the worker's own) gives
    (None, its first line)."""
    text = reason.rstrip("\n")
    start = text.rfind(TRACEBACK_HEADER)
    if start < 0:
        return None, _capped(text.split("\n", 1)[0])
    lines = text[start:].split("\n")[1:]
    # After the frames (indented), the exception: "Type: message" (its message may go on).
    last = lines[-1].strip() if lines else ""
    first = next((line for line in lines if line and not line[0].isspace()), last)
    name, _, message = first.partition(": ")
    if not TYPE_NAME.fullmatch(name):
        return None, _capped(first)
    return name, _capped(message)


def why(reason: str, exc_type: str | None, message: str) -> str:
    """A failure's reason in a line: what could not be loaded, if the job never began, then the
    exception's type and message."""
    said = f"{exc_type}: {message}" if exc_type and message else exc_type or message
    cause = LOAD_ERRORS.get(exc_type or "")
    if cause is None and exc_type is not None and IMPORT_FRAME.search(reason):
        cause = "cannot import the job's function"
    return f"{cause}: {said}" if cause else said


def log_unsuccessful(
    logger: logging.Logger,
    caller: Callable[..., Any],
    worker: str,
    taken: TakenJob,
    outcome: Outcome,
    recorded: str | None,
) -> None:
    """Logs a job that ran and did not succeed, recorded as ``recorded``: a line that says how it
    ended and why (WARNING, or INFO for a Retry it returned with retries left), then its
    traceback, if it raised, at ERROR."""
    description = description_of(taken.fields)
    milliseconds = outcome.working_seconds * 1000
    if outcome.retry_returned:
        used_up = recorded == "failed"
        exc_type, said = None, "it returned a Retry" + ("; no retries are left" if used_up else "")
        level = logging.WARNING if used_up else logging.INFO
    else:
        exc_type, message = exception_summary(outcome.reason)
        said = why(outcome.reason, exc_type, message)
        level = logging.WARNING
    fields = (taken.job_id, taken.queue, outcome.func_name, recorded, milliseconds, worker, exc_type)
    log_lines.job_record(
        logger,
        caller,
        level,
        fields,
        "%s: %s (%s): %s in %.1f ms on %s: %s",
        taken.queue,
        description,
        taken.job_id,
        recorded,
        milliseconds,
        worker,
        said,
    )
    if exc_type is not None and TRACEBACK_HEADER in outcome.reason:
        log_lines.job_record(
            logger,
            caller,
            logging.ERROR,
            fields,
            "%s: %s (%s): exception raised on %s",
            taken.queue,
            description,
            taken.job_id,
            worker,
            traceback=outcome.reason,
        )


def description_of(fields: dict[str, bytes]) -> str:
    """A taken job's description (its function and arguments), from its hash."""
    return fields.get("description", b"").decode(errors="replace")


def _capped(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."
