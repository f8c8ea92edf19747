"""No import cycle among python/jobpool's modules: they form layers, a lower module never
importing a higher one.

Every import counts, wherever it is written: at module level, under ``if TYPE_CHECKING:`` and
inside functions (an import hidden in a function is still a dependency, and a cycle through it
is still a cycle). Where a lower class must hand out objects of a higher one (RQ's API has
``Job.failed_job_registry`` and ``FailedJobRegistry.requeue(job_id) -> Job``), the higher module
enters its class into the lower one as it loads (``Job.model_classes``,
``BaseRegistry.queue_class``); see docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "python" / "jobpool"

KNOWN_CYCLES: list[frozenset[str]] = []
"""Cycles let stand for now, each a frozenset of modules; the list may only shrink."""

Edges = dict[str, dict[str, set[str]]]
"""module -> {module it imports -> the names it takes from it}"""


def module_names(package_dir: Path, package: str) -> dict[str, Path]:
    """Every module of the package (packages by their ``__init__``), by dotted name; a native
    module by its stub (``_native.pyi``)."""
    names = {}
    stubs = [path for path in package_dir.rglob("*.pyi") if not path.with_suffix(".py").exists()]
    for path in sorted([*package_dir.rglob("*.py"), *stubs]):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([package, *parts])] = path
    return names


def import_edges(package_dir: Path, package: str) -> Edges:
    """What each module of the package imports from the others, read from every import
    statement in its source, wherever it stands."""
    modules = module_names(package_dir, package)
    edges: Edges = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found: dict[str, set[str]] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _known_prefix(alias.name, modules)
                    if target:
                        found.setdefault(target, set()).add("*")
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, name, is_package)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:
                        found.setdefault(submodule, set()).add("(module)")
                    elif base in modules:
                        found.setdefault(base, set()).add(alias.name)
        found.pop(name, None)
        edges[name] = found
    return edges


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _known_prefix(dotted: str, modules: dict[str, Path]) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def cycles(edges: Edges) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges.get(module, {})):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def describe(cycle: frozenset[str], edges: Edges) -> str:
    lines = [f"{len(cycle)} modules import each other: {', '.join(sorted(cycle))}"]
    for module in sorted(cycle):
        for target in sorted(set(edges[module]) & cycle):
            lines.append(f"  {module} -> {target}: {', '.join(sorted(edges[module][target]))}")
    return "\n".join(lines)


def test_jobpool_has_no_import_cycle_but_the_known_ones() -> None:
    edges = import_edges(PACKAGE_DIR, "jobpool")
    assert "jobpool.job" in edges and "jobpool.job_hash" in edges["jobpool.job"]  # it read them
    found = cycles(edges)
    new = [cycle for cycle in found if cycle not in KNOWN_CYCLES]
    assert not new, "Import cycles:\n" + "\n".join(describe(cycle, edges) for cycle in new)
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in found]
    assert not gone, f"No longer cycles: take them out of KNOWN_CYCLES: {gone}"


def test_a_cycle_through_a_function_or_type_checking_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from .sub.high import g\n    return g\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "high.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..low import f\n"
    )
    (package / "apart.py").write_text("import pkg.low\nfrom . import sub\n")
    edges = import_edges(package, "pkg")
    assert edges["pkg.apart"] == {"pkg.low": {"*"}, "pkg.sub": {"(module)"}}
    (cycle,) = cycles(edges)
    assert cycle == {"pkg.low", "pkg.sub.high"}
    assert "pkg.low -> pkg.sub.high: g" in describe(cycle, edges)
