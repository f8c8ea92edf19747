"""The ``jobpool`` command: ``start`` runs a supervised pool of workers; the rest inspect and
steer queues and jobs, as RQ's ``rq`` command does. Errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import redis

from . import __version__, keys, log_setup, settings_module
from ._native import MAX_HELD
from .command import publish_command
from .exceptions import InvalidJobOperation, JobpoolError
from .job import Job, JobStatus, cancel_job
from .pool.pool_banner import log_banner
from .queue import Queue
from .registry import FailedJobRegistry
from .serializers import resolve_serializer

DEFAULT_URL = "redis://localhost:6379/0"
# How long stop-job waits, by default, for a worker to take its command and the job to stop.
STOP_WAIT_SECONDS = 5.0
STOP_POLL_SECONDS = 0.05
POOL_NAME = re.compile(r"[A-Za-z0-9._-]+")
# Read as -u is (RQ_REDIS_URL is rq's --url variable), so before a settings module's Redis.
URL_FLAG_VARIABLES = ("JOBPOOL_REDIS_URL", "RQ_REDIS_URL")
URL_VARIABLES = (*URL_FLAG_VARIABLES, "REDIS_URL")
CONFIG_VARIABLES = ("JOBPOOL_CONFIG", "RQ_CONFIG")  # -c's, as RQ_CONFIG is rq's
DEFAULT_METRICS_HOST = "127.0.0.1"  # metrics are served to this machine only, unless told otherwise


def redis_url(given: str | None, configured: str | None = None) -> str:
    """-u, else JOBPOOL_REDIS_URL, else RQ_REDIS_URL, else the settings module's Redis
    (``configured``), else REDIS_URL, else localhost: RQ's order."""
    if given:
        return given
    flag_variable = next((os.environ[name] for name in URL_FLAG_VARIABLES if os.environ.get(name)), None)
    return flag_variable or configured or os.environ.get("REDIS_URL") or DEFAULT_URL


def connect(url: str) -> redis.Redis:
    connection = redis.Redis.from_url(url)
    connection.ping()  # fail now, with a clear message, rather than half-way through a command
    return connection


# ---- start ------------------------------------------------------------------------------------------


def start(options: argparse.Namespace) -> int:
    from .pool.supervisor import Supervisor

    if options.metrics_port is not None:
        from .metrics_server import require_prometheus_client

        require_prometheus_client()
    if options.dict_config:
        settings_module.configure_logging(options.dict_config)
    log_setup.configure(options.log_level.upper(), options.log_format)
    _put_on_sys_path(options.path)
    for module in options.preload:
        importlib.import_module(module)  # once, in the supervisor: workers share it copy-on-write
    url = redis_url(options.url, options.config_url)
    connect(url).close()
    name = options.name or f"{socket.gethostname().split('.')[0]}-{os.getpid()}"
    if not POOL_NAME.fullmatch(name):
        raise JobpoolError(f"--name {name!r}: use letters, digits and . _ - only")
    if options.max_memory is not None and options.max_memory <= 0:
        raise JobpoolError("--max-memory must be a positive number of megabytes")
    serializer = resolve_serializer(options.serializer)
    cron = None
    if options.cron:
        from .cron import CronScheduler

        cron = CronScheduler(redis.Redis.from_url(url), serializer=serializer)
        cron.load_config_from_file(options.cron)  # in the supervisor: refused before any fork
    log_banner(
        url=url,
        name=name,
        queues=options.queues,
        size=options.num_workers,
        prefetch=options.prefetch,
        burst=options.burst,
    )
    metrics = None
    if options.metrics_port is not None:
        from .pool.pool_metrics import PoolMetrics

        metrics = PoolMetrics(options.queues, options.metrics_host, options.metrics_port)
    supervisor = Supervisor(
        url,
        options.queues,
        options.num_workers,
        name=name,
        burst=options.burst,
        max_jobs=options.max_jobs,
        max_memory_mb=options.max_memory,
        serializer=serializer,
        scheduler=not options.no_scheduler,
        prefetch=options.prefetch,
        cron=cron,
        metrics=metrics,
    )
    return supervisor.run()


