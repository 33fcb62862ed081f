"""The interactive figure's markup, read without a browser: keys and regexes on module lines, marks of a
comparison in their roles, and named terminal colors that follow the page without costing other figures."""

from __future__ import annotations

import gzip
import re
from importlib import resources
from pathlib import Path

from bs4 import BeautifulSoup
from conftest import build_sphinx
from sphinx_html import figure_lines, roles_of
from torch import nn

from sphinx_modelvis import build_tree
from sphinx_modelvis.capture import Capture, TextBlock, TreeBlock
from sphinx_modelvis.compare import compare_trees
from sphinx_modelvis.rendering import page_figure
from sphinx_modelvis.rendering.interactive import figure_assets
from sphinx_modelvis.sphinx import ASSET_NAMES, assets_made_from, page_assets
from sphinx_modelvis.theme import DARK, LIGHT


def soup(markup: str) -> BeautifulSoup:
    return BeautifulSoup(markup, "html.parser")


def test_module_lines_carry_their_own_names_and_group_regexes() -> None:
    model = nn.Sequential(*(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(3)), nn.Linear(4, 2))
    figure = soup(page_figure(build_tree(model)))
    # Each module its own name (the script makes the keys: test_interactive.py), a folded group its label.
    assert [(item["data-l"], item["data-n"]) for item in figure.select(".i")] == [
        ("0", ""),
        ("1", "{0-2}"),
        ("2", "0"),
        ("2", "1"),
        ("1", "3"),
    ]
    # 0-2 are not all the numbered siblings (3 is one too): the group's regex names them.
    assert [item.get("data-s") for item in figure.select(".i")] == [None, "(?:0|1|2)", None, None, None]
    assert not figure.select("[data-path], [data-r]")


def test_a_deep_tree_s_page_grows_with_its_lines() -> None:
    from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo

    def chain(depth: int) -> ModelTree:
        node = ModuleNode("last", "Linear", [ParamInfo("weight", (2, 2))])
        for level in range(depth - 1):
            node = ModuleNode("block" if level % 2 else "inner", "Seq", [ParamInfo("w", (2,))], children=[node])
        return ModelTree(ModuleNode("root", "Net", children=[node]))

    # A line's markup no longer holds its ancestors' names (a 5,000-deep chain's page was 52 MB): ten times
    # the depth, about ten times the page.
    small, deep = len(page_figure(chain(500))), len(page_figure(chain(5_000)))
    assert deep < 11 * small and deep < 5_000 * 500


def test_compared_lines_start_with_their_mark_in_its_role() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    before = build_tree(model)
    model[0].requires_grad_(False)
    model.add_module("head", nn.Linear(2, 2))
    figure = soup(page_figure(compare_trees(before, build_tree(model))))
    lines = figure_lines(figure)
    assert lines[1] == "~     0 (Linear) weight:[4, 4] bias:[4] (was tunable)"
    marks = [line.select_one("span") for line in figure.select(".i > .l")]
    assert [(mark.get_text(), mark.get("class")) for mark in marks if mark.get_text() in "+~"] == [
        ("~", ["y"]),
        ("+", ["p"]),
    ]
    assert roles_of(figure, "(was tunable)") == {"y"}


def test_named_terminal_colors_follow_the_page_in_the_figures_that_use_them() -> None:
    printed = Capture([TextBlock("\x1b[31mred\x1b[0m and plain\n")])
    markup = page_figure(printed)
    assert "color:var(--mv-a1)" in markup
    style = re.search(r"<style>(.*?)</style>", markup, re.S)
    assert style is not None
    assert f"--mv-a1:{LIGHT.ansi[1]}" in style[1] and f"--mv-a1:{DARK.ansi[1]}" in style[1]
    # A figure without them carries no such style, and the page's stylesheet leaves them out.
    tree = page_figure(Capture([TreeBlock(build_tree(nn.Linear(2, 2)))]))
    assert "<style>" not in tree
    css, _ = figure_assets()
    assert "--mv-a1:" not in css and "--mv-bg:" in css
    # The SVG picture under theme auto too.
    assert "--mv-a1:" in page_figure(printed, format="svg")


#: What the interactive figures make a reader's browser fetch once (their stylesheet and script), gzipped as a
#: web server sends it, at most: issue 18's budget. ``bench/figure_size.py`` prints the measure, and the page's
#: whole share with the layout stylesheet beside. The files are written to be read, and served as rJSmin and
#: rCSSmin minify them.
ASSETS_GZIPPED_BUDGET = 6_000
DOCS = Path(__file__).resolve().parent.parent / "docs"


def gzipped(text: str) -> int:
    return len(gzip.compress(text.encode(), 9))


