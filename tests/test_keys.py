"""Module keys in the prose: what a key matches in a figure (full key, suffix, folded pattern, regex), the line it
lands on, the anchors of a named figure's lines, and the key role in real Sphinx builds (html, text, LaTeX,
``-j 2``, ``-W``, an incremental build after the figure changed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from conftest import ROOTS, build_sphinx

from sphinx_modelvis.capture import Capture, TreeBlock
from sphinx_modelvis.keys import FigureKeys, figure_keys, match_key
from sphinx_modelvis.rendering import build_figure
from sphinx_modelvis.rendering.interactive import figure_interactive
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo


def small_bert(layers: int = 12, *, max_depth: int | None = None) -> Capture:
    """A BERT-shaped tree made by hand: embeddings, ``layers`` alike layers of attention (query, key, value) and
    output, and a pooler."""

    def linear(name: str) -> ModuleNode:
        return ModuleNode(name, "Linear", [ParamInfo("weight", (4, 4)), ParamInfo("bias", (4,))])

    def layer(index: int) -> ModuleNode:
        attention = ModuleNode(
            "attention",
            "Attention",
            children=[ModuleNode("self", "SelfAttention", children=[linear("query"), linear("key"), linear("value")])],
        )
        return ModuleNode(str(index), "Layer", children=[attention, linear("output")])

    root = ModuleNode(
        "",
        "Bert",
        children=[
            ModuleNode("embeddings", "Embeddings", children=[linear("word_embeddings")]),
            ModuleNode(
                "encoder",
                "Encoder",
                children=[ModuleNode("layer", "ModuleList", children=[layer(i) for i in range(layers)])],
            ),
            ModuleNode("pooler", "Pooler", children=[linear("dense")]),
        ],
    )
    return Capture([TreeBlock(ModelTree(root=root), max_depth=max_depth)])


@pytest.fixture(scope="module")
def bert() -> FigureKeys:
    keys = figure_keys(small_bert())
    assert keys is not None
    return keys


def test_each_module_lands_on_the_line_that_shows_it(bert: FigureKeys) -> None:
    lines = dict(zip(bert.keys, bert.lines, strict=True))
    assert lines["pooler.dense"] == "pooler.dense"
    assert lines["encoder.layer.7"] == "encoder.layer.{0-11}"
    assert lines["encoder.layer.7.attention.self.key"] == "encoder.layer.{0-11}.attention.self.{query,key,value}"
    assert len(bert.keys) == len(set(bert.keys)) == 1 + 2 + 2 + 12 * 7 + 2
    # Below a depth cut: the deepest line shown.
    cut = figure_keys(small_bert(max_depth=2))
    assert cut is not None
    assert dict(zip(cut.keys, cut.lines, strict=True))["encoder.layer.3.attention.self.query"] == "encoder.layer"


@pytest.mark.parametrize(
    ("key", "count", "line", "target"),
    [
        # A full key of a folded member: its folded line without a script, the member itself with one.
        (
            "encoder.layer.3.attention.self.query",
            1,
            "encoder.layer.{0-11}.attention.self.{query,key,value}",
            "encoder.layer.3.attention.self.query",
        ),
        # A suffix, as PEFT matches a target_modules entry: every layer's query, and not "query" inside a name.
        ("query", 12, "encoder.layer.{0-11}.attention.self.{query,key,value}", "encoder.layer.0.attention.self.query"),
        (
            "self.query",
            12,
            "encoder.layer.{0-11}.attention.self.{query,key,value}",
            "encoder.layer.0.attention.self.query",
        ),
        # A folded pattern as the figure writes it: every member, so the folded line itself.
        ("layer.{0-11}.attention", 12, "encoder.layer.{0-11}.attention", "encoder.layer.{0-11}.attention"),
        ("layer.{0-5}.attention", 6, "encoder.layer.{0-11}.attention", "encoder.layer.0.attention"),
        ("layer.{0,2,…,10}", 6, "encoder.layer.{0-11}", "encoder.layer.0"),
        # A regex matches the whole key, as PEFT matches a string target_modules.
        (
            r".*\.(query|value)",
            24,
            "encoder.layer.{0-11}.attention.self.{query,key,value}",
            "encoder.layer.0.attention.self.query",
        ),
        ("pooler", 1, "pooler", "pooler"),
        ("", 1, "", ""),
    ],
)
def test_what_a_key_matches(bert: FigureKeys, key: str, count: int, line: str, target: str) -> None:
    found = match_key(key, bert)
    assert found is not None
    assert (len(found.matched), found.line, found.target) == (count, line, target)


@pytest.mark.parametrize("key", ["uery", "encoder.layer.12", "layer.{12-13}", r"pool\d", "attention.self.qurey"])
def test_a_key_that_names_no_module_matches_nothing(bert: FigureKeys, key: str) -> None:
    assert match_key(key, bert) is None


def test_a_named_figure_anchors_every_line_a_key_can_land_on() -> None:
    capture = small_bert()
    keys = figure_keys(capture)
    assert keys is not None
    markup = figure_interactive(build_figure(capture), anchor="bert-vis")
    ids = set(re.findall(r'<div class="i" id="([^"]*)"', markup))
    assert {f"bert-vis:{line}" for line in keys.lines} == ids
    assert 'data-anchor="bert-vis"' in markup
    # A figure without a name has no anchors: its markup is as before.
    assert " id=" not in figure_interactive(build_figure(capture)) and "data-anchor" not in figure_interactive(
        build_figure(capture)
    )


# -- the role in real builds ----------------------------------------------------------------------------------

TYPO = "broken.md:3: WARNING: modelvis: bert-vis:encoder.layer.0.attention.self.qurey matches no module of the figure"
NO_FIGURE = "broken.md:5: WARNING: modelvis: gpt-vis:h.0.attn: no figure is named 'gpt-vis'"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys-cache")


def test_html_links_each_key_and_warns_at_the_roles_line(tmp_path: Path, cache: Path) -> None:
    build = build_sphinx("keys", tmp_path / "src", modelvis_cache_dir=str(cache))
    warnings = [line for line in build.warnings.splitlines() if "WARNING" in line]
    assert len(warnings) == 3, build.warnings
    assert TYPO in warnings[0] and "closest: encoder.layer.0.attention.self.query" in warnings[0]
    assert warnings[0].endswith("[modelvis.key]")
    assert NO_FIGURE in warnings[1] and "named figures: bert-picture, bert-vis, printed" in warnings[1]
    assert "broken.md:15: WARNING: modelvis: printed:hello: the figure 'printed' shows printed text" in warnings[2]
    index, other = build.soup("index"), build.soup("other")
    links = {link.get_text(): link for link in index.select("a.mv-key")}
    query = links["encoder.layer.3.attention.self.query"]
    assert query["href"] == "#bert-vis:encoder.layer.{0-11}.attention.self.{query,key,value}"
    assert query["data-mv-key"] == "bert-vis:encoder.layer.3.attention.self.query"
    assert links["layer.{0-11}.attention"]["href"] == "#bert-vis:encoder.layer.{0-11}.attention"
    assert not links["layer.{0-11}.attention"].has_attr("data-mv-key")
    assert links["the pooler"]["href"] == "#bert-vis:pooler"
    # A picture has no lines to go to: the link goes to the figure.
    assert links["embeddings"]["href"] == "#bert-picture"
    # From another page, and every href lands on an anchor the figure's page has.
    dense = other.select_one("a.mv-key")
    assert dense["href"] == "index.html#bert-vis:encoder.layer.{0-11}.output.dense"
    # rST keeps a regex's backslashes: both dense layers of every layer.
    regex = other.select("a.mv-key")[-1]
    assert regex.get_text() == r".*\.output\.dense" and regex["title"].endswith("and 21 more")
    anchors = {element["id"] for element in index.select("[id]")}
    for link in [*index.select("a.mv-key"), *other.select("a.mv-key")]:
        assert link["href"].split("#")[1] in anchors
    # The stale keys are code, linked to nothing.
    broken = build.soup("broken")
    assert broken.select("a.mv-key") == [] and "qurey" in broken.select_one("code").get_text()


def test_text_and_latex_show_keys_as_code_and_still_check_them(tmp_path: Path, cache: Path) -> None:
    text = build_sphinx("keys", tmp_path / "text", "text", modelvis_cache_dir=str(cache))
    assert TYPO in text.warnings and NO_FIGURE in text.warnings
    assert '"encoder.layer.7.output.dense"' in text.page("other", ".txt")
    latex = build_sphinx("keys", tmp_path / "latex", "latex", modelvis_cache_dir=str(cache))
    assert TYPO in latex.warnings
    tex = next(latex.outdir.glob("*.tex")).read_text(encoding="utf-8")
    assert r"\sphinxcode{\sphinxupquote{encoder.layer.7.output.dense}}" in tex


def test_parallel_reads_check_keys_once_all_figures_are_known_and_w_fails(tmp_path: Path, cache: Path) -> None:
    # -j 2: the figure and the pages naming it are read in different processes.
    source = tmp_path / "src"
    shutil.copytree(ROOTS / "test-keys", source)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "sphinx", "-E", "-j", "2", "-W", "--keep-going", "-b", "html"]
    command += ["-D", f"modelvis_cache_dir={cache}"]
    strict = subprocess.run(
        [*command, str(source), str(tmp_path / "out")], capture_output=True, text=True, env=environment, timeout=600
    )
    assert strict.returncode != 0
    assert "qurey matches no module of the figure" in strict.stderr and "no figure is named 'gpt-vis'" in strict.stderr
    other = (tmp_path / "out" / "other.html").read_text(encoding="utf-8")
    assert 'href="index.html#bert-vis:encoder.layer.{0-11}.output.dense"' in other
    # Without the stale page the same build passes -W.
    (source / "broken.md").write_text("# Stale prose\n\nNothing stale now.\n", encoding="utf-8")
    clean = subprocess.run(
        [*command, str(source), str(tmp_path / "out2")], capture_output=True, text=True, env=environment, timeout=600
    )
    assert clean.returncode == 0, clean.stderr


def test_a_page_naming_a_figure_is_checked_again_when_only_the_figure_changed(tmp_path: Path, cache: Path) -> None:
    from sphinx.testing.util import SphinxTestApp

    source = tmp_path / "src"
    first = build_sphinx("keys", source, modelvis_cache_dir=str(cache))
    assert "layer.7.output.dense" not in first.warnings
    # Six layers now: other.rst (unchanged) names the eighth's output.
    index = source / "index.md"
    index.write_text(
        index.read_text(encoding="utf-8").replace("num_hidden_layers=12", "num_hidden_layers=6"), encoding="utf-8"
    )
    warnings = StringIO()
    app = SphinxTestApp(
        "html", srcdir=source, status=StringIO(), warning=warnings, confoverrides={"modelvis_cache_dir": str(cache)}
    )
    try:
        app.build()
    finally:
        app.cleanup()
    assert (
        "other.rst:4: WARNING: modelvis: bert-vis:encoder.layer.7.output.dense matches no module" in warnings.getvalue()
    )
