"""``import sphinx_modelvis`` stays light (no torch, Sphinx or MkDocs: DESIGN.md), and its modules import no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sphinx_modelvis


def test_importing_the_package_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, sphinx_modelvis\n"
        "from sphinx_modelvis import tree, folding, theme, capture, rendering, cli\n"
        "print(' '.join(m for m in ('torch', 'sphinx', 'mkdocs', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# -- the import graph: no cycle (issue 18) ----------------------------------------------------------------------


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """The modules of ``package`` and the modules of it each one imports: at the top, inside functions,
    under ``TYPE_CHECKING``; ``from . import name`` counts as importing the submodule ``name`` when there is one."""
    modules = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*here[: len(here) - node.level + 1], *([base] if base else [])])
                candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    imported.add(candidate)
        graph[name] = imported
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules: every import cycle, each group sorted."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in graph[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return sorted(cycles)


PACKAGE = Path(sphinx_modelvis.__file__).parent


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "b.py").write_text("def later():\n    from ..a import thing\n")
    (package / "c.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.c"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.sub.b"]]


def test_the_execution_layer_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert {"sphinx_modelvis.execution.preload", "sphinx_modelvis.execution.wire"} <= set(graph)
    assert "sphinx_modelvis.execution.template" in graph["sphinx_modelvis.execution.client"]
    execution = [cycle for cycle in import_cycles(graph) if any(".execution" in module for module in cycle)]
    assert execution == []


def test_the_package_has_no_import_cycle() -> None:
    assert import_cycles(import_graph(PACKAGE)) == []
