"""Cron jobs (RQ 3.0's ``rq.cron``): the tick arithmetic with a test clock, registration side by
side with RQ's, the Redis data RQ's classes read, the once-a-tick transaction and the lock, and
real ``jobpool start --cron`` pools: one, two on one Redis, and a SIGKILL of the lock's holder."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

import pytest
import redis
import rq
import rq.cron
import rq.cron_job_registry
import rq.job
from croniter import CroniterBadCronError

import jobpool
import jobs
from conftest import wait_for
from jobpool import cron_job_registry, cron_scheduler_registry, keys
from jobpool.cron import CronJob, CronScheduler, create_cron, get_cron_job_ids, register
from jobpool.cron_claims import LOCK_REFRESH_SECONDS, LOCK_TTL_SECONDS, enqueue_once, hold_lock
from jobpool.cron_ticks import due_ticks, next_cron_time
from jobpool.exceptions import InvalidCronJob, SchedulerNotFound
from jobpool.job import Job
from support.pool_process import PYTHONPATH, Pool
from support.redis_replies import Scored

T0 = datetime(2026, 3, 2, 12, 0, 0, tzinfo=timezone.utc).timestamp()  # a Monday, on the minute


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC for the test (cron fields match local time)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


# ---- the tick arithmetic, with a test clock ---------------------------------------------------------


def test_interval_ticks_lie_on_a_grid_from_the_last_tick() -> None:
    assert due_ticks(T0, T0 + 0.5, interval=1) == []
    assert due_ticks(T0, T0 + 1.0, interval=1) == [T0 + 1]
    assert due_ticks(T0, T0 + 1.7, interval=1) == [T0 + 1]  # not now: the grid's point
    assert due_ticks(T0, T0 + 3.2, interval=1) == [T0 + 1, T0 + 2, T0 + 3]  # missed ones, each once


def test_interval_ticks_missed_beyond_the_catch_up_window_collapse_to_the_newest() -> None:
    # 100 missed ticks, 10 s apart: those within the last 60 s are enqueued, the older ones are not.
    assert due_ticks(T0, T0 + 1000, interval=10, catch_up=60) == [T0 + 940 + 10 * k for k in range(7)]
    # An hourly job missed by two hours: the newest missed tick alone, once (as RQ's, overdue).
    assert due_ticks(T0, T0 + 7300, interval=3600, catch_up=60) == [T0 + 7200]


def test_cron_ticks_are_the_string_s_matches_after_the_last_tick(utc: None) -> None:
    assert due_ticks(T0, T0 + 59, cron="* * * * *") == []
    assert due_ticks(T0, T0 + 60, cron="* * * * *") == [T0 + 60]
    assert due_ticks(T0, T0 + 185, cron="* * * * *", catch_up=300) == [T0 + 60, T0 + 120, T0 + 180]
    assert due_ticks(T0, T0 + 3 * 3600, cron="*/15 * * * *", catch_up=60) == [T0 + 3 * 3600]
    # Every scheduler down for a day: the newest missed match, once.
    assert due_ticks(T0, T0 + 86400 + 30, cron="0 */6 * * *", catch_up=20) == [T0 + 86400]
    assert due_ticks(T0, T0 + 3 * 3600, cron="0 0 * * *", catch_up=60) == []


def test_cron_fields_match_local_time() -> None:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"  # UTC+1 in March
    time.tzset()
    try:
        after = datetime(2026, 3, 2, 12, 30, tzinfo=timezone.utc)
        assert next_cron_time("0 14 * * *", after) == datetime(2026, 3, 2, 13, 0, tzinfo=timezone.utc)
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


# ---- registration, side by side with RQ ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": 10, "cron": "* * * * *"}, "Cannot specify both interval and cron parameters"),
        ({}, "Must specify either interval or cron parameter"),
    ],
)
def test_register_refuses_what_rq_refuses_with_rq_s_message(
    connection: redis.Redis, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as theirs:
        rq.cron.CronScheduler(connection=connection).register(jobs.add, "q", **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidCronJob) as ours:
        CronScheduler(connection=connection).register(jobs.add, "q", **options)  # type: ignore[arg-type]
    assert str(theirs.value) == str(ours.value) == message
    assert isinstance(ours.value, ValueError)


def test_a_bad_cron_string_is_a_value_error_in_both(connection: redis.Redis) -> None:
    with pytest.raises(CroniterBadCronError):
        rq.cron.CronScheduler(connection=connection).register(jobs.add, "q", cron="61 * * * *")
    with pytest.raises(InvalidCronJob, match="Invalid cron string '61 \\* \\* \\* \\*'") as ours:
        CronScheduler(connection=connection).register(jobs.add, "q", cron="61 * * * *")
    assert isinstance(ours.value, ValueError)


def test_register_refuses_at_once_what_rq_would_fail_on_later(connection: redis.Redis) -> None:
    scheduler = CronScheduler(connection=connection)
    # RQ takes these, and then enqueues without pause (a negative interval) or fails each tick.
    rq.cron.CronScheduler(connection=connection).register(jobs.add, "q", interval=-5)
    with pytest.raises(InvalidCronJob, match="interval must be a positive number"):
        scheduler.register(jobs.add, "q", interval=-5)
    with pytest.raises(ValueError, match="lambda"):
        scheduler.register(lambda: None, "q", interval=5)
    with pytest.raises(ValueError, match="result_ttl"):
        scheduler.register(jobs.add, "q", interval=5, result_ttl="soon")  # type: ignore[arg-type]
    assert scheduler.get_jobs() == [] and connection.dbsize() == 0


def test_webhooks_of_a_cron_job_as_rq_keeps_them(connection: redis.Redis) -> None:
    with pytest.raises(TypeError, match="sequence of Webhook") as rq_error:
        rq.cron.CronScheduler(connection=connection).register(jobs.add, "q", interval=5, webhooks=[object()])  # type: ignore[list-item]  # the bad input under test
    with pytest.raises(TypeError, match="sequence of Webhook") as ours:
        CronScheduler(connection=connection).register(jobs.add, "q", interval=5, webhooks=[object()])
    assert str(ours.value) == str(rq_error.value)
    rq_hooks = [rq.Webhook("http://127.0.0.1:9/done", "finished")]
    our_hooks = [jobpool.Webhook("http://127.0.0.1:9/done", "finished")]
    rq_job = rq.cron.CronJob("q", func=jobs.add, args=(1, 2), interval=5, webhooks=rq_hooks)
    ours_job = CronJob("q", func=jobs.add, args=(1, 2), interval=5, webhooks=our_hooks)
    assert ours_job.to_dict()["webhooks"] == rq_job.to_dict()["webhooks"]
    assert CronJob.from_dict(rq_job.to_dict()).to_dict()["webhooks"] == rq_job.to_dict()["webhooks"]
    job = ours_job.enqueue(connection)
    assert [hook.to_dict() for hook in Job.fetch(job.id, connection=connection).webhooks] == [
        hook.to_dict() for hook in rq_hooks
    ]


def test_module_level_register_and_create_cron(connection: redis.Redis) -> None:
    data = register(jobs.add, "q", args=(1, 2), interval=30, name="adder")
    assert data["func"] is jobs.add and data["interval"] == 30
    scheduler = create_cron(connection)
    assert [job.name for job in scheduler.get_jobs()] == ["adder"]
    assert create_cron(connection).get_jobs() == []  # taken by the first


def test_the_scheduler_s_hash_is_what_rq_writes_for_the_same_registrations(connection: redis.Redis) -> None:
    theirs, ours = rq.cron.CronScheduler(connection=connection), CronScheduler(connection=connection)
    for scheduler in (theirs, ours):
        scheduler.register(jobs.add, "q", args=(1, 2), interval=30, job_timeout=60, meta={"a": 1})
        scheduler.register(jobs.echo, "q", kwargs={"x": 1}, cron="0 3 * * *", name="nightly", ttl=100)
    rq_fields, our_fields = theirs.to_dict(), ours.to_dict()
    for varying in ("name", "pid", "created_at"):
        del rq_fields[varying], our_fields[varying]
    assert our_fields == rq_fields


# ---- the Redis data RQ's classes read --------------------------------------------------------------


def test_rq_reads_a_jobpool_cron_scheduler_its_jobs_and_their_history(connection: redis.Redis) -> None:
    scheduler = CronScheduler(connection=connection)
    scheduler.register(jobs.add, "q", args=(2, 3), interval=60)
    scheduler.config_file = "app/cron.py"
    scheduler.register_birth()
    enqueued = scheduler.enqueue_jobs()  # an interval job is due as its scheduler starts
    assert [job.name for job in enqueued] == ["jobs.add"]
    assert scheduler.enqueue_jobs() == []  # and not again until its interval has passed
    [seen] = rq.cron.CronScheduler.all(connection)
    assert (seen.name, seen.pid, seen.config_file) == (scheduler.name, os.getpid(), "app/cron.py")
    [cron_job] = seen.get_jobs()
    assert (cron_job.func_name, cron_job.queue_name, cron_job.interval) == ("jobs.add", "q", 60)
    assert cron_job.latest_enqueue_time is not None and cron_job.next_enqueue_time is not None
    delta = (cron_job.next_enqueue_time - cron_job.latest_enqueue_time).total_seconds()
    assert delta == pytest.approx(60, abs=0.01)
    [job_id] = rq.cron.get_cron_job_ids("jobs.add", connection)
    assert get_cron_job_ids("jobs.add", connection) == [job_id]
    assert rq.cron_job_registry.get_names(connection) == ["jobs.add"]
    assert cron_job_registry.get_names(connection) == ["jobs.add"]
    theirs = rq.job.Job.fetch(job_id, connection=connection)
    assert (theirs.func_name, theirs.args, theirs.origin) == ("jobs.add", (2, 3), "q")
    assert rq.Queue("q", connection=connection).job_ids == [job_id]
    assert seen.last_heartbeat is not None and scheduler.last_heartbeat is not None
    scheduler.register_death()
    assert rq.cron.CronScheduler.all(connection) == []
    with pytest.raises(SchedulerNotFound):
        scheduler.register_death()


def test_jobpool_reads_rq_s_cron_scheduler(connection: redis.Redis) -> None:
    theirs = rq.cron.CronScheduler(connection=connection)
    theirs.register(jobs.add, "q", args=(1, 1), cron="*/5 * * * *", meta={"k": "v"})
    theirs.register_birth()
    [seen] = CronScheduler.all(connection)
    assert seen.name == theirs.name and seen.hostname == theirs.hostname
    [cron_job] = seen.get_jobs()
    assert (cron_job.func_name, cron_job.cron, cron_job.args, cron_job.job_options["meta"]) == (
        "jobs.add",
        "*/5 * * * *",
        (1, 1),
        {"k": "v"},
    )
    assert cron_scheduler_registry.get_keys(connection) == [theirs.name]


# ---- once a tick, and the lock -------------------------------------------------------------------------


def test_a_tick_raced_by_two_schedulers_is_enqueued_by_one(connection: redis.Redis, redis_url: str) -> None:
    """The second scheduler's transaction commits between the first one's read and its EXEC:
    Redis refuses the first one's whole transaction, its job with it."""
    other = redis.Redis.from_url(redis_url)
    mine, theirs = (
        CronJob("q", func=jobs.add, args=(1, 2), interval=1),
        CronJob("q", func=jobs.add, interval=1),
    )
    assert mine.tick_id == theirs.tick_id  # the same cron job, as two pools' configurations hold it
    tick = time.time()
    won_by_the_other: list[Job | None] = []

    def write(pipe: redis.client.Pipeline) -> None:
        won_by_the_other.append(theirs.enqueue_tick(other, tick))
        mine._add_enqueue(pipe, connection, None, score=tick)

    assert enqueue_once(connection, mine.tick_id, tick, write) is False
    [their_job] = won_by_the_other
    assert their_job is not None
    assert connection.lrange(keys.queue("q"), 0, -1) == [their_job.id.encode()]
    assert get_cron_job_ids("jobs.add", connection) == [their_job.id]
    assert theirs.enqueue_tick(other, tick) is None and mine.enqueue_tick(connection, tick) is None
    assert connection.llen(keys.queue("q")) == 1


