"""Counting what a Redis client costs: round trips and commands, on both sides of the wire.

- Client side: ``CountingConnection``, a redis-py connection class that reports every write and
  every reply read to a ``RoundTripCounter`` (a pipeline is one round trip, whatever its size), and
  names each command it writes by parsing the RESP bytes.
- Server side: ``INFO commandstats`` deltas (``CONFIG RESETSTAT`` first), which include the
  commands run inside Lua scripts, and ``ScriptCommandWatch`` (MONITOR), which names those.

Shared by the suite's ``enqueue``, ``cost`` and ``idle`` sections.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import redis
from redis.client import Monitor
from redis.connection import Connection, ConnectionPool

CONTAINER_COMMANDS = frozenset(
    {
        "acl",
        "client",
        "cluster",
        "command",
        "config",
        "function",
        "latency",
        "memory",
        "module",
        "object",
        "pubsub",
        "script",
        "slowlog",
        "xinfo",
    }
)
"""Commands that commandstats names with their subcommand (``script|exists``)."""

MEASURING_COMMANDS = frozenset({"config|resetstat"})
"""The measuring client's own commands that show in commandstats (INFO does not count itself)."""

SCRIPT_CHECKS = frozenset({"script|exists", "script|load"})


# ---- counting on the client side ---------------------------------------------------------------


def wire_bytes(packed: str | bytes | memoryview | Iterable[bytes | memoryview]) -> bytes:
    """What redis-py hands ``send_packed_command`` (one buffer or a list of chunks), as one buffer."""
    if isinstance(packed, str):
        return packed.encode()
    if isinstance(packed, (bytes, memoryview)):
        return bytes(packed)
    return b"".join(packed)


def command_names(wire: bytes) -> Iterator[str]:
    """The commandstats name of each command in ``wire`` (RESP arrays of bulk strings)."""
    position = 0
    while position < len(wire):
        words, position = _read_command(wire, position)
        yield command_name(words)


def _read_command(wire: bytes, position: int) -> tuple[list[bytes], int]:
    """The first two words of the command at ``position``, and where the next command begins."""
    count, position = _read_header(wire, position, b"*")
    words: list[bytes] = []
    for _ in range(count):
        length, position = _read_header(wire, position, b"$")
        if len(words) < 2:
            words.append(wire[position : position + length])
        position += length + 2  # the bulk string and its CRLF
    return words, position


def _read_header(wire: bytes, position: int, marker: bytes) -> tuple[int, int]:
    """The number in a ``*<n>`` or ``$<n>`` header at ``position``, and where its payload begins."""
    if wire[position : position + 1] != marker:
        raise ValueError(f"expected {marker!r} at byte {position} of a packed command")
    end = wire.index(b"\r\n", position)
    return int(wire[position + 1 : end]), end + 2


def command_name(words: Sequence[bytes]) -> str:
    """The name commandstats gives a command: ``hset``, or ``script|exists`` for a container command."""
    name = words[0].decode().lower()
    if name in CONTAINER_COMMANDS and len(words) > 1:
        return f"{name}|{words[1].decode().lower()}"
    return name


class RoundTripCounter:
    """Counts a client's round trips to Redis and the commands it sends, by name.

    A round trip is a write followed by reading replies. A write starts a new round trip unless
    the replies to the previous write on the same connection have not been read yet, so a pipeline
    (all its commands in one write, then all the replies) is one round trip, whatever its size.
    Each connection is followed on its own: a client may use several at once (RQ's worker listens
    for commands on a pub/sub connection, in a thread of its own).
    """

    def __init__(self) -> None:
        self.round_trips = 0
        self.commands: Counter[str] = Counter()
        self._awaiting_replies: set[int] = set()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.round_trips = 0
            self.commands = Counter()
            self._awaiting_replies = set()

    def record_write(self, wire: bytes, connection: int = 0) -> None:
        """``connection`` tells the client's connections apart (any id, the same for each write)."""
        with self._lock:
            if connection not in self._awaiting_replies:
                self.round_trips += 1
                self._awaiting_replies.add(connection)
            self.commands.update(command_names(wire))

    def record_read(self, connection: int = 0) -> None:
        with self._lock:
            self._awaiting_replies.discard(connection)


