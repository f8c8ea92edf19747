"""The line ``jobpool start`` logs as it starts: what this pool is, and where it works.

It names the version, the pool, its queues (highest priority first), its size, the Redis it
works on (the URL without its password), the key prefix and the take-ahead cap (--prefetch); in
``--log-format json`` each is a key of the line too.
"""

from __future__ import annotations

import logging
import urllib.parse

from .. import __version__, keys

logger = logging.getLogger("jobpool.supervisor")
HIDDEN = "***"


def redis_address(url: str) -> str:
    """``url`` with its password, in the user part or the query (``?password=``), hidden."""
    parts = urllib.parse.urlsplit(url)
    address = url
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        hidden = f"{user.split(':', 1)[0]}:{HIDDEN}@{host}"
        address = address.replace(f"//{parts.netloc}", f"//{hidden}", 1)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "password" for name, _ in query):
        shown = [(name, HIDDEN if name == "password" else value) for name, value in query]
        address = address.replace(f"?{parts.query}", f"?{urllib.parse.urlencode(shown, safe='*')}", 1)
    return address


def log_banner(*, url: str, name: str, queues: list[str], size: int, prefetch: int, burst: bool) -> None:
    """Logs the pool's start-up line at INFO."""
    fields = {
        "version": __version__,
        "pool": name,
        "queues": queues,
        "workers": size,
        "redis": redis_address(url),
        "key_prefix": keys.PREFIX,
        "prefetch": prefetch,
        "burst": burst,
    }
    logger.info(
        "jobpool %s starting pool %s: %d worker%s on %s, Redis %s, key prefix %s, prefetch %d%s",
        __version__,
        name,
        size,
        "" if size == 1 else "s",
        ", ".join(queues),
        fields["redis"],
        keys.PREFIX,
        prefetch,
        ", burst" if burst else "",
        extra=fields,
    )
