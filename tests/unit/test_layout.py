"""The package's layout keeps its promises (docs/architecture.md): no import cycle between modules, no module
that grew past what one reader holds in mind, settings read from the environment in two places only, and no
demo or evaluation tooling in the package's top level."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ingest"
ROOT = PACKAGE.parents[1]
MAX_LINES = 450
PIPELINE_MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imported(tree: ast.AST, known: set[str]) -> Iterator[str]:
    """The package's modules a module imports when it runs (at import time or inside a function), not the ones
    named for type checking only."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in known:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in known else node.module


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: set(imported(ast.parse(path.read_text()), known)) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    assert graph["ingest.process"] >= {"ingest.dedup", "ingest.extract", "ingest.runtime"}  # the graph is read
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_the_size_one_reader_holds() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
    assert sizes["ingest.pipeline"] < PIPELINE_MAX_LINES


def test_settings_are_read_from_the_environment_in_two_places() -> None:
    calls = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_settings":
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert len(calls) <= 2, calls


def test_no_demo_or_evaluation_tooling_in_the_top_level() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top.isdisjoint({"services", "fixture_server", "quality", "dedup_quality", "ner_eval", "health"})
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")} >= {
        "embedded", "eval", "search_index", "stores", "airflow", "cli"}
