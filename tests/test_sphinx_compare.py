"""``:compare: NAME`` in a real Sphinx build, in reStructuredText and MyST: the figure marked against an earlier
figure of the page, and clear errors at the line for a name that is unknown, later, or has no tree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Build, build_sphinx
from sphinx_html import figure_by_name, figure_lines, svg_lines
from test_cli import TWICE_COMPARED


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The figure cache of the file's builds, named so a second build in another folder reads the first one's."""
    return tmp_path_factory.mktemp("compare-cache")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Build:
    return build_sphinx("compare", tmp_path_factory.mktemp("compare") / "src", "html", modelvis_cache_dir=str(cache))


# Tree guides read as spaces (they are drawn, not written): a mark, a space, then four columns per level.


def lines_of(soup: Any, index: int) -> list[str]:
    figures = soup.select("div.modelvis-figure")
    return figure_lines(figures[index])


def test_rst_figures_compared_with_earlier_ones(built: Build) -> None:
    soup = built.soup("index")
    after = figure_lines(figure_by_name(soup, "after"))
    assert after[:2] == ["  root", "~     0 (Linear) weight:[4, 4] bias:[4] (was tunable)"]
    assert "+     head (Linear) weight:[2, 2] bias:[2]" in after
    assert after[-1].startswith("changes: +6 added (")
    # Names match as docutils matches them (case and spaces aside); :changes-only: and another format.
    only = svg_lines(str(soup.select("div.modelvis-figure")[2].svg))
    assert only[:2] == ["  root", "~     2 (Linear) weight:[2, 4] bias:[2] (was tunable)"]
    assert only[-1] == "⋯ 5 unchanged modules not shown (:changes-only:)"


def test_myst_comparison_splits_the_fold(built: Build) -> None:
    lines = lines_of(built.soup("page"), 1)
    heads = [line for line in lines if "(Sequential)" in line]
    assert heads == ["      0-2 (Sequential)", "      3-5 (Sequential)"]
    assert "+         adapter (Linear) weight:[2, 8] bias:[2]" in lines


def test_a_comparison_with_inputs_keeps_the_forward_view(built: Build) -> None:
    rst = figure_lines(figure_by_name(built.soup("index"), "twice-after"))
    assert rst[:4] == [re.sub("[├└]── ", "    ", line) for line in TWICE_COMPARED], "tree guides read as spaces"
    assert rst[-2].startswith("changes: +6 added") and rst[-1] == "forward: [3, 4] -> [3, 2]"
    myst = figure_lines(figure_by_name(built.soup("page"), "traced-adapted"))
    assert myst[:2] == ["  root → [2, 2]", "~     0 (Linear) weight:[8, 8] bias:[8] (was tunable) → [2, 8]"]
    assert "+     3 (Linear) weight:[2, 2] bias:[2] → [2, 2]" in myst
    assert myst[-1] == "forward: [2, 8] -> [2, 2]"


def test_an_unknown_or_later_name_is_an_error_at_the_line(built: Build) -> None:
    errors = built.warnings
    assert re.search(r"errors\.md:3: ERROR: modelvis: :compare: later: no earlier figure of this page", errors)
    assert re.search(r"errors\.md:17: ERROR: modelvis: :compare: the figure 'later' shows no model tree", errors)
    # The page builds; the figure that failed is not drawn.
    soup = built.soup("errors")
    assert len(soup.select("div.modelvis-figure")) == 1


def test_the_marks_carry_their_roles_in_the_interactive_figure(built: Build) -> None:
    soup = built.soup("index")
    figure = figure_by_name(soup, "after")
    marks = {
        span.get_text(): span["class"][0] for span in figure.select(".l > span:first-child") if span.get_text() in "+~-"
    }
    assert marks == {"~": "y", "+": "p"}


def all_figure_lines(build: Build, page: str) -> list[list[str]]:
    return [figure_lines(figure) for figure in build.soup(page).select("div.modelvis-figure")]


def test_a_figure_can_compare_with_a_cached_one(built: Build, cache: Path, tmp_path: Path) -> None:
    # The first build's figures, read before anything else is built; the second build goes to a folder of its own.
    first = {page: all_figure_lines(built, page) for page in ("index", "page")}
    assert "+     head (Linear) weight:[2, 2] bias:[2]" in first["index"][1], "the first build marked its comparison"
    # Built again from the cache: no snippet runs, the comparisons are made from the cached trees.
    again = build_sphinx("compare", tmp_path / "src", "html", modelvis_cache_dir=str(cache))
    assert again.outdir != built.outdir
    assert again.stats.worker_starts == 0
    assert again.stats.cached > 0
    assert {page: all_figure_lines(again, page) for page in ("index", "page")} == first
