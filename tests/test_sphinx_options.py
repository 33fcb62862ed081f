"""Every option of the ``modelvis`` directive and every ``modelvis_*`` config value, in real Sphinx builds."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOTS, Build, BuildFunction, build_sphinx
from sphinx.errors import ConfigError
from sphinx_html import colors_of, figure_by_name, figure_lines, roles_of, svg_lines

from sphinx_modelvis.theme import DARK, LIGHT


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("options", tmp_path_factory.mktemp("options") / "src", "html")


@pytest.fixture(scope="module")
def soup(built: Build) -> Any:
    return built.soup("index")


def lines_of(soup: Any, name: str) -> list[str]:
    return figure_lines(figure_by_name(soup, name))


def copy_root(tmp_path: Path) -> Path:
    """The options root's configuration in a folder of its own, for a test to write its own page."""
    src = tmp_path / "src"
    shutil.copytree(ROOTS / "test-options", src)
    return src


def test_the_page_builds_without_a_warning(built: Build) -> None:
    assert built.warnings == ""


def test_shaping_options_of_the_tree(soup: Any) -> None:
    plain = lines_of(soup, "plain")
    assert plain[:2] == ["root", "    0 (Linear) weight:[8, 4] bias:[8]"]
    assert not any("ReLU" in line or "Dropout" in line for line in plain)
    assert not any("steps" in line for line in plain)

    keep = lines_of(soup, "keep")
    assert "    1 (ReLU)" in keep and "        1 (Dropout)" in keep

    expand = lines_of(soup, "expand")
    assert expand[1:4] == ["    0 (Linear)", "        weight:[8, 4]", "        bias:[8]"]
    assert not any("ReLU" in line for line in expand)  # expand_params does not keep the parameter-free

    assert lines_of(soup, "buffers")[0] == "root steps:[3]"
    assert "    2 (Sequential) … 1 module below" in lines_of(soup, "depth")
    assert lines_of(soup, "rootname")[0] == "mlp"


def test_meta_device_shows_a_10b_model_without_allocating_it(soup: Any) -> None:
    assert lines_of(soup, "meta")[-1].startswith("parameters: 10.0B total")
    # The namespace lives on: the next figure on the page sees the meta tensor.
    assert lines_of(soup, "meta_check") == ["on meta: True"]


def test_theme_format_and_columns(soup: Any) -> None:
    # Interactive by default, following the page's light or dark mode; :theme: pins a palette.
    plain = figure_by_name(soup, "plain").select_one(".mv")
    assert plain is not None and "mv-auto" in plain["class"]
    assert "mv-light" in figure_by_name(soup, "light").select_one(".mv")["class"]
    assert roles_of(plain, "Linear") == {"t"}
    assert figure_lines(figure_by_name(soup, "light")) == figure_lines(plain)
    # Pictures: a pinned theme draws its own colors, auto draws the page's custom properties.
    light = str(figure_by_name(soup, "light_svg").svg)
    dark = str(figure_by_name(soup, "dark_svg").svg)
    auto = str(figure_by_name(soup, "auto_svg").svg)
    assert f'fill="{LIGHT.background}"' in light and f'fill="{DARK.background}"' in dark
    assert colors_of(light, "Linear") == {LIGHT.module_type.color}
    assert colors_of(dark, "Linear") == {DARK.module_type.color}
    assert colors_of(auto, "Linear") == {"var(--mv-t)"} and 'style="fill:var(--mv-bg)"' in auto
    assert "#0101" not in auto, "every probe color is a custom property"
    assert svg_lines(auto) == svg_lines(dark) == figure_lines(plain)
    # :open-depth: says where the script starts it collapsed; the whole tree is in the page.
    below = figure_by_name(soup, "collapsed_below").select_one(".mv")
    assert below["data-open"] == "1" and figure_lines(below) == figure_lines(plain)

    as_html = figure_by_name(soup, "as_html")
    assert as_html.find("svg") is None
    assert as_html.pre is not None and "modelvis-html" in as_html.pre["class"]
    assert "0 (Linear)" in as_html.pre.get_text().replace("\xa0", " ")
    assert as_html["role"] == "img"

    columns = lines_of(soup, "columns")
    assert len(columns) == 4 and max(map(len, columns)) <= 30


def test_printed_output_keeps_its_first_and_last_lines(soup: Any) -> None:
    capped = lines_of(soup, "capped")
    assert capped == [
        *(f"step {step}" for step in range(5)),
        "⋯ 990 lines left out: the figure keeps the first and last of 10 (:max-lines:) ⋯",
        *(f"step {step}" for step in range(995, 1000)),
    ]
    by_default = lines_of(soup, "capped_by_default")
    assert len(by_default) == 1001 and by_default[0] == "step 0" and by_default[-1] == "step 2999"
    assert by_default[500].startswith("⋯ 2,000 lines left out")