class CountingConnection(Connection):
    """A redis-py TCP connection that reports its writes and reads to a ``RoundTripCounter``."""

    def __init__(self, *, counter: RoundTripCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counter = counter

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        super().send_packed_command(command, check_health)  # may connect first: its handshake counts first
        self.counter.record_write(wire_bytes(command), id(self))

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        finally:
            self.counter.record_read(id(self))  # an error reply (NOSCRIPT, say) is a reply too


def counting_client(url: str, counter: RoundTripCounter) -> redis.Redis:
    pool = ConnectionPool.from_url(url, connection_class=CountingConnection, counter=counter)
    return redis.Redis(connection_pool=pool)


# ---- counting on the server side ---------------------------------------------------------------


def reset_server_stats(admin: redis.Redis) -> None:
    admin.config_resetstat()


def executed_commands(admin: redis.Redis) -> Counter[str]:
    """Calls per command since the last reset, including those made inside scripts."""
    stats = admin.info("commandstats")
    calls = Counter({name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()})
    for name in MEASURING_COMMANDS:
        del calls[name]
    return calls


# ---- what a batch cost -----------------------------------------------------------------------


MONITOR_WORD = re.compile(rb'"((?:[^"\\]|\\.)*)"')
"""One quoted word of a MONITOR line (Redis escapes quotes and backslashes inside it)."""


def parse_monitor_line(line: bytes) -> tuple[bytes, list[bytes]]:
    """(client, first two words) of a MONITOR line: ``<time> [<db> <client>] "WORD" ...``, where
    the client is ``lua`` for a command run inside a script."""
    head, _, words = line.partition(b"] ")
    client = head.partition(b"[")[2].partition(b" ")[2]
    first_two = [match.group(1) for match in itertools.islice(MONITOR_WORD.finditer(words), 2)]
    return client, first_two


class ScriptCommandWatch:
    """Names the commands that Redis runs inside Lua scripts, from MONITOR (its ``[<db> lua]``
    lines). commandstats counts them too, but cannot tell them from the same commands sent by a
    client; with this, sent = executed - run inside scripts, whatever the client (a Rust one too).

    MONITOR slows the server down: use it to count, never while timing.
    """

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._monitor: Monitor | None = None

    def __enter__(self) -> ScriptCommandWatch:
        self._monitor = self._client.monitor()
        self._monitor.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._monitor is not None:
            self._monitor.__exit__()
        self._client.close()

    def collect(self, admin: redis.Redis) -> Counter[str]:
        """The commands scripts ran since the last collect (or since MONITOR started), by name.
        It marks the end with an ECHO from ``admin``: read commandstats before calling this."""
        assert self._monitor is not None, "use ScriptCommandWatch as a context manager"
        marker = f"jobpool-bench-end-{uuid4().hex}".encode()
        admin.echo(marker)
        commands: Counter[str] = Counter()
        while True:
            client, words = parse_monitor_line(self._monitor.connection.read_response())
            if client == b"lua":
                commands[command_name(words)] += 1
            elif words == [b"ECHO", marker]:
                return commands


def sorted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` as a plain dict, by name (as the JSON lists commands)."""
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class Cost:
    """What a batch of ``jobs`` jobs cost a client: round trips, and commands by name; made by
    ``Cost.of``, which works out the totals, the per-job figures and the commands run inside scripts."""

    jobs: int
    round_trips: int
    commands_sent: int
    commands_executed: int
    round_trips_per_job: float
    commands_sent_per_job: float
    commands_executed_per_job: float
    sent: dict[str, int]
    """Commands the client sent."""
    executed: dict[str, int]
    """Commands Redis executed, including those run inside scripts."""
    inside_scripts: dict[str, int]
    """Executed but not sent: run inside scripts."""
    unaccounted: dict[str, int]
    """Commands sent but not executed: should be empty (else another client or a rejected call)."""

    @classmethod
    def of(cls, jobs: int, round_trips: int, sent: Mapping[str, int], executed: Mapping[str, int]) -> Cost:
        sent_counts, executed_counts = Counter(sent), Counter(executed)
        commands_sent, commands_executed = sum(sent_counts.values()), sum(executed_counts.values())
        return cls(
            jobs=jobs,
            round_trips=round_trips,
            commands_sent=commands_sent,
            commands_executed=commands_executed,
            round_trips_per_job=round_trips / jobs,
            commands_sent_per_job=commands_sent / jobs,
            commands_executed_per_job=commands_executed / jobs,
            sent=sorted_counts(sent_counts),
            executed=sorted_counts(executed_counts),
            inside_scripts=sorted_counts(executed_counts - sent_counts),
            unaccounted=sorted_counts(sent_counts - executed_counts),
        )

    @property
    def script_check_round_trips(self) -> int:
        """Round trips spent on SCRIPT EXISTS / SCRIPT LOAD (each is one, outside any pipeline)."""
        return sum(self.sent.get(name, 0) for name in SCRIPT_CHECKS)

    def minus(self, smaller: Cost) -> Cost:
        """What this batch cost beyond ``smaller``, the same work on fewer jobs: the cost of the
        extra jobs alone, with whatever both paid once (connecting, start-up) cancelled out."""
        return Cost.of(
            self.jobs - smaller.jobs,
            self.round_trips - smaller.round_trips,
            counter_difference(self.sent, smaller.sent),
            counter_difference(self.executed, smaller.executed),
        )


def counter_difference(larger: Mapping[str, int], smaller: Mapping[str, int]) -> Counter[str]:
    """``larger - smaller`` by name, keeping negative differences (``Counter.__sub__`` drops them)."""
    differences = Counter(larger)
    differences.subtract(smaller)
    return Counter({name: count for name, count in differences.items() if count})


def measure_cost(
    action: Callable[[], object], jobs: int, counter: RoundTripCounter, admin: redis.Redis
) -> Cost:
    reset_server_stats(admin)
    counter.reset()
    action()
    return Cost.of(jobs, counter.round_trips, counter.commands, executed_commands(admin))
