"""The reference tutorial's flow as real Sphinx builds: a MyST page and a reStructuredText page, every builder.

The test root builds a small BERT (``modelvis_pre_code`` holds its config) so that each build takes seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Build, build_sphinx
from sphinx_html import figure_by_name, figure_lines, roles_of

from sphinx_modelvis.theme import LIGHT

PAGES = {"md": "tutorial_md", "rst": "tutorial_rst"}


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("tutorial", tmp_path_factory.mktemp("html") / "src", "html")


def test_the_tutorial_builds_without_a_warning(html: Build) -> None:
    assert html.warnings == ""
    # Progress in the log: page, line and seconds of every snippet that ran.
    assert re.search(r"modelvis: tutorial_md\.md:\d+ \.\.\. \d+\.\d s", html.status)
    assert re.search(r"modelvis: tutorial_rst\.rst:\d+ \.\.\. \d+\.\d s", html.status)


@pytest.mark.parametrize("syntax", ["md", "rst"])
def test_the_four_figures_of_the_reference_tutorial(html: Build, syntax: str) -> None:
    soup = html.soup(PAGES[syntax])

    # 1. print(model), collapsed, with its width.
    raw = figure_by_name(soup, f"{syntax}_raw_print")
    assert raw.name == "div" and "width: 600px" in raw["style"]
    assert raw.find_parent("details") is not None and not raw.find_parent("details").has_attr("open")
    raw_lines = figure_lines(raw)
    assert raw_lines[0].startswith("BertForMaskedLM(")
    assert any("(0-1): 2 x BertLayer(" in line for line in raw_lines)

    # 2. The folded tree, captioned, in the namespace the first snippet left.
    tree = figure_by_name(soup, f"{syntax}_bert_vis")
    assert tree.name == "figure"
    assert tree.figcaption.get_text(" ", strip=True).startswith("Fig.")
    assert "BERT before adaptation" in tree.figcaption.get_text()
    lines = figure_lines(tree)
    assert lines[0].startswith("root")
    assert any("0-1 (BertLayer)" in line for line in lines)
    assert any("query,key,value (Linear) weight:[64, 64] bias:[64]" in line for line in lines)
    assert "lora" not in tree.get_text()

    # 3. After the delta model: LoRA parameters purple (delta), the frozen base grey, the unfrozen parts blue.
    delta = figure_by_name(soup, f"{syntax}_bertdelta_vis")
    assert delta.find_parent("details") is not None
    assert any("lora_A" in line for line in figure_lines(delta))
    assert roles_of(delta, "weight:[4, 64]") == {"d"}  # delta
    assert roles_of(delta, "weight:[1000, 64]") == {"z"}  # frozen: the word embeddings
    assert "u" in roles_of(delta, "weight:[64]")  # tunable: LayerNorm, unfrozen by the snippet

    # 4. keep_non_params: dropout and activations appear; the summary names the option.
    noparam = figure_by_name(soup, f"{syntax}_bertdelta_noparam")
    summary = noparam.find_parent("details").summary.get_text()
    assert summary == "Click to view output (keep_non_params)"
    assert any("(Dropout)" in line for line in figure_lines(noparam))

    # The argument form: the tree of an expression, shaped by the options.
    attention = figure_by_name(soup, f"{syntax}_attention")
    lines = figure_lines(attention)
    assert lines[:2] == ["root", "    self (BertSelfAttention)"]
    assert "        dropout (Dropout)" in lines


def test_code_is_shown_above_each_figure_highlighted(html: Build) -> None:
    soup = html.soup("tutorial_md")
    blocks = soup.select("div.modelvis-code")
    assert len(blocks) == 4  # the argument-only figure has no code
    assert blocks[0].find("span") is not None  # Pygments highlighting
    assert "backbone_model = BertForMaskedLM(SMALL_BERT)" in blocks[0].get_text()


def test_figures_are_inline_text_with_nothing_fetched(html: Build) -> None:
    for page in PAGES.values():
        soup = html.soup(page)
        figures = soup.select("div.modelvis-figure > div.mv")
        assert len(figures) == 5
        # No URL in a figure, nothing a browser would fetch; the script and stylesheet are the site's own.
        for figure in figures:
            assert not re.findall(r"https?://", str(figure)) and "<img" not in str(figure)
        scripts = [script for script in soup.find_all("script") if "modelvis" in str(script.get("src"))]
        assert [script["src"].split("?")[0] for script in scripts] == ["_static/modelvis-figure.js"]
        assert scripts[0].has_attr("defer")
        links = [link["href"].split("?")[0] for link in soup.find_all("link", rel="stylesheet")]
        assert "_static/modelvis-figure.css" in links
    static = html.outdir / "_static"
    assert "--mv-n:" in (static / "modelvis-figure.css").read_text() and (static / "modelvis-figure.js").exists()
    for asset in ("modelvis-figure.css", "modelvis-figure.js"):
        assert not re.findall(r"https?://|@import|url\(", (static / asset).read_text()), asset
    assert not list(html.outdir.rglob("modelvis-*.png"))  # no image written beside the pages


def test_cross_references_to_named_figures(html: Build) -> None:
    soup = html.soup("index")
    targets = {a["href"]: a.get_text() for a in soup.select("a.reference.internal") if "#" in a["href"]}
    assert targets["tutorial_rst.html#rst-bert-vis"].startswith("Fig. ")
    assert targets["tutorial_md.html#md-bert-vis"] == "BERT before adaptation"
    assert targets["tutorial_md.html#md-bertdelta-vis"].startswith("Fig. ")


def text_blocks(text: str) -> list[str]:
    """The blocks of a page written by the text builder (code, a figure, a caption, a paragraph), dedented."""
    return [textwrap.dedent(block).strip("\n") for block in re.split(r"\n[ \t]*\n", text)]


def block_after(blocks: list[str], code_line: str) -> str:
    """The block after the code block that has ``code_line``: the figure of that snippet."""
    (index,) = [index for index, block in enumerate(blocks) if code_line in block.splitlines()]
    return blocks[index + 1]


def test_text_builder_writes_the_plain_tree(tmp_path: Path) -> None:
    build = build_sphinx("tutorial", tmp_path / "src", "text")
    assert build.warnings == ""
    text = build.page("tutorial_md", ".txt")
    assert "\x1b[" not in text
    assert "Click to view output" not in text  # collapsed figures are simply shown
    # Searched inside each figure: the code above it and the prose hold the same words.
    blocks = text_blocks(text)
    printed = block_after(blocks, "print(backbone_model)")
    assert printed.startswith("BertForMaskedLM(\n  (bert): BertModel(\n")
    tree = block_after(blocks, "model_vis.structure_graph()")
    assert tree.startswith("root\n├── bert (BertModel)\n")
    assert re.search(r"^[│ ]*└── 0-1 \(BertLayer\)$", tree, flags=re.M)
    assert tree.splitlines()[-1].startswith("parameters: ")
    assert blocks[blocks.index(tree) + 1] == "BERT before adaptation", "the caption under its figure"


@pytest.mark.parametrize("builder", ["dirhtml", "singlehtml", "epub", "man", "texinfo"])
def test_every_other_builder(tmp_path: Path, builder: str) -> None:
    build = build_sphinx("options", tmp_path / "src", builder)
    assert build.warnings == ""
    written = "".join(
        path.read_text(encoding="utf-8", errors="replace") for path in build.outdir.rglob("*") if path.is_file()
    )
    if builder in ("man", "texinfo"):
        assert "(Linear)" in written and "<svg" not in written and 'class="mv ' not in written
    else:
        assert 'class="mv mv-auto"' in written and '<span class="t">Linear</span>' in written
        assert "--mv-bg:" in written, "the palettes ship with the pages"
        # EPUB readers get no scripts from Sphinx: the tree is there to read all the same.
        assert ("modelvis-figure.js" in written) == (builder != "epub")


def test_latex_gets_pngs_that_latexmk_builds_into_a_pdf(tmp_path: Path) -> None:
    build = build_sphinx("tutorial", tmp_path / "src", "latex")
    assert build.warnings == ""
    tex = next(build.outdir.glob("*.tex")).read_text(encoding="utf-8")
    included = re.findall(r"\\sphinxincludegraphics(?:\[[^]]*\])?\{\{?([^}]+\.png)\}?\}", tex)
    assert len(included) == 10
    for name in included:
        png = (build.outdir / name).read_bytes()
        assert png.startswith(b"\x89PNG") and b"pHYs" in png[:64]
        assert re.fullmatch(r"modelvis-[0-9a-f]{40}\.png", Path(name).name)
    assert "width=" in tex  # :width: 600px carried over
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk is not installed (tools/system-deps.sh installs it)")
    result = subprocess.run(
        ["make", "all-pdf", "LATEXMKOPTS=-interaction=nonstopmode -halt-on-error"],
        cwd=build.outdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert next(build.outdir.glob("*.pdf")).stat().st_size > 10_000


def test_a_figure_taller_than_a_page_is_cut_in_the_pdf(tmp_path: Path) -> None:
    """A 5,000-deep chain makes a 5,002-line figure: its PNG would be 180,000 px high (Pillow refuses to open it)."""
    from PIL import Image

    from sphinx_modelvis.sphinx.nodes import LATEX_MAX_LINES

    src = tmp_path / "src"
    shutil.copytree(Path(__file__).parent / "roots" / "test-options", src)
    (src / "index.rst").write_text(
        "Deep\n====\n\n.. modelvis::\n   :name: deep\n\n   from torch import nn\n"
        "   model = nn.Linear(2, 2)\n   for _ in range(5000):\n       model = nn.Sequential(model)\n"
    )
    build = build_sphinx("options", src, "latex")
    assert build.warnings == ""
    tex = next(build.outdir.glob("*.tex")).read_text(encoding="utf-8")
    (name,) = re.findall(r"\\sphinxincludegraphics(?:\[[^]]*\])?\{\{?([^}]+\.png)\}?\}", tex)
    with Image.open(build.outdir / name) as image:
        width, height = image.size
    line_height = round(28 * 1.3)  # the PNG's 28 px font
    assert LATEX_MAX_LINES * line_height < height < (LATEX_MAX_LINES + 2) * line_height, (width, height)
    # Its last line is the note saying so, drawn in the note color.
    with Image.open(build.outdir / name) as image:
        last = image.convert("RGB").crop((0, height - 2 * line_height, width, height))
        colors = {color for _, color in last.getcolors(maxcolors=1 << 20) or []}
    assert tuple(int(LIGHT.note.color[i : i + 2], 16) for i in (1, 3, 5)) in colors  # auto: light on paper
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk is not installed (tools/system-deps.sh installs it)")
    result = subprocess.run(
        ["make", "all-pdf", "LATEXMKOPTS=-interaction=nonstopmode -halt-on-error"],
        cwd=build.outdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_parallel_build_gives_the_same_pages(tmp_path: Path, html: Build) -> None:
    parallel = build_sphinx("tutorial", tmp_path / "src", "html", parallel=2)
    assert parallel.warnings == ""
    for page in ["index", *PAGES.values()]:
        assert parallel.page(page) == html.page(page), page


CHECK_EXTENSION = """
import json, sys
from pathlib import Path

