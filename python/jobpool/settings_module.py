"""``jobpool start -c MODULE``: a settings module, as ``rq worker -c MODULE`` reads one.

Its upper-case names are the settings (RQ's rule): RQ's own (``REDIS_URL``, or ``REDIS_HOST``,
``REDIS_PORT``, ``REDIS_DB``, ``REDIS_PASSWORD``, ``REDIS_SSL*``; ``QUEUES``; ``NAME``;
``DICT_CONFIG``) and one for each of ``jobpool start``'s options, its long name in upper case
(``--num-workers`` is ``NUM_WORKERS``). Other names are left alone, as RQ leaves them, so one
module can serve RQ, jobpool and an application. A setting that is None counts as not set.

Every value is checked here, before anything connects to Redis: a module that does not import,
or a value of the wrong type, is an ``InvalidSettings`` naming the setting.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging.config
import os
import urllib.parse
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from ._native import MAX_HELD
from .exceptions import InvalidSettings
from .log_setup import LOG_FORMATS
from .module_files import load_file, module_name_of

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# RQ's REDIS_HOST & co., used when REDIS_URL is not set (rq.cli.helpers.get_redis_from_config).
REDIS_PART_NAMES = (
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_PASSWORD",
    "REDIS_SSL",
    "REDIS_SSL_CA_CERTS",
    "REDIS_SSL_CERT_REQS",
    "REDIS_SSL_KEYFILE",
    "REDIS_SSL_CERTFILE",
)
# RQ reads these too; jobpool's workers connect by URL, to one Redis, and cannot take them.
UNSUPPORTED = {
    "SENTINEL": "jobpool connects to one Redis by URL, not through Sentinel: give REDIS_URL (the master's)",
    "REDIS_SSL_CA_DATA": "give the CA certificate as a file, in REDIS_SSL_CA_CERTS",
}

Check = Callable[[str, Any], Any]


def load(module_path: str) -> dict[str, Any]:
    """The ``jobpool start`` option values (by their argparse names) that the settings module
    ``module_path`` gives, checked (``dict_config`` among them, from ``DICT_CONFIG``); plus
    ``config_url``, its Redis or None. Raises InvalidSettings, its message starting with the
    module's name."""
    try:
        settings = read(module_path)
        values = {
            OPTIONS[name][0]: OPTIONS[name][1](name, value)
            for name, value in settings.items()
            if name in OPTIONS and value is not None
        }
        values["config_url"] = redis_url_of(settings)
    except InvalidSettings as error:
        raise InvalidSettings(f"settings module {module_path!r}: {error}") from error
    return values


def read(module_path: str) -> dict[str, Any]:
    """The module's upper-case names and their values (RQ's ``read_config_file``). A module
    path is dotted (``app.settings``) or a file's (``app/settings.py``), imported from
    ``sys.path``; an absolute path is loaded as a file."""
    module = _import(module_path)
    return {name: value for name, value in vars(module).items() if name.upper() == name}


def _import(module_path: str) -> ModuleType:
    try:
        if os.path.isabs(module_path):
            return _import_file(module_path)
        return importlib.import_module(module_name_of(module_path))
    except ImportError as error:
        raise InvalidSettings(f"cannot import it: {error}") from error
    except Exception as error:  # whatever its own code raised while it was imported
        raise InvalidSettings(f"importing it raised {type(error).__name__}: {error}") from error


