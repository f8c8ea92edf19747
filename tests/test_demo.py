"""The README's first command keeps working: the demo runs end to end, on the Redis it is
given (``make demo URL=...`` or REDIS_URL), and ``make demo`` finds (or installs) redis-server
for the private one it starts otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import jobpool

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"
ENSURE = ROOT / "examples" / "ensure_redis_server.py"
DEAD_URL = "redis://127.0.0.1:1/0"  # nothing listens there

sys.path.insert(0, str(ENSURE.parent))
from ensure_redis_server import APT_COMMANDS, Plan, plan  # noqa: E402  (found through the path just above)


def assert_the_demo_ran(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("finished") == 6
    assert "in the failed registry: True" in done.stdout
    assert "ZeroDivisionError" in done.stdout


def test_demo_runs_jobs_through_a_worker(redis_url: str, connection: redis.Redis) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--url", redis_url], capture_output=True, text=True, timeout=120
    )
    assert_the_demo_ran(done)
    assert connection.keys("rq:job:*")  # on the Redis it was given


# ---- make demo --------------------------------------------------------------------------------------


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_environment() -> dict[str, str]:
    """This environment without a Redis URL, nor the flags of a make this test may run under."""
    ours = {"JOBPOOL_REDIS_URL", "RQ_REDIS_URL", "REDIS_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    return {name: value for name, value in os.environ.items() if name not in ours}


@needs_make
@pytest.mark.parametrize("given", ["URL=", "REDIS_URL in the environment"])
def test_make_demo_uses_the_redis_it_is_given(redis_url: str, connection: redis.Redis, given: str) -> None:
    environment = make_environment()
    environment["PYTHONPATH"] = str(Path(jobpool.__file__).parent.parent)
    # -o setup: the venv and the build are this test's interpreter and jobpool, not made anew.
    command = ["make", "--no-print-directory", "-o", "setup", "demo", f"PY={sys.executable}"]
    if given == "URL=":
        command.append(f"URL={redis_url}")
        environment["REDIS_URL"] = DEAD_URL  # URL= comes first
    else:
        environment["REDIS_URL"] = redis_url
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180)
    assert_the_demo_ran(done)
    assert f"examples/demo.py --url '{redis_url}'" in done.stdout
    assert "started a private redis-server" not in done.stdout
    assert "ensure_redis_server" not in done.stdout  # no redis-server is needed for a Redis of yours
    assert connection.keys("rq:job:*")


@needs_make
def test_make_demo_without_a_url_first_makes_sure_of_redis_server() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "demo"],
        cwd=ROOT,
        env=make_environment(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "python3 examples/ensure_redis_server.py"  # before the (long) setup
    assert lines[-1].strip() == ".venv/bin/python examples/demo.py"


# ---- finding redis-server -----------------------------------------------------------------------------


def test_the_decision() -> None:
    assert plan("/usr/bin/redis-server", is_root=False, apt_get=None) == Plan()
    assert plan("/usr/bin/redis-server", is_root=True, apt_get="/usr/bin/apt-get") == Plan()
    assert plan(None, is_root=True, apt_get="/usr/bin/apt-get") == Plan(commands=APT_COMMANDS)
    assert APT_COMMANDS[-1] == ("apt-get", "install", "-y", "-qq", "redis-server")
    as_user = plan(None, is_root=False, apt_get="/usr/bin/apt-get")
    assert as_user.commands == () and as_user.instruction is not None
    assert (
        "sudo apt-get install redis-server" in as_user.instruction and "make demo URL=" in as_user.instruction
    )
    elsewhere = plan(None, is_root=True, apt_get=None)
    assert elsewhere.commands == () and elsewhere.instruction is not None
    assert "make demo URL=" in elsewhere.instruction


def run_ensure(path: Path) -> subprocess.CompletedProcess[str]:
    """The script, with ``path`` as the whole PATH (so no real redis-server or apt-get)."""
    return subprocess.run(
        [sys.executable, str(ENSURE)], env={"PATH": str(path)}, capture_output=True, text=True, timeout=60
    )


def fake_apt_get(directory: Path) -> Path:
    """An apt-get that logs its arguments, and whose install puts a redis-server beside it."""
    log = directory / "apt-get.log"
    script = directory / "apt-get"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"with open({str(log)!r}, 'a') as log:\n"
        "    log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if 'install' in sys.argv:\n"
        f"    server = {str(directory / 'redis-server')!r}\n"
        "    open(server, 'w').write('#!/bin/sh\\n')\n"
        "    os.chmod(server, 0o755)\n"
    )
    script.chmod(0o755)
    return log


def test_missing_with_nothing_to_install_it_is_one_line(tmp_path: Path) -> None:
    done = run_ensure(tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "redis-server is not installed" in done.stderr
    assert "make demo URL=redis://" in done.stderr


def test_missing_with_apt_get_is_installed_as_root_else_one_line(tmp_path: Path) -> None:
    log = fake_apt_get(tmp_path)
    done = run_ensure(tmp_path)
    if os.geteuid() == 0:
        assert done.returncode == 0, done.stderr
        assert log.read_text().splitlines() == ["update -qq", "install -y -qq redis-server"]
        assert "installing it" in done.stdout
    else:
        assert done.returncode == 1
        assert "sudo apt-get install redis-server" in done.stderr and done.stderr.count("\n") == 1
        assert not log.exists()


def test_present_is_left_alone(tmp_path: Path) -> None:
    log = fake_apt_get(tmp_path)
    server = tmp_path / "redis-server"
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    done = run_ensure(tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not log.exists()
