"""Importing a cron configuration: the module ``rq cron CONFIG`` and ``jobpool cron CONFIG`` (or
``jobpool start --cron CONFIG``) run, whose ``jobpool.cron.register(...)`` calls say what to
schedule. As RQ's: an absolute path is loaded as a file; anything else is a module path, dotted
(``app.cron_config``) or slashed (``app/cron_config.py``), imported from ``sys.path`` (reloaded
if it was imported before, so that its registrations run again)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from .exceptions import JobpoolError


def module_name_of(config_path: str) -> str:
    """``app/cron_config.py`` -> ``app.cron_config``; a dotted path is returned as it is."""
    if os.path.sep not in config_path and not config_path.endswith(".py"):
        return config_path
    return config_path.removesuffix(".py").lstrip(os.path.sep).replace(os.path.sep, ".")


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
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Could not create module spec for {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except JobpoolError:  # a registration refused: its own error says which, and why
        del sys.modules[module_name]
        raise
    except Exception as error:
        del sys.modules[module_name]
        raise ImportError(f"Failed to load configuration file '{path}': {error}") from error