def _import_file(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise ImportError(f"no such file: {path}")
    return load_file(path, "jobpool_settings_" + os.path.basename(path).removesuffix(".py").replace(".", "_"))


def configure_logging(dict_config: Mapping[str, Any]) -> None:
    """``DICT_CONFIG``, given to ``logging.config.dictConfig`` as RQ does, before the pool's
    own logging (which then adds its handler only if the root logger has none). Unless it says
    otherwise, it leaves on the loggers that exist already: jobpool's own are made as its
    modules are imported, before the settings are read, and dictConfig's default would silence
    them (as it silences ``rq.worker`` under ``rq worker -c``)."""
    try:
        logging.config.dictConfig({"disable_existing_loggers": False, **dict_config})
    except (ValueError, TypeError, AttributeError, ImportError) as error:
        raise InvalidSettings(f"DICT_CONFIG: {error}") from error


# ---- Redis ------------------------------------------------------------------------------------------


def redis_url_of(settings: Mapping[str, Any]) -> str | None:
    """The URL of the Redis the settings name, as RQ's ``get_redis_from_config`` picks it:
    ``REDIS_URL``, else ``REDIS_HOST`` & co. (with RQ's defaults: localhost, 6379, db 0); None
    when they name none."""
    for name, reason in UNSUPPORTED.items():
        if settings.get(name) is not None and settings.get("REDIS_URL") is None:
            raise InvalidSettings(f"{name} is not supported: {reason}")
    if settings.get("REDIS_URL") is not None:
        return _text("REDIS_URL", settings["REDIS_URL"])
    if all(settings.get(name) is None for name in REDIS_PART_NAMES):
        return None
    host = _text("REDIS_HOST", settings.get("REDIS_HOST") or "localhost")
    port = _port("REDIS_PORT", settings.get("REDIS_PORT", 6379))
    db = _whole_number("REDIS_DB", settings.get("REDIS_DB", 0))
    password = settings.get("REDIS_PASSWORD")
    credentials = f":{urllib.parse.quote(_text('REDIS_PASSWORD', password), safe='')}@" if password else ""
    netloc = f"{credentials}[{host}]:{port}" if ":" in host else f"{credentials}{host}:{port}"
    tls = _tls("REDIS_SSL", settings.get("REDIS_SSL", False))
    files = {
        option: _text(name, settings[name])
        for name, option in (
            ("REDIS_SSL_CA_CERTS", "ssl_ca_certs"),
            ("REDIS_SSL_CERT_REQS", "ssl_cert_reqs"),
            ("REDIS_SSL_KEYFILE", "ssl_keyfile"),
            ("REDIS_SSL_CERTFILE", "ssl_certfile"),
        )
        if settings.get(name) is not None
    }
    query = urllib.parse.urlencode(files) if tls else ""
    return urllib.parse.urlunsplit(("rediss" if tls else "redis", netloc, f"/{db}", query, ""))


def _tls(name: str, value: Any) -> bool:
    """A bool, or RQ's words for one (``"true"``, ``"no"``, ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("y", "yes", "t", "true"):
        return True
    if isinstance(value, str) and value.lower() in ("n", "no", "f", "false", ""):
        return False
    raise InvalidSettings(f"{name} must be True or False, not {value!r}")


# ---- checks -------------------------------------------------------------------------------------------


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSettings(f"{name} must be a non-empty string, not {value!r}")
    return value


def _texts(name: str, value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(each, str) and each for each in value):
        raise InvalidSettings(f"{name} must be a list of non-empty strings, not {value!r}")
    return list(value)


def _queue_names(name: str, value: Any) -> list[str]:
    names = _texts(name, value)
    if not names:
        raise InvalidSettings(f"{name} must name at least one queue")
    return names


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidSettings(f"{name} must be True or False, not {value!r}")
    return value


def _integer(name: str, value: Any, lowest: int, highest: int | None, what: str) -> int:
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole or value < lowest or (highest is not None and value > highest):
        raise InvalidSettings(f"{name} must be {what}, not {value!r}")
    return value


def _positive_int(name: str, value: Any) -> int:
    return _integer(name, value, 1, None, "a positive integer")


def _whole_number(name: str, value: Any) -> int:
    return _integer(name, value, 0, None, "a whole number (0 or more)")


def _port(name: str, value: Any) -> int:
    return _integer(name, value, 1, 65535, "a port number (1 to 65535)")


def _prefetch(name: str, value: Any) -> int:
    return _integer(name, value, 0, MAX_HELD, f"a whole number from 0 to {MAX_HELD}")


def _megabytes(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise InvalidSettings(f"{name} must be a positive number of megabytes, not {value!r}")
    return float(value)


def _log_level(name: str, value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise InvalidSettings(f"{name} must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return value.upper()


def _log_format(name: str, value: Any) -> str:
    if value not in LOG_FORMATS:
        raise InvalidSettings(f"{name} must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return str(value)


def _serializer(name: str, value: Any) -> Any:
    """A name or dotted path (as ``-S``), or a serializer itself (``dumps`` and ``loads``)."""
    if isinstance(value, str) and value:
        return value
    if callable(getattr(value, "dumps", None)) and callable(getattr(value, "loads", None)):
        return value
    raise InvalidSettings(f"{name} must be a serializer's name or path, or a serializer, not {value!r}")


def _dict_config(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSettings(f"{name} must be a dict for logging.config.dictConfig, not {value!r}")
    return dict(value)


# The settings ``jobpool start`` reads: the module's name -> (the option's argparse name, check).
OPTIONS: dict[str, tuple[str, Check]] = {
    "QUEUES": ("queues", _queue_names),
    "NAME": ("name", _text),
    "NUM_WORKERS": ("num_workers", _positive_int),
    "BURST": ("burst", _flag),
    "PATH": ("path", _texts),
    "PRELOAD": ("preload", _texts),
    "MAX_JOBS": ("max_jobs", _positive_int),
    "MAX_MEMORY": ("max_memory", _megabytes),
    "PREFETCH": ("prefetch", _prefetch),
    "SERIALIZER": ("serializer", _serializer),
    "LOG_LEVEL": ("log_level", _log_level),
    "LOG_FORMAT": ("log_format", _log_format),
    "NO_SCHEDULER": ("no_scheduler", _flag),
    "CRON": ("cron", _text),
    "METRICS_PORT": ("metrics_port", _port),
    "METRICS_HOST": ("metrics_host", _text),
    "DICT_CONFIG": ("dict_config", _dict_config),
}
