"""The systemd unit shipped in docs/: the settings jobpool's supervisor relies on, and (where
systemd-analyze is installed) systemd's own check of the file."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobpool.pool.systemd import Notifier

UNIT = Path(__file__).parent.parent / "docs" / "jobpool@.service"


def settings(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> its values, in order (a key may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def test_the_unit_has_what_the_supervisor_relies_on() -> None:
    unit = settings(UNIT.read_text())
    assert unit["Service.Type"] == ["notify"]
    assert unit["Service.NotifyAccess"] == ["main"]
    assert unit["Service.KillMode"] == ["mixed"]  # SIGTERM to the supervisor alone, which relays it
    assert int(unit["Service.TimeoutStopSec"][0]) > 180 + 5  # above RQ's default job timeout + grace
    assert int(unit["Service.WatchdogSec"][0]) > 0
    assert unit["Service.Restart"] == ["on-failure"]
    (reload,) = unit["Service.ExecReload"]
    assert reload.split()[-2:] == ["-HUP", "$MAINPID"]
    (start,) = unit["Service.ExecStart"]
    assert start.split()[1:3] == ["start", "--name"]
    assert any("JOBPOOL_REDIS_URL" in line for line in UNIT.read_text().splitlines() if line.startswith("#"))
    assert unit["Service.User"] and unit["Service.EnvironmentFile"]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at this environment's jobpool.
    here = shutil.which("jobpool", path=str(Path(sys.executable).parent)) or sys.executable
    instance = tmp_path / "jobpool@emails.service"
    instance.write_text(UNIT.read_text().replace("/usr/local/bin/jobpool", here))
    checked = subprocess.run(
        [analyze, "verify", "--man=no", str(instance)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 for an unknown key or a bad value, and only says so on stderr
    complaints = [line for line in checked.stderr.splitlines() if "jobpool@" in line]
    assert checked.returncode == 0 and not complaints, checked.stderr


def test_notifications_never_block_the_supervisor_when_nobody_reads(tmp_path: Path) -> None:
    """A notify socket whose reader has stopped reading (its queue full) must not stop the
    supervisor's loop: a supervisor blocked in a STATUS notification reaps no worker."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    try:
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
        began = time.monotonic()
        for index in range(2_000):  # far more than the socket queues
            notifier.status(f"{index} workers")
        assert time.monotonic() - began < 10  # a blocked send would never return
        assert listener.recv(4096).decode() == "STATUS=0 workers"
    finally:
        listener.close()