def test_one_scheduler_holds_the_lock_until_it_ends_or_it_lapses(connection: redis.Redis) -> None:
    first, second = CronScheduler(connection=connection), CronScheduler(connection=connection)
    for scheduler in (first, second):
        scheduler.register(jobs.add, "q", args=(1, 2), interval=3600)
        scheduler.register_birth()
    assert first.config_id == second.config_id
    assert [job.name for job in first.enqueue_jobs()] == ["jobs.add"]
    assert second.enqueue_jobs() == [] and (first.holds_lock, second.holds_lock) == (True, False)
    first.register_death()  # gives the lock up: the other takes it at its next round
    assert second.enqueue_jobs() == [] and second.holds_lock  # nothing due: the tick is recorded
    assert connection.llen(keys.queue("q")) == 1
    # A holder that vanishes: its lock lapses.
    assert hold_lock(connection, "c0ffee", "gone", ttl=0.2) and not hold_lock(connection, "c0ffee", "next")
    wait_for(lambda: hold_lock(connection, "c0ffee", "next"), deadline_seconds=5)


def test_a_scheduler_enqueues_the_ticks_missed_since_the_last_one_in_redis(connection: redis.Redis) -> None:
    """As after a handover: the last tick in Redis is 3.5 intervals old, so three fell due."""
    scheduler = CronScheduler(connection=connection)
    cron_job = scheduler.register(jobs.add, "q", args=(1, 2), interval=2, name="catch-up")
    last = time.time() - 7.0
    connection.set(keys.cron_tick(cron_job.tick_id), repr(last))
    assert scheduler.enqueue_jobs() == [cron_job] * 3
    assert _history_ticks(connection, "catch-up") == pytest.approx([last + 2, last + 4, last + 6])
    assert scheduler.enqueue_jobs() == []
    assert connection.llen(keys.queue("q")) == 3
    assert cron_job.latest_enqueue_time is not None
    assert cron_job.latest_enqueue_time.timestamp() == pytest.approx(last + 6)


