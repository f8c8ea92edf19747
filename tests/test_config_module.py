"""``jobpool start -c MODULE``: a settings module, as ``rq worker -c`` reads one, run for real
(a ``jobpool start`` subprocess on the test's redis-server) and, where RQ reads the same
settings, compared with RQ."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import rq
from rq.cli.helpers import get_redis_from_config

import jobs
from conftest import wait_for
from jobpool import Queue
from jobpool.exceptions import InvalidSettings
from jobpool.job import JobStatus
from jobpool.settings_module import load, redis_url_of
from support.pool_process import PYTHONPATH

DEAD_URL = "redis://127.0.0.1:1/0"  # nothing listens there
# A line in the pool's own format: "2026-01-01 12:00:00,123 jobpool.worker INFO ..."
POOL_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} jobpool", re.MULTILINE)


def environment(**extra: str) -> dict[str, str]:
    """This environment without any Redis URL or settings module of its own, REDIS_URL
    pointing nowhere (so that a pool that reaches Redis got it from elsewhere)."""
    ours = {"JOBPOOL_REDIS_URL", "RQ_REDIS_URL", "REDIS_URL", "JOBPOOL_CONFIG", "RQ_CONFIG"}
    kept = {name: value for name, value in os.environ.items() if name not in ours}
    return {**kept, "PYTHONPATH": PYTHONPATH, "REDIS_URL": DEAD_URL, **extra}


class Started:
    """``jobpool start`` with exactly the arguments given (no -u: the module may give it),
    run in ``cwd``, its stderr in a file."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.stderr = cwd / f"pool-{len(list(cwd.glob('pool-*.stderr')))}.stderr"
        with self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobpool", "start", *args],
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=environment(),
            )

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the pool did not exit:\n{self.stderr.read_text()}") from None

    def stop(self) -> int:
        """A warm shutdown: its workers stop and leave the registry."""
        self.process.terminate()
        return self.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Started]]:
    started: list[Started] = []

    def run(*args: str) -> Started:
        started.append(Started(tmp_path, *args))
        return started[-1]

    yield run
    for each in started:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait()


