"""What a template process may import ahead of a page: installed packages only, never code next to a page."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import site
import sys
import sysconfig
from functools import lru_cache

__all__ = ["is_installed_file", "preload_statements"]


@lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    """Folders of installed code: the standard library and every site-packages folder."""
    paths = sysconfig.get_paths()
    roots = {paths.get("stdlib", ""), paths.get("platstdlib", ""), paths.get("purelib", ""), paths.get("platlib", "")}
    with contextlib.suppress(AttributeError):
        roots.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        roots.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)


def is_installed_file(path: str | None) -> bool:
    """Whether ``path`` lies in the standard library or a site-packages folder (not next to a page)."""
    if not path:
        return False
    real = os.path.realpath(path)
    return real.startswith(_installed_roots())


def _installed_package(name: str) -> bool:
    """Whether the top-level package ``name`` is installed (found without importing it)."""
    if name in sys.builtin_module_names:
        return True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    locations: list[str | None] = [*(spec.submodule_search_locations or [])] or [spec.origin]
    return all(is_installed_file(location) for location in locations)


def preload_statements(code: str) -> list[str]:
    """The top-level import statements of ``code`` whose packages are all installed, as source lines.

    What a template may run ahead of a page (``from transformers import BertConfig`` loads what BERT needs):
    modules next to the page are left to its worker, and anything else the code does is not run.
    """
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return []
    statements = []
    for node in body:
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        else:
            continue
        if names and all(_installed_package(name) for name in names):
            statements.append(ast.unparse(node))
    return statements