def _put_on_sys_path(directories: list[str]) -> None:
    """As rq's --path: the directories first on sys.path, "." when none is given."""
    for directory in directories or ["."]:
        sys.path.insert(0, os.path.abspath(directory))


def exporter(options: argparse.Namespace) -> int:
    """``jobpool exporter``: serves what Redis holds (queues, registries, workers) for Prometheus."""
    from .exporter import run_exporter
    from .metrics_server import require_prometheus_client

    require_prometheus_client()
    log_setup.configure(options.log_level)
    url = redis_url(options.url)
    connect(url).close()
    return run_exporter(url, options.host, options.port)


def cron(options: argparse.Namespace) -> int:
    """``jobpool cron CONFIG``, as ``rq cron CONFIG``: a cron scheduler on its own, until
    SIGINT or SIGTERM. Any number may run (and pools started with ``--cron``): each tick is
    enqueued once."""
    from .cron import CronScheduler

    log_setup.configure(options.log_level)
    _put_on_sys_path(options.path)
    connection = connect(redis_url(options.url))
    scheduler = CronScheduler(connection, serializer=resolve_serializer(options.serializer))
    scheduler.load_config_from_file(options.config)
    scheduler.start()
    return 0


# ---- inspecting and steering ----------------------------------------------------------------------


def info(options: argparse.Namespace) -> int:
    """``rq info``'s views, and JSON; with ``--interval``, drawn again until interrupted."""
    from .info_view import View, show

    try:
        connection = connect(redis_url(options.url))
    except KeyboardInterrupt:
        return 0
    view = View(options.only_queues, options.only_workers, options.by_queue, options.json)
    return show(connection, options.queues, view, options.interval, options.count)


def requeue(options: argparse.Namespace) -> int:
    connection = connect(redis_url(options.url))
    registry = FailedJobRegistry(options.queue, connection=connection)
    if not options.all and not options.job_ids:
        raise JobpoolError("give job ids, or --all")
    job_ids = registry.get_job_ids() if options.all else options.job_ids
    for job_id in job_ids:
        registry.requeue(job_id)
    print(f"requeued {len(job_ids)} job(s) onto {options.queue}")
    return 0


def cancel(options: argparse.Namespace) -> int:
    connection = connect(redis_url(options.url))
    for job_id in options.job_ids:
        cancel_job(job_id, connection=connection)
    print(f"canceled {len(options.job_ids)} job(s)")
    return 0


def empty(options: argparse.Namespace) -> int:
    connection = connect(redis_url(options.url))
    for name in options.queues:
        print(f"{name}: {Queue(name, connection=connection).empty()} job(s) removed")
    return 0


def suspend(options: argparse.Namespace) -> int:
    connection = connect(redis_url(options.url))
    connection.set(keys.SUSPENDED, 1, ex=options.duration)
    print("suspended: workers take no new jobs" + (f" for {options.duration} s" if options.duration else ""))
    return 0


def resume(options: argparse.Namespace) -> int:
    connect(redis_url(options.url)).delete(keys.SUSPENDED)
    print("resumed")
    return 0


def stop_job(options: argparse.Namespace) -> int:
    """Sends RQ's stop-job command to the job's worker, then waits (``--wait``) until the job is
    stopped: exit 0 then, else a one-line error saying whether any worker received it."""
    connection = connect(redis_url(options.url))
    job = Job.fetch(options.job_id, connection=connection)
    status = job.get_status()
    worker = job.worker_name
    if status != JobStatus.STARTED or not worker:
        raise JobpoolError(f"job {job.id} is not running (it is {status.value if status else 'gone'})")
    deadline = time.monotonic() + options.wait
    if not _publish_stop_until_received(connection, job, worker, deadline):
        raise JobpoolError(
            f"no worker received the command to stop job {job.id}: nothing listens on "
            f"{keys.worker_commands(worker)} (is the pool or worker {worker} running?)"
        )
    status = _status_once_not_started(job, deadline)
    if status == JobStatus.STARTED:
        raise JobpoolError(
            f"{worker} received the command, but job {job.id} is still started after {options.wait:g} s"
        )
    if status != JobStatus.STOPPED:
        raise JobpoolError(f"job {job.id} did not stop: it is {status.value if status else 'gone'}")
    print(f"stopped job {job.id} (worker {worker})")
    return 0


