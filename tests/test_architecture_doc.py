"""docs/architecture.md's "Where things live" keeps up with the code: it names every module of
python/jobpool, and its picture of the layers is true of the imports (a module imports only what
stands below it in the picture, or to its right on its line)."""

from __future__ import annotations

import re

from test_import_layers import PACKAGE_DIR, import_edges, module_names

ARCHITECTURE = PACKAGE_DIR.parent.parent / "docs" / "architecture.md"
NOT_NAMED = {"jobpool", "jobpool.__main__", "jobpool._native", "jobpool.pool"}
"""The package itself, ``python -m jobpool`` and the extension (named as ``_native``)."""


def where_things_live() -> str:
    text = ARCHITECTURE.read_text()
    start = text.index("## Where things live")
    return text[start : text.index("\n## ", start + 1)]


def picture_rows() -> list[list[str]]:
    """The modules of the picture's rows below the pool's box and above the core, top first,
    each row's modules from left to right."""
    picture = where_things_live().split("```")[1].splitlines()
    top = next(i for i, line in enumerate(picture) if line.rstrip().endswith("┘")) + 1
    bottom = next(i for i, line in enumerate(picture) if "_native (rust/)" in line) - 1
    rows = [re.findall(r"([a-z_]+)\.py", line) for line in picture[top:bottom]]
    return [[f"jobpool.{name}" for name in row] for row in rows if row]


def test_where_things_live_names_every_module() -> None:
    section = where_things_live()
    unnamed = [
        name
        for name, path in module_names(PACKAGE_DIR, "jobpool").items()
        if name not in NOT_NAMED and f"{path.stem}.py" not in section
    ]
    assert unnamed == []


def test_the_picture_of_the_layers_is_true_of_the_imports() -> None:
    rows = picture_rows()
    place = {
        module: (row, column) for row, modules in enumerate(rows) for column, module in enumerate(modules)
    }
    assert {"jobpool.worker", "jobpool.job", "jobpool.keys"} <= set(place)  # it read the picture
    assert len(place) == sum(map(len, rows))  # each module in one place
    edges = import_edges(PACKAGE_DIR, "jobpool")
    upward = [
        f"{module} -> {target}"
        for module, (row, column) in place.items()
        for target in edges[module]
        if target in place and place[target] <= (row, column)
    ]
    assert upward == []