def write_settings(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def workers_of(connection: redis.Redis) -> dict[str, list[str]]:
    return {worker.name: worker.queue_names() for worker in rq.Worker.all(connection=connection)}


def test_the_pool_takes_url_queues_and_workers_from_the_module_as_rq_worker_does(
    redis_url: str, connection: redis.Redis, tmp_path: Path, start: Callable[..., Started]
) -> None:
    # REDIS_URL in the environment points nowhere: the module's Redis comes first, as in RQ.
    settings = (
        f"REDIS_URL = {redis_url!r}\nQUEUES = ['cfg_high', 'cfg_low']\nNUM_WORKERS = 2\nNAME = 'cfgpool'\n"
    )
    write_settings(tmp_path / "conf" / "pool_settings.py", settings)
    running = start("-c", "conf/pool_settings.py")
    wait_for(lambda: len(workers_of(connection)) == 2 or running.process.poll() is not None)
    assert running.process.poll() is None, running.stderr.read_text()
    found = workers_of(connection)
    assert all(name.startswith("cfgpool.") for name in found)
    assert list(found.values()) == [["cfg_high", "cfg_low"]] * 2
    job = Queue("cfg_low", connection=connection).enqueue(jobs.add, 2, 3)
    wait_for(lambda: job.get_status() == JobStatus.FINISHED)
    assert running.stop() == 0

    # rq worker reads the same module the same way (by its module name, from ".").
    theirs = Queue("cfg_low", connection=connection).enqueue(jobs.add, 4, 5)
    command = [sys.executable, "-m", "rq.cli", "worker", "-c", "conf.pool_settings", "--burst"]
    done = subprocess.run(
        [*command, "-w", "rq.SimpleWorker"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert theirs.get_status() == JobStatus.FINISHED and theirs.return_value() == 9


def test_flags_override_the_module_and_a_module_name_is_found_on_path(
    redis_url: str, connection: redis.Redis, tmp_path: Path, start: Callable[..., Started]
) -> None:
    write_settings(
        tmp_path / "elsewhere" / "override_settings.py",
        f"REDIS_URL = {DEAD_URL!r}\nQUEUES = ['from_module']\nNUM_WORKERS = 3\nNAME = 'modpool'\n",
    )
    flags = ["-u", redis_url, "-n", "1", "--name", "flagpool", "from_flag"]
    running = start("-c", "override_settings", "--path", str(tmp_path / "elsewhere"), *flags)
    wait_for(lambda: len(workers_of(connection)) >= 1 or running.process.poll() is not None)
    assert running.process.poll() is None, running.stderr.read_text()
    job = Queue("from_flag", connection=connection).enqueue(jobs.add, 1, 1)
    wait_for(lambda: job.get_status() == JobStatus.FINISHED)
    assert workers_of(connection) == {"flagpool.0.1": ["from_flag"]}


def test_dict_config_configures_the_pools_logging(
    redis_url: str, connection: redis.Redis, tmp_path: Path, start: Callable[..., Started]
) -> None:
    dict_config = {
        "version": 1,
        "formatters": {"marked": {"format": "CFGLOG %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "marked", "stream": "ext://sys.stderr"}
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }
    write_settings(
        tmp_path / "logging_settings.py",
        f"REDIS_URL = {redis_url!r}\nNUM_WORKERS = 1\nBURST = True\nDICT_CONFIG = {dict_config!r}\n",
    )
    job = Queue("default", connection=connection).enqueue(jobs.add, 20, 22)
    running = start("-c", "logging_settings")
    assert running.wait() == 0
    logged = running.stderr.read_text()
    assert logged.count("CFGLOG INFO jobpool.supervisor jobpool supervisor ready") == 1, logged
    assert f"CFGLOG INFO jobpool.worker default: jobs.add(20, 22) ({job.id}): Job OK in " in logged
    assert not POOL_FORMAT.search(logged), logged  # the module's format only, each line once


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (None, "settings module 'no_such_settings': cannot import it: No module named 'no_such_settings'"),
        ("QUEUES = ['x']\n1 / 0\n", "importing it raised ZeroDivisionError: division by zero"),
        ("NUM_WORKERS = '4'\n", "NUM_WORKERS must be a positive integer, not '4'"),
        ("QUEUES = 'high'\n", "QUEUES must be a list of non-empty strings, not 'high'"),
        ("PREFETCH = 99\n", "PREFETCH must be a whole number from 0 to 16, not 99"),
        ("BURST = 'yes'\n", "BURST must be True or False, not 'yes'"),
        ("LOG_LEVEL = 'LOUD'\n", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'"),
        ("LOG_FORMAT = 'xml'\n", "LOG_FORMAT must be one of text, json, not 'xml'"),
        ("SENTINEL = {'INSTANCES': [('localhost', 26379)]}\n", "SENTINEL is not supported"),
        ("DICT_CONFIG = {'version': 1, 'handlers': {'h': {'class': 'no.such.Handler'}}}\n", "DICT_CONFIG: "),
    ],
)
def test_a_bad_module_or_value_is_one_line_and_nothing_reaches_redis(
    redis_url: str, connection: redis.Redis, tmp_path: Path, settings: str | None, error: str
) -> None:
    name = "no_such_settings"
    if settings is not None:
        name = "bad_settings"
        write_settings(tmp_path / "bad_settings.py", settings)
    done = subprocess.run(
        [sys.executable, "-m", "jobpool", "start", "-c", name, "-u", redis_url, "--burst"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("jobpool: ") and done.stderr.count("\n") == 1, done.stderr
    assert error in done.stderr
    assert connection.dbsize() == 0


def test_rq_config_names_the_module_when_c_is_not_given(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    write_settings(
        tmp_path / "env_settings.py", f"REDIS_URL = {redis_url!r}\nQUEUES = ['env_q']\nBURST = True\n"
    )
    job = Queue("env_q", connection=connection).enqueue(jobs.add, 3, 4)
    done = subprocess.run(
        [sys.executable, "-m", "jobpool", "start", "-n", "1"],
        cwd=tmp_path,
        env=environment(RQ_CONFIG="env_settings"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert job.get_status() == JobStatus.FINISHED


# ---- the settings, read in this process ----------------------------------------------------------


def import_settings(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / f"unit_settings_{abs(hash(text))}.py"
    path.write_text(text)
    return load(str(path))  # an absolute path: loaded as a file


def test_each_option_has_its_setting(tmp_path: Path) -> None:
    values = import_settings(
        tmp_path,
        "import os\n"
        "QUEUES = ('a', 'b')\nNAME = 'n'\nNUM_WORKERS = 3\nBURST = True\nPATH = ['p']\n"
        "PRELOAD = ['m']\nMAX_JOBS = 5\nMAX_MEMORY = 200\nPREFETCH = 0\nSERIALIZER = 'json'\n"
        "LOG_LEVEL = 'debug'\nLOG_FORMAT = 'json'\nNO_SCHEDULER = True\nCRON = 'app.cron'\n"
        "METRICS_PORT = 9100\n"
        "METRICS_HOST = '0.0.0.0'\nDICT_CONFIG = {'version': 1}\nMAX_HELD = None\nlower_case = 1\n",
    )
    assert values == {
        "queues": ["a", "b"],
        "name": "n",
        "num_workers": 3,
        "burst": True,
        "path": ["p"],
        "preload": ["m"],
        "max_jobs": 5,
        "max_memory": 200.0,
        "prefetch": 0,
        "serializer": "json",
        "log_level": "DEBUG",
        "log_format": "json",
        "no_scheduler": True,
        "cron": "app.cron",
        "metrics_port": 9100,
        "metrics_host": "0.0.0.0",
        "dict_config": {"version": 1},
        "config_url": None,
    }


def test_a_setting_that_is_none_is_not_set(tmp_path: Path) -> None:
    assert import_settings(tmp_path, "NUM_WORKERS = None\nQUEUES = None\n") == {"config_url": None}


@pytest.mark.parametrize(
    "settings",
    [
        {"REDIS_HOST": "redis.example", "REDIS_PORT": 7000, "REDIS_DB": 3, "REDIS_PASSWORD": "p@ss:w/rd"},
        {"REDIS_PORT": 6380},
        {"REDIS_HOST": "::1", "REDIS_DB": 2},
        {
            "REDIS_HOST": "h",
            "REDIS_SSL": "yes",
            "REDIS_SSL_CERT_REQS": "none",
            "REDIS_SSL_CA_CERTS": "/ca.pem",
            "REDIS_SSL_CERTFILE": "/c.pem",
            "REDIS_SSL_KEYFILE": "/k.pem",
        },
        {"REDIS_URL": "redis://elsewhere:1234/5", "REDIS_HOST": "ignored", "SENTINEL": {"INSTANCES": []}},
    ],
)
def test_redis_settings_name_the_redis_rq_connects_to(settings: dict[str, Any]) -> None:
    url = redis_url_of(settings)
    assert url is not None
    ours = redis.Redis.from_url(url).connection_pool
    theirs = get_redis_from_config(settings).connection_pool
    assert ours.connection_class is theirs.connection_class
    compared = (
        "host",
        "port",
        "db",
        "password",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_certfile",
        "ssl_keyfile",
    )
    for name in compared:
        assert ours.connection_kwargs.get(name) == theirs.connection_kwargs.get(name), name


def test_no_redis_settings_leave_the_url_to_the_environment() -> None:
    assert redis_url_of({"QUEUES": ["a"]}) is None


def test_a_wrong_redis_setting_is_named() -> None:
    with pytest.raises(InvalidSettings, match="REDIS_PORT must be a port number"):
        redis_url_of({"REDIS_PORT": "6379"})
    with pytest.raises(InvalidSettings, match="REDIS_SSL must be True or False"):
        redis_url_of({"REDIS_SSL": "maybe"})


def test_flags_override_settings_and_repeatable_flags_add_to_their_lists() -> None:
    from jobpool.cli import _parser

    settings = {"path": ["a"], "preload": ["m"], "num_workers": 3, "queues": ["q"], "burst": True}
    given = _parser(settings).parse_args(["start", "--path", "b", "--preload", "n", "-n", "1", "other"])
    assert (given.path, given.preload, given.num_workers, given.queues) == (
        ["a", "b"],
        ["m", "n"],
        1,
        ["other"],
    )
    assert given.burst is True  # a store_true flag not given leaves the module's True
    assert _parser(settings).parse_args(["start"]).queues == ["q"]
    assert _parser().parse_args(["start"]).queues == ["default"]