def test_a_page_ships_its_readable_files_minified_within_the_gzipped_budget() -> None:
    assets = page_assets()
    sizes = {name: gzipped(text) for name, text in assets.items() if name.startswith("modelvis-figure.")}
    assert len(sizes) == 2 and sum(sizes.values()) <= ASSETS_GZIPPED_BUDGET, sizes
    # Minified by a library, from files written to be read: full names and comments in the package, none served.
    source = resources.files("sphinx_modelvis").joinpath("rendering", "static", "modelvis-figure.js")
    script = source.read_text(encoding="utf-8")
    assert "const escapeRegex = (text) =>" in script and "  // " in script
    served = assets["modelvis-figure.js"]
    assert "const escapeRegex=(text)=>" in served and "//" not in served.replace("://", "")
    assert len(served) < 0.7 * len(script)
    # Template literals reach the browser as written (rJSmin keeps them).
    assert "`${parent.path}.${name}`" in served


def test_a_build_makes_the_page_files_once_for_what_they_are_made_from(tmp_path: Path) -> None:
    first = build_sphinx("interactive", tmp_path / "src")
    made = Path(first.app.doctreedir) / "modelvis-static"
    static = first.outdir / "_static"
    assert tuple(page_assets()) == ASSET_NAMES
    assert {name: (static / name).read_text(encoding="utf-8") for name in ASSET_NAMES} == page_assets()
    stamp = Path(first.app.doctreedir) / "modelvis-static.made-from"
    assert stamp.read_text(encoding="utf-8") == assets_made_from() and sorted(made.iterdir()) == sorted(
        made / name for name in ASSET_NAMES
    ), "the stamp stays out of _static"
    # While what they are made from stands, the next build takes the files as they are (no renderer, no minifier).
    (made / "modelvis-figure.js").write_text("/* as left */", encoding="utf-8")
    second = build_sphinx("interactive", tmp_path / "src")
    assert (second.outdir / "_static" / "modelvis-figure.js").read_text(encoding="utf-8") == "/* as left */"
    # Made again when the package or a minifier changed (another stamp), or when a file is gone.
    stamp.write_text("sphinx-modelvis 0.0.1 (another)", encoding="utf-8")
    third = build_sphinx("interactive", tmp_path / "src")
    assert (third.outdir / "_static" / "modelvis-figure.js").read_text(encoding="utf-8") == page_assets()[
        "modelvis-figure.js"
    ]
    (made / "modelvis.css").unlink()
    fourth = build_sphinx("interactive", tmp_path / "src")
    assert (fourth.outdir / "_static" / "modelvis.css").read_text(encoding="utf-8") == page_assets()["modelvis.css"]


def test_the_guides_say_how_much_a_page_ships() -> None:
    """The guides' sentences on the shared files name them and give their gzipped size, rounded as printed."""
    measured = sum(gzipped(text) for text in page_assets().values())
    for guide in ("interactive.md", "sphinx.md"):
        text = (DOCS / "guides" / guide).read_text(encoding="utf-8")
        claims = re.findall(r"(\d+\.\d) KB gzipped together", text)
        assert claims, guide
        # Within what rounding and a small edit of the script explain: past that, the sentence needs updating.
        assert all(abs(float(claim) * 1000 - measured) <= 300 for claim in claims), (guide, claims, measured)
        assert all(name in text for name in page_assets()), guide


def test_long_folded_groups_keep_exact_regexes_and_every_member() -> None:
    from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo

    # Two kinds in turn (a stride range each), and a group no step describes (its label leaves names out).
    squares = {i * i for i in range(300)}
    layers = [
        ModuleNode(str(i), "Linear" if i % 2 == 0 else "Conv", [ParamInfo("weight", (4, 4))]) for i in range(120_000)
    ]
    mixed = [ModuleNode(str(i), "A" if i in squares else "B", [ParamInfo("w", (1,))]) for i in range(90_000)]
    tree = ModelTree(
        ModuleNode(
            "root",
            "Net",
            children=[ModuleNode("layers", "ModuleList", children=layers), ModuleNode("mixed", "List", children=mixed)],
        )
    )
    keys = [f"layers.{i}" for i in range(120_000)] + [f"mixed.{i}" for i in range(90_000)]
    items = {item["data-n"]: item for item in soup(page_figure(tree)).select(".i[data-l='2']")}
    even, odd = items["{0,2,…,119998}"], items["{1,3,…,119999}"]
    assert (even["data-s"], odd["data-s"]) == (r"\d*[02468]", r"\d*[13579]")  # short, and exact:
    # (the script's key regex of a group below plain names: theirs escaped, then the group's, test_interactive.py)
    for item, expected in ((even, range(0, 120_000, 2)), (odd, range(1, 120_000, 2))):
        assert [key for key in keys if re.fullmatch(r"layers\." + item["data-s"], key)] == [
            f"layers.{i}" for i in expected
        ]
    assert "data-m" not in even.attrs  # the script reads the members back from the label
    (group,) = [item for name, item in items.items() if name.startswith("{0-1,4,9,")]
    assert "more)" in group["data-n"]
    assert [key for key in keys if re.fullmatch(r"mixed\." + group["data-s"], key)] == [
        f"mixed.{i}" for i in sorted(squares)
    ]
    assert group["data-m"] == "[" + ", ".join(f'"{i}"' for i in sorted(squares)) + "]"  # every name, for the script
