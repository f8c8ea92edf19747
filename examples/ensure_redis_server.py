"""``make demo``'s first step, when the demo is to start a private Redis: redis-server on the
PATH. When it is missing, it is installed from the system's packages if that can be done here
(root, with apt-get: ``apt-get install -y redis-server``, as ``.ci/run`` does); otherwise this
stops with one line saying what to do. Runs before the venv exists: the standard library only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

USE_YOURS = "or run the demo on a Redis of yours: make demo URL=redis://HOST:6379/0"
APT_COMMANDS = (("apt-get", "update", "-qq"), ("apt-get", "install", "-y", "-qq", "redis-server"))


@dataclass(frozen=True)
class Plan:
    """What to do: run ``commands`` (none: redis-server is there), or stop with ``instruction``."""

    commands: tuple[tuple[str, ...], ...] = field(default=())
    instruction: str | None = None


def plan(redis_server: str | None, is_root: bool, apt_get: str | None) -> Plan:
    """The decision, from what was found: redis-server's path, whether we are root, apt-get's path."""
    if redis_server is not None:
        return Plan()
    if apt_get is not None and is_root:
        return Plan(commands=APT_COMMANDS)
    if apt_get is not None:
        return Plan(
            instruction=f"redis-server is not installed: run `sudo apt-get install redis-server`, {USE_YOURS}"
        )
    return Plan(
        instruction=f"redis-server is not installed: install Redis with your system's packages, {USE_YOURS}"
    )


def main() -> int:
    decided = plan(shutil.which("redis-server"), os.geteuid() == 0, shutil.which("apt-get"))
    if decided.instruction is not None:
        print(decided.instruction, file=sys.stderr)
        return 1
    if not decided.commands:
        return 0
    print("redis-server is not installed: installing it (apt-get install -y redis-server)", flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in decided.commands:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, env=environment)
        if done.returncode != 0:
            print(f"`{' '.join(command)}` failed (exit {done.returncode}); {USE_YOURS}", file=sys.stderr)
            return 1
    if shutil.which("redis-server") is None:
        print(
            f"redis-server is still not on the PATH after apt-get installed it; {USE_YOURS}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
