"""The job the enqueue benchmark enqueues: importable by name (``noop.noop``), does nothing."""


def noop() -> None:
    """A job that does nothing, so a benchmark measures only the queue's cost."""