def test_code_shown_hidden_and_collapsed(soup: Any) -> None:
    def code_before(name: str) -> str | None:
        element = figure_by_name(soup, name)
        outer = element.find_parent("details") or element
        previous = outer.find_previous_sibling()
        if previous is not None and "modelvis-code" in previous.get("class", []):
            return str(previous.get_text()).strip()
        return None

    assert code_before("timeout") == 'print("within its timeout")'
    assert code_before("hidden") is None
    assert code_before("keep") is None  # an argument and no content: nothing to show

    default = figure_by_name(soup, "collapsed").find_parent("details")
    assert not default.has_attr("open") and default.summary.get_text() == "Click to view output"
    custom = figure_by_name(soup, "collapsed_custom").find_parent("details")
    assert str(custom.summary) == '<summary class="modelvis-summary">Show the <em>output</em></summary>'


def test_figure_options_behave_as_on_figure(soup: Any) -> None:
    figure = figure_by_name(soup, "captioned")
    assert figure.name == "figure" and "align-center" in figure["class"]
    assert figure.figcaption.get_text(" ", strip=True).startswith("Fig. 1 The whole network")
    assert figure.figcaption.em.get_text() == "whole"
    drawing = figure.select_one("div.modelvis-figure")
    assert {"wide", "framed", "align-center"} <= set(drawing["class"])
    assert drawing["style"] == "width: 400px"
    assert drawing.select_one(".mv")["aria-label"] == "tree of the network"

    links = {a.get_text() for a in soup.select("a.reference.internal") if a["href"].startswith("#")}
    assert {"The whole network", "Fig. 1", "the plain one"} <= links


def test_reset_starts_a_fresh_namespace(soup: Any) -> None:
    assert lines_of(soup, "reset") == ["False"]


CONF_EXAMPLE = {
    "modelvis_show_code": False,
    "modelvis_theme": "light",
    "modelvis_columns": 40,
    "modelvis_keep_non_params": True,
    "modelvis_pre_code": "PRE = 'from pre_code'",
}


def test_config_values_set_every_figures_defaults(sphinx_build: BuildFunction, tmp_path: Path) -> None:
    src = copy_root(tmp_path)
    (src / "index.rst").write_text(
        "Config\n======\n\n.. modelvis::\n   :name: one\n\n   from torch import nn\n"
        "   net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())\n\n.. modelvis::\n   :name: two\n\n   print(PRE)\n"
    )
    build = sphinx_build("options", src=src, **CONF_EXAMPLE)
    assert build.warnings == ""
    soup = build.soup("index")
    assert not soup.select("div.modelvis-code")
    one = figure_by_name(soup, "one")
    assert "mv-light" in one.select_one(".mv")["class"]
    assert "    1 (ReLU)" in figure_lines(one)
    assert figure_lines(figure_by_name(soup, "two")) == ["from pre_code"]


def test_pre_code_runs_with_the_site_device_and_width(sphinx_build: BuildFunction, tmp_path: Path) -> None:
    src = copy_root(tmp_path)
    (src / "index.rst").write_text(
        "Pre code\n========\n\n.. modelvis::\n   :name: seen\n\n   print(PRE_SEEN)\n\n"
        ".. modelvis::\n   :name: own\n   :device: cpu\n   :columns: 30\n\n"
        "   import os, torch\n   print(torch.empty(0).device.type, os.environ['COLUMNS'], PRE_WEIGHT)\n"
    )
    pre_code = (
        "import os, torch\n"
        "PRE_SEEN = f\"{torch.empty(0).device.type} {os.environ['COLUMNS']}\"\n"
        "PRE_WEIGHT = torch.nn.Linear(2, 2).weight.device.type\n"
    )
    build = sphinx_build("options", src=src, modelvis_device="meta", modelvis_columns=60, modelvis_pre_code=pre_code)
    assert build.warnings == ""
    soup = build.soup("index")
    # pre_code ran under the site's device and width, as a figure that sets neither does...
    assert lines_of(soup, "seen") == ["meta 60"]
    # ...and a figure's own options are its own: the model pre_code built stays on the site's device.
    assert lines_of(soup, "own") == ["cpu 30 meta"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("modelvis_theme", "blue", "modelvis_theme"),
        ("modelvis_execute", "sometimes", "modelvis_execute"),
        ("modelvis_timeout", -1, "modelvis_timeout"),
        ("modelvis_columns", 3, "modelvis_columns"),
    ],
)
def test_invalid_config_values_stop_the_build_at_config_inited(
    sphinx_build: BuildFunction, name: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        sphinx_build("options", **{name: value})


def test_execute_never_fails_clearly_where_nothing_is_cached(sphinx_build: BuildFunction) -> None:
    build = sphinx_build("options", modelvis_execute="never")
    assert re.search(r"index\.rst:7: WARNING: modelvis: no cached output.*\[modelvis\.not-cached\]", build.warnings)
    assert build.warnings.count("[modelvis.not-cached]") == build.warnings.count("WARNING") > 10
    assert build.stats.worker_starts == 0


def test_a_bad_option_value_is_an_error_at_its_directive(sphinx_build: BuildFunction, tmp_path: Path) -> None:
    src = copy_root(tmp_path)
    (src / "index.rst").write_text("Bad\n===\n\n.. modelvis::\n   :theme: blue\n\n   print(1)\n")
    build = sphinx_build("options", src=src)
    expected = r"index\.rst:4: ERROR: .*\n.*\(option: \"theme\"; value: 'blue'\)\nexpected one of auto, dark, light"
    assert re.search(expected, build.warnings)
