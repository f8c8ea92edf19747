"""Formatting a benchmark's figures: numbers, markdown tables, spreads of runs, progress lines."""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.redis_counting import Cost

EN_DASH = "\u2013"
TIMES = "\u00d7"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Spread:
    """Several runs' rates, in jobs per second."""

    rates: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": min(self.rates),
            "max": max(self.rates),
            "runs": list(self.rates),
        }


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def display_name(command: str) -> str:
    return command.replace("|", " ").upper()


def breakdown(counts: Counter[str], jobs: int = 1) -> str:
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
    median, low, high = (
        number(round(rate)) for rate in (spread.median, min(spread.rates), max(spread.rates))
    )
    return f"{median} ({low}{EN_DASH}{high})"


def decimal_cell(spread: Spread, digits: int = 1, scale: float = 1.0) -> str:
    """``median (min-max)`` of ``spread`` times ``scale``, to ``digits`` decimals; the one value of a
    single run; ``-`` for none."""
    if not spread.rates:
        return "-"
    median, low, high = (value * scale for value in (spread.median, min(spread.rates), max(spread.rates)))
    if len(spread.rates) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}{EN_DASH}{high:.{digits}f})"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def cost_table_rows(picked: Sequence[Cost], per_job: bool) -> list[list[str]]:
    """Rows of round trips and commands, a column per cost: per job (``Cost.jobs``), or whole."""

    def row(label: str, value: Callable[[Cost], str]) -> list[str]:
        return [label, *(value(cost) for cost in picked)]

    def scaled(count: int, cost: Cost) -> str:
        return number(cost.per_job(count) if per_job else count)

    def jobs(cost: Cost) -> int:
        return cost.jobs if per_job else 1

    return [
        row("round trips", lambda cost: scaled(cost.round_trips, cost)),
        row("commands the client sent", lambda cost: scaled(cost.sent_total, cost)),
        row("commands Redis executed, incl. inside scripts", lambda cost: scaled(cost.executed_total, cost)),
        row("sent, by command", lambda cost: breakdown(cost.sent, jobs(cost))),
        row("run inside scripts, by command", lambda cost: breakdown(cost.inside_scripts, jobs(cost))),
    ]
