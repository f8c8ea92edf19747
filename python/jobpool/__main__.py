"""``python -m jobpool`` is the ``jobpool`` command."""

from .cli import entry_point

entry_point()
