"""The README's first command keeps working: the demo runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_runs_jobs_through_a_worker(redis_url: str, connection: redis.Redis) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--url", redis_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("finished") == 6
    assert "in the failed registry: True" in done.stdout
    assert "ZeroDivisionError" in done.stdout
