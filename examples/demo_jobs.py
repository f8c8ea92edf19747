"""Job functions for the demo (workers import them as ``demo_jobs.<name>``)."""

from __future__ import annotations


def count_words(text: str) -> int:
    return len(text.split())


def total(*numbers: int) -> int:
    return sum(numbers)


def divide(a: int, b: int) -> float:
    return a / b
