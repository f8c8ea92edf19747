"""A process the supervisor forks for work that must not hold up its loop: job code it never runs
itself (failure callbacks of abandoned jobs) and endpoints it never waits on (webhooks)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

from setproctitle import setproctitle

from ..work_horse import die_with_parent

logger = logging.getLogger("jobpool.supervisor")


def fork_helper(title: str, body: Callable[[], object]) -> int:
    """Forks a process that runs ``body`` and exits; it dies with the supervisor, like a worker.
    redis-py opens new connections in a forked process; the core does without its own. Returns
    its pid (the supervisor reaps it)."""
    parent_pid = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    status = 0
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        die_with_parent(parent_pid)
        setproctitle(title)
        body()
    except BaseException:
        logger.exception("%s failed", title)
        status = 1
    finally:
        logging.shutdown()
        os._exit(status)
