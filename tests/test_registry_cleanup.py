"""Registry maintenance (``jobpool.registry_cleanup``), side by side with RQ 3.0's own on the
same data, and its cost in round trips."""

from __future__ import annotations

from typing import cast

import redis
import rq
import rq.registry
import rq.worker_registration

import jobs
from bench.redis_counting import RoundTripCounter, counting_client
from jobpool import keys
from jobpool.registry_cleanup import clean_registries
from jobpool.timeutils import epoch_seconds
from support.redis_replies import Members

KINDS = ("finished", "failed", "deferred", "canceled", "scheduled", "ready", "started")


def _seed(connection: redis.Redis, queue_name: str) -> None:
    """A queue's registries as RQ writes them, with entries whose time has passed and entries
    still live, jobs RQ left ready to enqueue (its process died before pushing them), and a
    dead worker's key left in the worker sets. Job ids start with the queue's name."""
    now = epoch_seconds()
    p = queue_name

    def registry(kind: str) -> str:
        return keys.registry(kind, queue_name)

    connection.zadd(registry("finished"), {f"{p}-f-old": now - 10, f"{p}-f-live": now + 100})
    connection.zadd(registry("finished"), {f"{p}-f-forever": "+inf"})  # result_ttl=-1
    connection.zadd(registry("failed"), {f"{p}-x-old": now - 10, f"{p}-x-live": now + 100})
    connection.zadd(registry("deferred"), {f"{p}-d": now - 1000})  # scored by arrival
    connection.zadd(registry("canceled"), {f"{p}-c": now - 1000})  # scored by cancel time
    connection.zadd(registry("scheduled"), {f"{p}-s": now - 10})  # due: the scheduler's, not cleanup's

    queue = rq.Queue(queue_name, connection=connection)
    parent = queue.enqueue(jobs.add, 1, 1, job_id=f"{p}-parent")
    ready = [
        queue.enqueue(jobs.add, 2, 2, job_id=f"{p}-r-back", depends_on=parent),
        queue.enqueue(
            jobs.add,
            3,
            3,
            job_id=f"{p}-r-front",
            depends_on=rq.job.Dependency([parent], enqueue_at_front=True),
        ),
        queue.enqueue(jobs.add, 4, 4, job_id=f"{p}-r-moved", depends_on=parent),
        queue.enqueue(jobs.add, 5, 5, job_id=f"{p}-r-gone", depends_on=parent),
    ]
    with connection.pipeline() as pipe:
        rq.registry.ReadyJobRegistry(queue_name, connection=connection).register_jobs(ready, pipe)
        pipe.execute()
    connection.hset(keys.job(f"{p}-r-moved"), "status", "canceled")  # no longer ready
    connection.delete(keys.job(f"{p}-r-gone"))

    live, dead = keys.worker(f"{p}-live"), keys.worker(f"{p}-dead")
    connection.hset(live, mapping={"queues": queue_name, "state": "idle"})
    connection.sadd(keys.queue_workers(queue_name), live, dead)
    connection.sadd(keys.WORKERS, live, dead)


def _state(connection: redis.Redis, queue_name: str) -> dict[str, object]:
    """Every registry, the queue, the ready jobs' statuses and the worker sets, with the queue's
    name taken out of the ids."""

    def strip(values: list[bytes]) -> list[str]:
        return [v.decode().replace(queue_name, "Q") for v in values]

    state: dict[str, object] = {
        kind: strip(cast(Members, connection.zrange(keys.registry(kind, queue_name), 0, -1)))
        for kind in KINDS
    }
    state["queue"] = strip(cast(Members, connection.lrange(keys.queue(queue_name), 0, -1)))
    state["statuses"] = {
        name: connection.hget(keys.job(f"{queue_name}-{name}"), "status")
        for name in ("r-back", "r-front", "r-moved", "r-gone")
    }
    state["queue workers"] = sorted(
        strip(list(cast("set[bytes]", connection.smembers(keys.queue_workers(queue_name)))))
    )
    state["workers"] = sorted(
        w
        for w in strip(list(cast("set[bytes]", connection.smembers(keys.WORKERS))))
        if w.startswith(keys.worker("Q"))
    )
    return state


def test_clean_registries_does_what_rq_maintenance_does(connection: redis.Redis) -> None:
    for queue_name in ("ours", "theirs", "other"):
        _seed(connection, queue_name)
    other = _state(connection, "other")

    cleaned = clean_registries(connection, ["ours"])
    theirs = rq.Queue("theirs", connection=connection)
    rq.registry.clean_registries(theirs)
    rq.worker_registration.clean_worker_registry(theirs)

    after = _state(connection, "ours")
    assert after == _state(connection, "theirs")
    assert after == {
        "finished": ["Q-f-live", "Q-f-forever"],
        "failed": ["Q-x-live"],
        "deferred": ["Q-d"],
        "canceled": ["Q-c"],
        "scheduled": ["Q-s"],
        "ready": [],
        "started": [],
        "queue": ["Q-r-front", "Q-parent", "Q-r-back"],
        "statuses": {"r-back": b"queued", "r-front": b"queued", "r-moved": b"canceled", "r-gone": None},
        "queue workers": [keys.worker("Q-live")],
        "workers": [keys.worker("Q-live")],
    }
    assert cleaned.expired == 2 and sorted(cleaned.enqueued) == ["ours-r-back", "ours-r-front"]
    assert cleaned.dropped_ready == 2 and cleaned.dropped_workers == 1
    assert _state(connection, "other") == other != after  # a queue not named is left alone
    assert connection.sismember(keys.QUEUES, keys.queue("ours"))
    assert connection.llen(keys.wakeup("ours")) > 0  # pushed with a marker: an idle pool wakes


def test_clean_registries_costs_a_few_round_trips_whatever_the_number_of_entries(
    connection: redis.Redis, redis_url: str
) -> None:
    queue_names = [f"q{i}" for i in range(3)]
    now = epoch_seconds()
    for name in queue_names:
        for kind in ("finished", "failed"):
            connection.zadd(keys.registry(kind, name), {f"{name}-{kind}-{i}": now - 10 for i in range(200)})
    counter = RoundTripCounter()
    client = counting_client(redis_url, counter)
    client.ping()
    counter.reset()
    assert clean_registries(client, queue_names).expired == 1200
    assert counter.round_trips == 1  # nothing listed to read or write

    for name in queue_names:
        _seed(connection, name)
        for i in range(50):
            connection.sadd(keys.queue_workers(name), keys.worker(f"{name}-dead-{i}"))
    counter.reset()
    cleaned = clean_registries(client, queue_names)
    assert len(cleaned.enqueued) == 6 and cleaned.dropped_workers == 153
    # the listing, the reads and the writes, besides redis-py's check that the requeue script
    # is loaded (and its load, if it is not)
    script_checks = counter.commands["script|exists"] + counter.commands["script|load"]
    assert counter.round_trips - script_checks == 3, counter.commands

    counter.reset()
    assert clean_registries(client, queue_names).dropped_workers == 0
    assert counter.round_trips == 2  # live workers listed and checked; nothing to write
