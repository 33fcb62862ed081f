"""Shared fixtures: Sphinx test projects live under tests/roots/test-*/ and are built for real."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

ROOTS = Path(__file__).resolve().parent / "roots"

#: The compatibility matrix (noxfile.py, ``make compat``) runs the tests marked ``compat``: those marked in their
#: module, and every test reading the tutorial builds, found by the fixture that makes them: the Sphinx tutorial
#: root built as HTML (MyST and reStructuredText pages) and the MkDocs tutorial site.
COMPAT_FIXTURES = {"test_sphinx_tutorial.py": "html", "test_mkdocs.py": "tutorial"}


@pytest.hookimpl(tryfirst=True)  # before ``-m compat`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if COMPAT_FIXTURES.get(item.path.name) in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.compat)


@pytest.fixture(scope="session")
def rootdir() -> Path:
    """Where ``@pytest.mark.sphinx(testroot="name")`` finds ``test-name``."""
    return ROOTS


@dataclass
class Build:
    """A finished Sphinx build: the application, its log, its warnings (without colors) and its output folder."""

    app: Any
    status: str
    warnings: str
    outdir: Path

    def page(self, name: str, suffix: str = ".html") -> str:
        return (self.outdir / f"{name}{suffix}").read_text(encoding="utf-8")

    def soup(self, name: str) -> Any:
        from bs4 import BeautifulSoup

        return BeautifulSoup(self.page(name), "html.parser")

    @property
    def stats(self) -> Any:
        """The figure runner's counters (worker starts, snippets run, replayed, cached) for this build."""
        from sphinx_modelvis.sphinx import runner_for

        return runner_for(self.app).stats


def build_sphinx(
    root: str,
    srcdir: Path,
    builder: str = "html",
    *,
    parallel: int = 0,
    warningiserror: bool = False,
    **overrides: Any,
) -> Build:
    """Copy ``tests/roots/test-<root>`` to ``srcdir`` (unless already there), build it with a real Sphinx, return it."""
    from sphinx.testing.util import SphinxTestApp

    try:
        from sphinx.util.console import strip_escape_sequences
    except ImportError:  # Sphinx < 7.3
        from sphinx.util.console import strip_colors as strip_escape_sequences

    if not srcdir.exists():
        shutil.copytree(ROOTS / f"test-{root}", srcdir)
    status, warning = StringIO(), StringIO()
    app = SphinxTestApp(
        builder,
        srcdir=srcdir,
        freshenv=True,
        confoverrides=overrides,
        status=status,
        warning=warning,
        parallel=parallel,
        **({"warningiserror": True} if warningiserror else {}),  # a keyword SphinxTestApp has since Sphinx 7.3
    )
    try:
        app.build()
    finally:
        app.cleanup()
    return Build(app, strip_escape_sequences(status.getvalue()), strip_escape_sequences(warning.getvalue()), app.outdir)


def build_mkdocs_page(folder: Path, markdown: str) -> Any:
    """A one-page MkDocs site in ``folder`` (``docs/index.md`` holds ``markdown``; the plugin with its defaults),
    built with a real MkDocs: its page, parsed."""
    from bs4 import BeautifulSoup
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    (folder / "docs").mkdir(parents=True, exist_ok=True)
    (folder / "docs" / "index.md").write_text(markdown, encoding="utf-8")
    (folder / "mkdocs.yml").write_text(f"site_name: {folder.name}\nplugins:\n  - modelvis\n", encoding="utf-8")
    build(load_config(str(folder / "mkdocs.yml")))
    return BeautifulSoup((folder / "site" / "index.html").read_text(encoding="utf-8"), "html.parser")


#: ``build(root, builder="html", *, src=None, **options)``: :func:`build_sphinx` into ``src``, by default a fresh
#: folder under the test's ``tmp_path`` named after the root.
BuildFunction = Callable[..., Build]


@pytest.fixture
def sphinx_build(tmp_path: Path) -> BuildFunction:
    def build(root: str, builder: str = "html", *, src: Path | None = None, **options: Any) -> Build:
        return build_sphinx(root, src if src is not None else tmp_path / root, builder, **options)

    return build
