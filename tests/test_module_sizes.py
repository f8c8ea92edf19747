"""No module over 600 lines, in Python or in Rust (a Rust module's tests included: they live
beside it, in ``rust/<module>/tests.rs``, when they would push it over). A module that grows past
it is cut along a seam, as docs/architecture.md describes them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOST_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    sources = [*(ROOT / "python" / "jobpool").rglob("*.py"), *(ROOT / "rust").rglob("*.rs")]
    assert len(sources) > 50  # the walk found the tree
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert too_long == {}
