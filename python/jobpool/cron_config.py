"""Importing a cron configuration: the module ``rq cron CONFIG`` and ``jobpool cron CONFIG`` (or
``jobpool start --cron CONFIG``) run, whose ``jobpool.cron.register(...)`` calls say what to
schedule. As RQ's: an absolute path is loaded as a file; anything else is a module path, dotted
(``app.cron_config``) or slashed (``app/cron_config.py``), imported from ``sys.path`` (reloaded
if it was imported before, so that its registrations run again)."""

from __future__ import annotations

import importlib
import os
import sys

from .exceptions import JobpoolError
from .module_files import load_file, module_name_of


def import_config(config_path: str) -> None:
    """Runs the configuration module (its registrations with it). Raises ImportError (or
    FileNotFoundError, IsADirectoryError for an absolute path) saying which file or module failed."""
    if os.path.isabs(config_path):
        _import_file(config_path)
        return
    module_name = module_name_of(config_path)
    try:
        if module_name in sys.modules:
            importlib.reload(sys.modules[module_name])
        else:
            importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"Failed to import configuration module '{module_name}' (from '{config_path}'): {error}"
        ) from error


def _import_file(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"Configuration file not found at '{path}'")
    if not os.path.isfile(path):
        raise IsADirectoryError(f"Configuration path points to a directory, not a file: '{path}'")
    module_name = f"rq_cron_config_{os.path.basename(path).replace('.', '_')}"
    try:
        load_file(path, module_name)
    except JobpoolError:  # a registration refused: its own error says which, and why
        raise
    except Exception as error:
        raise ImportError(f"Failed to load configuration file '{path}': {error}") from error
