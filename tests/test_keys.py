"""The key schema is one table in each language; these tests keep the two identical."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobpool import _native, keys, scripts
from jobpool.exceptions import InvalidKeyPrefix


def test_python_reads_the_cores_table_and_its_names_are_unique() -> None:
    assert dict(_native.key_templates()) == keys.TEMPLATES
    assert len(_native.key_templates()) == len(keys.TEMPLATES)
    assert keys.render("scheduler_lock", queue="q") == keys.scheduler_lock("q")
    assert keys.render("maintenance_lock", queue="q") == keys.maintenance_lock("q")


@pytest.mark.parametrize("prefix", ["rq", "{rq}", "my.app:jobs"])
def test_python_and_rust_render_the_same_keys(prefix: str) -> None:
    samples = {
        "job_id": "j-1",
        "execution_id": "e1",
        "queue": "high{x}",
        "worker": "w1",
        "scheduler": "s1",
        "cron_job": "tasks.tidy",
        "cron_config": "c0ffee",
        "group": "g1",
        "rate_limit": "k{1}",
    }
    for name, template in keys.TEMPLATES.items():
        needed = {k: v for k, v in samples.items() if "{" + k + "}" in template}
        rust = _native.render_key(name, prefix, list(needed.items()))
        python = template.replace("{prefix}", "\0").format(**needed).replace("\0", prefix)
        assert rust == python, name


def test_the_scripts_template_lists_and_id_mark_are_the_cores() -> None:
    mark = scripts.ID_MARK
    assert mark == _native.ID_MARK == "\0"
    assert keys.dependents_templates() == [
        keys.job(mark),
        keys.job_dependencies(mark),
        keys.queue(mark),
        keys.registry("deferred", mark),
        keys.wakeup(mark),
    ]
    assert keys.rate_limit_templates() == [
        keys.rate_limit(mark),
        keys.rate_limit_allowed(mark),
        keys.rate_limit_waiting(mark),
        keys.RATE_LIMIT_KEYS,
    ]
    assert _native.dependents_templates("{rq}")[3] == "{rq}:deferred:\0"
    assert _native.rate_limit_templates("{rq}")[3] == "{rq}:rl-keys"


def test_rq_layout() -> None:
    assert keys.job("abc") == "rq:job:abc"
    assert keys.job_dependencies("abc") == "rq:job::abc:dependencies"
    assert keys.registry("started", "q") == "rq:wip:q"
    assert keys.QUEUES == "rq:queues"
    assert keys.queue_name_from_key("rq:queue:high") == "high"


def test_unknown_rust_template_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _native.render_key("nope", "rq", [])


def test_prefix_validation() -> None:
    assert keys.validate_prefix("{rq}") == "{rq}"
    with pytest.raises(InvalidKeyPrefix):
        keys.validate_prefix("rq prefix")


PREFIX_PROGRAM = """
import sys, redis, rq
sys.path.insert(0, {tests!r})
import jobs
from jobpool import Queue, keys
connection = redis.Redis.from_url({url!r})
job = Queue("q", connection=connection).enqueue(jobs.add, 2, 3, job_id="pfx")
assert keys.PREFIX == "{{rq}}", keys.PREFIX
assert connection.exists("{{rq}}:job:pfx") and connection.lrange("{{rq}}:queue:q", 0, -1) == [b"pfx"]
assert connection.smembers("{{rq}}:queues") == {{b"{{rq}}:queue:q"}}
assert rq.job.Job.fetch("pfx", connection=connection).args == (2, 3)
print("ok")
"""


def test_key_prefix_comes_from_rq_key_prefix(redis_url: str, connection: object) -> None:
    """A hash-tag prefix puts every key under it, and RQ with the same setting reads the job."""
    program = PREFIX_PROGRAM.format(tests=str(Path(__file__).parent), url=redis_url)
    env = {**os.environ, "RQ_KEY_PREFIX": "{rq}"}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
