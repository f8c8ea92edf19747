"""Loading a Python module that a user names by path: a cron configuration (``--cron``) or a
settings module (``-c``), each of which wraps the errors its own way."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType


def module_name_of(module_path: str) -> str:
    """``app/cron_config.py`` -> ``app.cron_config``; a dotted path is returned as it is."""
    if os.path.sep not in module_path and not module_path.endswith(".py"):
        return module_path
    return module_path.removesuffix(".py").lstrip(os.path.sep).replace(os.path.sep, ".")


def load_file(path: str, module_name: str) -> ModuleType:
    """Runs the Python file ``path`` as the module ``module_name``: in ``sys.modules`` while it
    runs and after, taken out again if it raises (what it raises is raised)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python module: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