def _publish_stop_until_received(connection: redis.Redis, job: Job, worker: str, deadline: float) -> int:
    """Publishes RQ's stop-job message until a subscriber receives it, the job is no longer
    started, or the deadline passes; returns how many received it. A pool whose subscription
    was just lost subscribes again within a moment, so one miss is not the last word."""
    while True:
        received = publish_command(connection, worker, "stop-job", job_id=job.id)
        if received or time.monotonic() >= deadline or _status_or_none(job) != JobStatus.STARTED:
            return received
        time.sleep(STOP_POLL_SECONDS)


def _status_once_not_started(job: Job, deadline: float) -> JobStatus | None:
    """The job's status as soon as it is no longer ``started``, or at the deadline."""
    while (status := _status_or_none(job)) == JobStatus.STARTED and time.monotonic() < deadline:
        time.sleep(STOP_POLL_SECONDS)
    return status


def _status_or_none(job: Job) -> JobStatus | None:
    """The job's status now; None once it is deleted (``get_status`` raises then, as RQ's)."""
    try:
        return job.get_status()
    except InvalidJobOperation:
        return None


# ---- parsing ----------------------------------------------------------------------------------------


def _parser(start_settings: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """The command line; ``start_settings`` (from a settings module) are ``start``'s defaults,
    so that flags given override them."""
    parser = argparse.ArgumentParser(prog="jobpool", description="A Redis job queue with RQ's API and data.")
    parser.add_argument("--version", action="version", version=f"jobpool {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "-u", "--url", help=f"Redis URL (default: ${', $'.join(URL_VARIABLES)}, else {DEFAULT_URL})"
        )
        sub.set_defaults(run=run)
        return sub

    sub = command("start", start, "Run a supervised pool of workers on the queues (highest priority first).")
    sub.add_argument("queues", nargs="*", default=["default"], metavar="QUEUE")
    sub.add_argument(
        "-c",
        "--config",
        dest="settings_module",
        metavar="MODULE",
        default=next((os.environ[name] for name in CONFIG_VARIABLES if os.environ.get(name)), None),
        help="a settings module, as rq worker -c's (app.settings, app/settings.py): its upper-case "
        "names set the options not given here (default: $JOBPOOL_CONFIG, $RQ_CONFIG)",
    )
    sub.add_argument(
        "-n",
        "--num-workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="worker processes (default: the number of CPUs)",
    )
    sub.add_argument(
        "--burst", action="store_true", help="exit once the queues are empty and all jobs are done"
    )
    sub.add_argument("--name", help="the pool's name; workers are named NAME.SLOT.N (default: host-pid)")
    sub.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="add DIR to sys.path (repeatable)"
    )
    sub.add_argument(
        "--preload",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE once in the supervisor, before forking (repeatable)",
    )
    sub.add_argument("--max-jobs", type=_positive_int, metavar="K", help="replace a worker after K jobs")
    sub.add_argument("--max-memory", type=float, metavar="MB", help="replace a worker above MB of RSS")
    sub.add_argument(
        "--prefetch",
        type=_prefetch,
        default=MAX_HELD,
        metavar="N",
        help=f"the most jobs a worker takes ahead while quick jobs run, 0 to {MAX_HELD} "
        f"(default {MAX_HELD}; 0: one at a time)",
    )
    sub.add_argument(
        "-S", "--serializer", default="pickle", help="pickle, json or a dotted path (default: pickle)"
    )
    sub.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub.add_argument(
        "--log-format",
        default="text",
        choices=log_setup.LOG_FORMATS,
        help="text lines, or one JSON object a line (default: text)",
    )
    sub.add_argument("--no-scheduler", action="store_true", help="leave scheduled jobs to another pool")
    sub.add_argument(
        "--cron",
        metavar="CONFIG",
        help="also run the cron jobs a configuration module registers (a file or module path, "
        "as rq cron's); pools that run the same one enqueue each tick once between them",
    )
    sub.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve the pool's metrics for Prometheus on PORT (default: off; needs prometheus-client)",
    )
    sub.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        metavar="HOST",
        help="with --metrics-port (default: %(default)s)",
    )
    sub.set_defaults(**{"config_url": None, "dict_config": None, **(start_settings or {})})

    sub = command(
        "exporter",
        exporter,
        "Serve what Redis holds for Prometheus: queue lengths, registry sizes, workers by state "
        "(RQ's workers too).",
    )
    sub.add_argument("--port", type=_port, required=True, metavar="PORT", help="the port to serve on")
    sub.add_argument(
        "--host", default=DEFAULT_METRICS_HOST, help="the address to bind (default: %(default)s)"
    )
    sub.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    sub = command(
        "cron", cron, "Run a cron scheduler: enqueue the cron jobs a configuration module registers."
    )
    sub.add_argument("config", metavar="CONFIG", help="a file path or module path (app/cron.py, app.cron)")
    sub.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="add DIR to sys.path (repeatable)"
    )
    sub.add_argument(
        "-S", "--serializer", default="pickle", help="pickle, json or a dotted path (default: pickle)"
    )
    sub.add_argument(
        "-l",
        "--log-level",
        "--logging-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )

    sub = command("info", info, "Show queues (counts per registry) and workers (state, current job).")
    sub.add_argument("queues", nargs="*", metavar="QUEUE")
    sub.add_argument(
        "-i",
        "--interval",
        type=_positive_float,
        metavar="SECONDS",
        help="draw again every SECONDS until interrupted (default: once)",
    )
    sub.add_argument("--count", type=_positive_int, metavar="N", help="with --interval: stop after N draws")
    sub.add_argument("--json", action="store_true", help="one JSON object (a line per draw)")
    parts = sub.add_mutually_exclusive_group()
    parts.add_argument("-Q", "--only-queues", action="store_true", help="show only the queues")
    parts.add_argument("-W", "--only-workers", action="store_true", help="show only the workers")
    sub.add_argument(
        "-R", "--by-queue", action="store_true", help="show the workers by queue (as rq info -R)"
    )
    sub = command("requeue", requeue, "Put failed jobs back on their queue.")
    sub.add_argument("--queue", required=True)
    sub.add_argument("--all", action="store_true", help="every job in the queue's failed registry")
    sub.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    sub = command("cancel", cancel, "Cancel jobs (they move to the canceled registry).")
    sub.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    sub = command("empty", empty, "Remove every job from queues.")
    sub.add_argument("queues", nargs="+", metavar="QUEUE")
    sub = command("suspend", suspend, "Stop workers from taking new jobs.")
    sub.add_argument("--duration", type=_positive_int, metavar="SECONDS", help="resume by itself after this")
    command("resume", resume, "Let workers take jobs again.")
    sub = command("stop-job", stop_job, "Stop a running job: it ends as stopped, in the failed registry.")
    sub.add_argument("job_id", metavar="JOB_ID")
    sub.add_argument(
        "--wait",
        type=_positive_float,
        default=STOP_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the job to stop (default {STOP_WAIT_SECONDS:g})",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (1 to 65535)")
    return value


def _prefetch(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_HELD:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number from 0 to {MAX_HELD}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        if getattr(options, "settings_module", None):
            options = _with_settings(options, argv)
        return int(options.run(options))
    except redis.ConnectionError as error:
        where = _without_password(
            redis_url(getattr(options, "url", None), getattr(options, "config_url", None))
        )
        print(f"jobpool: cannot reach Redis at {where}: {error}", file=sys.stderr)
    except (JobpoolError, redis.RedisError, ImportError, OSError, ValueError) as error:
        print(f"jobpool: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


def _with_settings(options: argparse.Namespace, argv: Sequence[str] | None) -> argparse.Namespace:
    """``start``'s options again, with the settings module's values as defaults: a flag given
    overrides its setting (a repeatable one, --path or --preload, adds to its list). The
    module is imported from --path's directories ("." when none is given), as rq's -c is."""
    _put_on_sys_path(options.path)
    return _parser(settings_module.load(options.settings_module)).parse_args(argv)


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def entry_point() -> Any:
    sys.exit(main())
