"""Layers that point one way: no import cycle between packages (imports inside functions count), nothing imports the
CLI but `__main__`, and the procedure layer sits below everything but the shared modules."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import rollback_tui

ROOT = Path(rollback_tui.__file__).parent
#: Known cycles still to break, each with why it is there (empty: there are none).
ALLOWED_CYCLES: set[frozenset[str]] = set()
#: What the procedure layer may import: only modules with no package of their own below it.
PROCEDURE_MAY_IMPORT = {"procedure", "errors"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every rollback_tui module a file imports (at module level, in functions, under TYPE_CHECKING), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from rollback_tui.ui import app` imports the module ui.app
                yield f"{target}.{alias.name}", node.lineno


def unit(module: str) -> str:
    """The package a module belongs to: rollback_tui.engine.runner -> engine; rollback_tui.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def known_modules() -> set[str]:
    return {module_name(path) for path in sources()}


@functools.cache
def edges() -> dict[tuple[str, str], list[str]]:
    """The graph, parsed in a fresh interpreter: CPython 3.11's parser can raise SystemError ("AST constructor
    recursion depth mismatch") in a process whose recursion limit an earlier test changed."""
    result = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=120, check=True)
    return {(a, b): places for a, b, places in json.loads(result.stdout)}


def parse_edges() -> dict[tuple[str, str], list[str]]:
    """(package, package) -> where (file:line) one imports the other."""
    known = known_modules()
    out: dict[tuple[str, str], list[str]] = {}
    for path in sources():
        source = unit(module_name(path))
        for target, line in imports(path):
            if not target.startswith("rollback_tui.") or target not in known:
                continue
            dest = unit(target)
            if dest and dest != source:
                out.setdefault((source, dest), []).append(f"{path.relative_to(ROOT.parent)}:{line}")
    return out


def cycles(graph: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan)."""
    nodes = sorted({a for a, _ in graph} | {b for _, b in graph})
    succ = {node: sorted(b for a, b in graph if a == node) for node in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in succ[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_packages() -> None:
    graph = edges()
    assert ("engine", "plan") in graph  # the parser sees real imports
    problems = []
    for component in cycles(graph):
        if frozenset(component) in ALLOWED_CYCLES:
            continue
        links = [f"  {a} -> {b}: {', '.join(graph[(a, b)][:3])}" for a in component for b in component
                 if (a, b) in graph]
        problems.append(f"cycle {' <-> '.join(component)}:\n" + "\n".join(links))
    assert not problems, "\n".join(problems)


def test_nothing_but_main_imports_the_cli() -> None:
    graph = edges()
    importers = sorted(where for (source, dest), places in graph.items() if dest == "cli" for where in places)
    assert importers and all(where.startswith("rollback_tui/__main__.py:") for where in importers), importers


def test_the_procedure_layer_imports_only_itself_and_errors() -> None:
    graph = edges()
    outside = {dest: places for (source, dest), places in graph.items()
               if source == "procedure" and dest not in PROCEDURE_MAY_IMPORT}
    assert not outside, outside


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {("a", "b"): ["x"], ("b", "c"): ["y"], ("c", "a"): ["z"], ("c", "d"): ["w"]}
    assert cycles(graph) == [["a", "b", "c"]]
    assert unit("rollback_tui.engine.runner") == "engine" and unit("rollback_tui.cli") == "cli"


if __name__ == "__main__":
    print(json.dumps([[a, b, places] for (a, b), places in parse_edges().items()]))
