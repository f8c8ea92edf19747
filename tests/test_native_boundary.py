"""The Rust core's typed boundary, driven as the worker drives it, against a real redis-server:
typed records in (Takes, Ending) and out (TakenJob, StepResult), outcomes as the stub's
literals, errors as jobpool.exceptions classes, and Endings kept whole in the ledger (a pool
worker keeps the endings it has not recorded there)."""

from __future__ import annotations

import pytest
import redis

import jobs
from jobpool import Queue
from jobpool._native import Ending, Ledger, Takes
from jobpool.exceptions import RedisCommandError
from jobpool.redis_target import connect_core


def test_a_step_takes_typed_jobs_and_records_typed_endings(redis_url: str, connection: redis.Redis) -> None:
    queue = Queue("q", connection=connection)
    first, second = queue.enqueue(jobs.add, 1, 2), queue.enqueue(jobs.add, 3, 4)
    core = connect_core(redis_url)
    step = core.step("w1", [], Takes(["q"], "w1", ["e" * 32, "f" * 32], 30), 500)
    assert step is not None and step.outcomes == []
    assert [taken.job_id for taken in step.taken] == [first.id, second.id]
    taken = step.taken[0]
    assert (taken.queue, taken.execution_id, taken.heartbeat_ttl) == ("q", "e" * 32, 30)
    assert taken.fields["description"] == b"jobs.add(1, 2)"

    finished = Ending(taken.job_id, taken.execution_id, "q", 1.0, 0.01, None, None)
    crashed = Ending(second.id, "f" * 32, "q", 1.0, 0.01, "failed", None, b"boom", b"Traceback: boom")
    recorded = core.step("w1", [finished, crashed], None, 500)
    assert recorded is not None and recorded.outcomes == ["finished", "failed"]
    assert recorded.taken == []
    assert first.get_status(refresh=True) == "finished"
    assert second.get_status(refresh=True) == "failed"
    assert core.step("w1", [finished], None, 500).outcomes == ["stale"]  # type: ignore[union-attr]


def test_a_held_job_is_released_not_failed(redis_url: str, connection: redis.Redis) -> None:
    """A job taken ahead that never starts goes back through ``release``, not as an ending."""
    queue = Queue("q", connection=connection)
    held, behind = queue.enqueue(jobs.add, 1, 2), queue.enqueue(jobs.add, 3, 4)
    core = connect_core(redis_url)
    step = core.step("w1", [], Takes(["q"], "w1", ["e" * 32], 30, held=True), 500, running=True)
    assert step is not None and [taken.job_id for taken in step.taken] == [held.id]
    assert core.release("w1", held.id, "e" * 32, "q") == "released"
    assert queue.job_ids == [held.id, behind.id] and held.get_status(refresh=True) == "queued"
    assert core.release("w1", held.id, "e" * 32, "q") == "stale"  # once: a repeat changes nothing
    assert queue.job_ids == [held.id, behind.id]
    with pytest.raises(ValueError, match="failure must be"):
        Ending(held.id, "e" * 32, "q", None, 0.0, "released")  # type: ignore[arg-type]


def test_endings_come_back_whole_from_the_ledgers_log() -> None:
    ledger = Ledger(2)
    stopped = Ending("job", "e" * 32, "q", 12.5, 0.25, "stopped", None, b"info", b"string")
    finished = Ending("j\u00e9b", "f" * 32, "q", None, 0.0, None, b"NDI=")
    assert ledger.note_ended(1, stopped) and ledger.note_ended(1, finished)
    copy, value = ledger.ended(1)
    assert (copy.job_id, copy.execution_id, copy.queue) == ("job", "e" * 32, "q")
    assert (copy.started_at, copy.working_seconds, copy.failure) == (12.5, 0.25, "stopped")
    assert (copy.return_value, copy.exc_info, copy.exc_string) == (None, b"info", b"string")
    assert (value.job_id, value.started_at, value.failure) == ("j\u00e9b", None, None)
    assert (value.return_value, value.exc_info) == (b"NDI=", b"")
    assert ledger.ended(0) == []
    too_big = Ending("job", "e" * 32, "q", None, 0.0, "failed", None, b"x" * 70_000, b"")
    assert ledger.note_ended(0, too_big) is False


def test_bad_records_are_refused_before_anything_is_sent(redis_url: str, connection: redis.Redis) -> None:
    with pytest.raises(ValueError, match="failure must be"):
        Ending("job", "e" * 32, "q", None, 0.0, "exploded")  # type: ignore[arg-type]
    core = connect_core(redis_url)
    with pytest.raises(ValueError, match="step"):
        core.fail("w1", Ending("job", "e" * 32, "q", None, 0.0, None))
    assert connection.dbsize() == 0


def test_a_second_deferred_step_is_a_typed_error(redis_url: str) -> None:
    core = connect_core(redis_url)
    takes = Takes(["q"], "w1", ["e" * 32], 30)
    assert core.step("w1", [], takes, 500, defer=True) is None
    with pytest.raises(RedisCommandError, match="collect it first"):
        core.step("w1", [], Takes(["q"], "w1", ["f" * 32], 30), 500, defer=True)
    assert core.collect().taken == []
    with pytest.raises(RedisCommandError, match="no deferred step"):
        core.collect()