def setup(app):
    def finished(app, exception):
        from sphinx_modelvis.sphinx import runner_for
        stats = runner_for(app).stats
        report = {"torch": "torch" in sys.modules, "worker_starts": stats.worker_starts, "cached": stats.cached,
                  "executed": stats.executed, "replayed": stats.replayed}
        Path(app.outdir, "modelvis-report.json").write_text(json.dumps(report))
    app.connect("build-finished", finished)
    return {"parallel_read_safe": True}
"""


def sphinx_build_process(srcdir: Path, *extra: str) -> dict[str, object]:
    """``sphinx-build -E -W`` in a fresh process; what its Sphinx process imported and its figure runner did."""
    import json

    env = {**os.environ, "PYTHONPATH": str(srcdir)}
    command = [sys.executable, "-m", "sphinx", "-E", "-W", "-q", "-b", "html", *extra, str(srcdir), str(srcdir / "out")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads((srcdir / "out" / "modelvis-report.json").read_text())
    return report


def test_a_cached_build_starts_no_worker_and_imports_no_torch_and_a_partial_hit_replays(tmp_path: Path) -> None:
    srcdir = tmp_path / "src"
    shutil.copytree(Path(__file__).parent / "roots" / "test-tutorial", srcdir)
    (srcdir / "modelvis_check.py").write_text(CHECK_EXTENSION)
    conf = srcdir / "conf.py"
    conf.write_text(conf.read_text() + '\nextensions.append("modelvis_check")\nmodelvis_cache_dir = "cache"\n')

    first = sphinx_build_process(srcdir)
    assert first == {"torch": False, "worker_starts": 2, "cached": 0, "executed": 10, "replayed": 0}
    page = (srcdir / "out" / "tutorial_md.html").read_text()

    second = sphinx_build_process(srcdir)
    assert second == {"torch": False, "worker_starts": 0, "cached": 10, "executed": 0, "replayed": 0}
    assert (srcdir / "out" / "tutorial_md.html").read_text() == page

    # Change the last figure of one page: the earlier snippets of that page replay, the rest stays cached.
    md = srcdir / "tutorial_md.md"
    caption = ":caption: One attention block"
    md.write_text(md.read_text().replace(caption, f"{caption}\n:max-depth: 1"))
    third = sphinx_build_process(srcdir)
    assert third == {"torch": False, "worker_starts": 1, "cached": 9, "executed": 1, "replayed": 4}
