"""Formatting a benchmark's figures: numbers, markdown tables, spreads of runs, progress lines."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bench.redis_counting import Cost

EN_DASH = "\u2013"
TIMES = "\u00d7"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Spread:
    """Several runs' figures (rates in jobs per second, latencies, ...): their median and range."""

    median: float
    min: float
    max: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, runs: Iterable[float]) -> Spread:
        """The spread of ``runs`` (at least one)."""
        values = tuple(runs)
        return cls(statistics.median(values), min(values), max(values), values)


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def display_name(command: str) -> str:
    return command.replace("|", " ").upper()


def breakdown(counts: Mapping[str, int], jobs: int = 1) -> str:
    """``EVALSHA 1, HSET 2`` (counts / jobs), most frequent first; ``-`` when empty."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{display_name(name)} {number(count / jobs)}" for name, count in ordered) or "-"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1) -> list[str]:
    """A markdown table: the first ``text_columns`` columns left-aligned, the rest (figures) right."""
    aligns = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def spread_cell(spread: Spread) -> str:
    """``median (min-max)``, in whole jobs per second."""
    median, low, high = (number(round(rate)) for rate in (spread.median, spread.min, spread.max))
    return f"{median} ({low}{EN_DASH}{high})"


def decimal_cell(spread: Spread | None, digits: int = 1, scale: float = 1.0) -> str:
    """``median (min-max)`` of ``spread`` times ``scale``, to ``digits`` decimals; the one value of a
    single run; ``-`` for none."""
    if spread is None:
        return "-"
    median, low, high = (value * scale for value in (spread.median, spread.min, spread.max))
    if len(spread.runs) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}{EN_DASH}{high:.{digits}f})"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def cost_table_rows(picked: Sequence[Cost], per_job: bool) -> list[list[str]]:
    """Rows of round trips and commands, a column per cost: per job (``Cost.jobs``), or whole."""

    def row(label: str, value: Callable[[Cost], str]) -> list[str]:
        return [label, *(value(cost) for cost in picked)]

    def jobs(cost: Cost) -> int:
        return cost.jobs if per_job else 1

    def whole_or_per_job(whole: int, each: float) -> str:
        return number(each if per_job else whole)

    return [
        row("round trips", lambda cost: whole_or_per_job(cost.round_trips, cost.round_trips_per_job)),
        row(
            "commands the client sent",
            lambda cost: whole_or_per_job(cost.commands_sent, cost.commands_sent_per_job),
        ),
        row(
            "commands Redis executed, incl. inside scripts",
            lambda cost: whole_or_per_job(cost.commands_executed, cost.commands_executed_per_job),
        ),
        row("sent, by command", lambda cost: breakdown(cost.sent, jobs(cost))),
        row("run inside scripts, by command", lambda cost: breakdown(cost.inside_scripts, jobs(cost))),
    ]
