"""``jobpool exporter``: what Redis holds for a whole deployment, for Prometheus.

Every queue's length and registries' sizes and every worker's state, jobpool's pools and RQ's
own workers alike (both keep RQ's data), read at each scrape. A scrape costs Redis two
pipelined round trips, whatever the number of queues and workers: one reads the sets of queues
and workers, the next every count and every worker's state.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

import redis

from . import keys
from .redis_values import as_texts

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

logger = logging.getLogger("jobpool.exporter")

# The registries of a queue, as RQ 3.0 names them (``queue.started_job_registry`` and so on).
REGISTRIES = ("started", "finished", "failed", "deferred", "scheduled", "canceled")
# RQ's worker states, shown even when no worker is in them (a worker's own value is shown too).
WORKER_STATES = ("starting", "started", "idle", "busy", "suspended")


class DeploymentCollector:
    """A prometheus-client collector that reads a deployment's queues and workers from Redis."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("rq_exporter_redis_up", "Whether this scrape could read Redis (1) or not (0)")
        try:
            queues, registries, workers = self._read()
        except redis.RedisError as error:
            logger.warning("Cannot read Redis for a scrape: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        family = GaugeMetricFamily("rq_queue_jobs", "Jobs waiting in the queue", labels=["queue"])
        for queue, length in sorted(queues.items()):
            family.add_metric([queue], length)
        yield family

        family = GaugeMetricFamily(
            "rq_registry_jobs",
            "Entries in each of a queue's registries (started counts executions)",
            labels=["queue", "registry"],
        )
        for (queue, registry), size in sorted(registries.items()):
            family.add_metric([queue, registry], size)
        yield family

        by_state: Counter[str] = Counter()
        by_queue: Counter[tuple[str, str]] = Counter()
        for state, worker_queues in workers:
            by_state[state] += 1
            for queue in worker_queues:
                by_queue[queue, state] += 1
        family = GaugeMetricFamily(
            "rq_workers", "Live workers (RQ's and jobpool's) by state", labels=["state"]
        )
        for state in sorted({*WORKER_STATES, *by_state}):
            family.add_metric([state], by_state[state])
        yield family
        family = GaugeMetricFamily(
            "rq_queue_workers",
            "Live workers listening on a queue, by state (a worker on several queues counts in each)",
            labels=["queue", "state"],
        )
        for queue in sorted(queues):
            for state in sorted({*WORKER_STATES, *by_state}):
                family.add_metric([queue, state], by_queue[queue, state])
        yield family

    def _read(
        self,
    ) -> tuple[dict[str, int], dict[tuple[str, str], int], list[tuple[str, list[str]]]]:
        """The queues' lengths, their registries' sizes, and each live worker's state and queues
        (a worker whose hash has expired is dead: it is left out)."""
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.QUEUES)
            pipe.smembers(keys.WORKERS)
            queue_keys, worker_keys = pipe.execute()
        queue_names = sorted(_queue_names(as_texts(queue_keys)))
        worker_keys = sorted(as_texts(worker_keys))
        with self.connection.pipeline(transaction=False) as pipe:
            for name in queue_names:
                pipe.llen(keys.queue(name))
                for registry in REGISTRIES:
                    pipe.zcard(keys.render(registry, queue=name))
            for key in worker_keys:
                pipe.hmget(key, "state", "queues", "birth")
            replies = pipe.execute()
        per_queue = 1 + len(REGISTRIES)
        queues: dict[str, int] = {}
        registries: dict[tuple[str, str], int] = {}
        for index, name in enumerate(queue_names):
            length, *sizes = replies[index * per_queue : (index + 1) * per_queue]
            queues[name] = int(length)
            for registry, size in zip(REGISTRIES, sizes, strict=True):
                registries[name, registry] = int(size)
        workers = []
        for state, worker_queues, birth in replies[len(queue_names) * per_queue :]:
            if state is None and worker_queues is None and birth is None:
                continue  # its hash has expired
            listened = worker_queues.decode(errors="replace").split(",") if worker_queues else []
            # A hash without a state shows as RQ's ``rq info`` shows it.
            shown = state.decode(errors="replace") if state is not None else "?"
            workers.append((shown, [queue for queue in listened if queue]))
        return queues, registries, workers


def _queue_names(queue_keys: list[str]) -> Iterator[str]:
    """The queues of ``<prefix>:queues``'s keys (a key under another prefix is not one)."""
    for key in queue_keys:
        try:
            yield keys.queue_name_from_key(key)
        except ValueError:
            continue


def run_exporter(url: str, host: str, port: int) -> int:
    """Serves the deployment's metrics at http://host:port/ until SIGINT or SIGTERM."""
    from .metrics_server import serve_in_thread

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    server = serve_in_thread(DeploymentCollector(redis.Redis.from_url(url)), host, port)
    logger.info("jobpool exporter: serving metrics on http://%s:%d/metrics", host, port)
    while not stop.wait(1.0):
        pass
    server.shutdown()
    return 0
