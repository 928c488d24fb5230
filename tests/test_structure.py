"""The package's layering, read from the source: no import cycles inside ``bench``, low-level
modules never reach up to the protocol, records or CLI, and shared machinery does not live in the
paper's own package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

LOW_LEVEL = ("bench.engine", "bench.transforms", "bench.checkpoint", "bench.files", "bench.data")
HIGH_LEVEL = ("bench.protocol", "bench.records", "bench.cli", "bench.runner")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path) -> set[str]:
    """Modules of ``bench`` that ``path`` imports at run time (lazy imports in functions
    included; ``if TYPE_CHECKING:`` blocks and the package ``__init__`` itself left out)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [base] if child.module else [f"{base}.{a.name}" for a in child.names]
                found.update(t for t in targets if t.startswith("bench"))
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("bench"))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name not in ("bench", module)}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (REPO / "bench").rglob("*.py")}
    modules.pop("bench")  # ``bench/__init__.py`` gathers the public API from every module
    graph = {}
    for name, path in modules.items():
        # ``from .data import x`` names the subpackage; keep only edges to real modules
        graph[name] = {t if t in modules else t.rpartition(".")[0] for t in _imports(path)}
        graph[name] &= set(modules) - {"bench"}  # the package __init__ re-exports, see below
    return graph


def _reaches(graph, start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def test_no_bench_module_imports_itself_back():
    graph = _graph()
    cycles = sorted(name for name in graph if name in _reaches(graph, name))
    assert cycles == [], f"modules on an import cycle: {cycles}"


@pytest.mark.parametrize("low", LOW_LEVEL)
def test_low_level_modules_do_not_import_the_protocol_records_or_cli(low):
    graph = _graph()
    reached = set().union(*(_reaches(graph, m) | {m} for m in graph
                            if m == low or m.startswith(low + ".")))
    assert not reached & set(HIGH_LEVEL), f"{low} reaches {sorted(reached & set(HIGH_LEVEL))}"


@pytest.mark.parametrize("folder", ["bench", "baselines"])
def test_shared_code_imports_nothing_from_ours(folder):
    offenders = [str(p.relative_to(REPO)) for p in (REPO / folder).rglob("*.py")
                 if any(line.startswith(("from ours", "import ours"))
                        for line in (s.strip() for s in p.read_text().splitlines()))]
    assert offenders == []