def test_schedulers_of_different_configurations_each_enqueue_their_own(connection: redis.Redis) -> None:
    first, second = CronScheduler(connection=connection), CronScheduler(connection=connection)
    first.register(jobs.add, "q", args=(1, 2), interval=3600)
    second.register(jobs.echo, "q", interval=3600)
    assert first.config_id != second.config_id
    assert len(first.enqueue_jobs()) == len(second.enqueue_jobs()) == 1


def test_twin_registrations_are_two_cron_jobs(connection: redis.Redis) -> None:
    scheduler = CronScheduler(connection=connection)
    twins = [scheduler.register(jobs.add, "q", args=(n, n), interval=3600) for n in (1, 2)]
    assert twins[0].tick_id != twins[1].tick_id
    assert len(scheduler.enqueue_jobs()) == 2 and connection.llen(keys.queue("q")) == 2


# ---- real pools ----------------------------------------------------------------------------------


def _config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "cron_config.py"
    path.write_text("import jobs\nfrom jobpool import cron\n" + body)
    return str(path)


def _history_ticks(connection: redis.Redis, name: str) -> list[float]:
    return sorted(
        score
        for _, score in cast(Scored, connection.zrange(keys.cron_job_history(name), 0, -1, withscores=True))
    )


def _assert_once_a_tick(ticks: list[float], interval: float) -> None:
    """Every tick from the first to the last, each once: no tick doubled, none lost."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert all(gap == pytest.approx(interval, abs=1e-6) for gap in gaps), gaps


def _lock_holder(connection: redis.Redis) -> str | None:
    held = [cast("bytes | None", connection.get(key)) for key in connection.scan_iter(keys.cron_lock("*"))]
    return held[0].decode() if held and held[0] else None


def test_a_pool_with_cron_enqueues_and_runs_a_job_every_second(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    config = _config(tmp_path, "cron.register(jobs.add, 'q', args=(2, 3), interval=1, name='tick')\n")
    running = pool("-n", "1", "--cron", config, "q")
    finished = rq.Queue("q", connection=connection).finished_job_registry
    wait_for(lambda: finished.count >= 3, deadline_seconds=30)
    [seen] = rq.cron.CronScheduler.all(connection)
    assert seen.pid == running.process.pid and seen.config_file == config
    assert [job.name for job in seen.get_jobs()] == ["tick"]
    for job_id in finished.get_job_ids():
        assert rq.job.Job.fetch(job_id, connection=connection).return_value() == 5
    running.process.send_signal(signal.SIGTERM)
    assert running.wait() == 0
    assert rq.cron.CronScheduler.all(connection) == [] and _lock_holder(connection) is None
    _assert_once_a_tick(_history_ticks(connection, "tick"), 1.0)


def test_two_pools_with_one_configuration_enqueue_each_tick_once(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    config = _config(tmp_path, "cron.register(jobs.add, 'q', args=(1, 1), interval=1, name='tick')\n")
    pools = [pool("-n", "1", "--name", f"pool{n}", "--cron", config, "q") for n in range(2)]
    wait_for(lambda: len(rq.cron.CronScheduler.all(connection)) == 2, deadline_seconds=30)
    wait_for(lambda: len(_history_ticks(connection, "tick")) >= 6, deadline_seconds=40)
    for each in pools:
        each.process.send_signal(signal.SIGTERM)
    for each in pools:
        assert each.wait() == 0
    ticks = _history_ticks(connection, "tick")
    _assert_once_a_tick(ticks, 1.0)
    queue = rq.Queue("q", connection=connection)
    ran = queue.finished_job_registry.get_job_ids() + queue.job_ids  # a stopping pool may leave one queued
    assert sorted(ran) == sorted(get_cron_job_ids("tick", connection))  # every job enqueued, once each


def test_sigkill_of_the_lock_holder_hands_over_within_its_ttl_and_no_tick_is_doubled(
    connection: redis.Redis, pool: Callable[..., Pool], tmp_path: Path
) -> None:
    config = _config(tmp_path, "cron.register(jobs.add, 'q', args=(1, 1), interval=1, name='tick')\n")
    pools = {each.process.pid: each for each in (pool("-n", "1", "--cron", config, "q") for _ in range(2))}
    wait_for(lambda: len(rq.cron.CronScheduler.all(connection)) == 2, deadline_seconds=30)
    wait_for(lambda: len(_history_ticks(connection, "tick")) >= 3, deadline_seconds=30)
    holder = _lock_holder(connection)
    assert holder is not None
    holder_pid = int(holder.split(":")[1])  # an RQ-style name: host:pid:hex
    pools[holder_pid].process.kill()
    pools[holder_pid].process.wait()
    killed_at = time.monotonic()
    wait_for(lambda: _lock_holder(connection) not in (None, holder), deadline_seconds=30)
    took_over_in = time.monotonic() - killed_at
    assert took_over_in <= LOCK_TTL_SECONDS + LOCK_REFRESH_SECONDS + 4.0  # a loaded machine's slack
    ticks_at_handover = len(_history_ticks(connection, "tick"))
    wait_for(lambda: len(_history_ticks(connection, "tick")) >= ticks_at_handover + 3, deadline_seconds=30)
    ticks = _history_ticks(connection, "tick")
    _assert_once_a_tick(ticks, 1.0)  # the ticks that fell due while the lock lapsed: each once
    assert ticks[-1] >= time.time() - 5  # and it keeps up since
    assert len(set(get_cron_job_ids("tick", connection))) == len(ticks)


def test_jobpool_cron_runs_a_configuration_module_as_rq_cron_does(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    """``jobpool cron app.cron_config --path DIR``: a module path, imported from the path given."""
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cron_config.py").write_text(
        "import jobs\nfrom jobpool import cron\ncron.register(jobs.add, 'q', args=(1, 2), interval=1)\n"
    )
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    command = [sys.executable, "-m", "jobpool", "cron", "app.cron_config", "--path", str(tmp_path)]
    process = subprocess.Popen([*command, "-u", redis_url], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(_history_ticks(connection, "jobs.add")) >= 2, deadline_seconds=30)
        [seen] = rq.cron.CronScheduler.all(connection)
        assert (seen.pid, seen.config_file) == (process.pid, "app.cron_config")
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert rq.cron.CronScheduler.all(connection) == [] and _lock_holder(connection) is None
    _assert_once_a_tick(_history_ticks(connection, "jobs.add"), 1.0)


def test_a_pool_refuses_a_bad_configuration_before_it_starts(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    config = _config(tmp_path, "cron.register(jobs.add, 'q', interval=5, cron='* * * * *')\n")
    done = subprocess.run(
        [sys.executable, "-m", "jobpool", "start", "--cron", config, "-u", redis_url, "q"],
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "jobpool: Cannot specify both interval and cron parameters"
    assert connection.dbsize() == 0
