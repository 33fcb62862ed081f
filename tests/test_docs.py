"""The project's own documentation: built for real with -W, then read in headless Chromium in light and dark mode.

The built site and full-page screenshots are kept under pytest's temporary folder
(`pytest --basetemp=out` keeps them in ./out).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_FLAGS, contrast, luminance, needs_chromium, rgb, serve, shoot
from bs4 import BeautifulSoup
from sphinx_html import figure_by_name, figure_lines

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole documentation, built from a cold figure cache with -W (any warning fails)."""
    out = tmp_path_factory.mktemp("docs")
    cache = out / "modelvis-cache"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(out / "doctrees"),
            "-D",
            f"modelvis_cache_dir={cache}",
            str(DOCS),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out / "html"


def test_every_page_is_built_with_its_figures(site: Path) -> None:
    tutorial = BeautifulSoup((site / "tutorial" / "visualization.html").read_text(), "html.parser")
    for name in ("raw_print", "bert_vis", "bertdelta_vis", "bertdelta_noparam", "color_samples"):
        assert figure_by_name(tutorial, name).select_one(".mv.mv-auto") is not None, name
    assert len(tutorial.select(".mv[data-mv]")) >= 5
    assert not list(site.rglob("modelvis-*.png")), "no image file: every figure is inline"

    # The LoRA config is previewed before it is applied: the projections it adapts marked, what it adds counted.
    preview = figure_lines(figure_by_name(tutorial, "bert_targets"))
    assert any(
        line.startswith("◆") and "query,value (Linear)" in line and line.endswith("(adapted)") for line in preview
    )
    assert "targets: ◆ 24 adapted (LoRA r=8), +294.9K parameters (0.27%)" in preview

    # The adapted BERT is drawn against the first figure: LoRA's matrices added, the rest marked or blank.
    compared = figure_lines(figure_by_name(tutorial, "bertdelta_vis"))
    assert any(line.startswith("+") and "lora_A (ModuleDict)" in line for line in compared)
    assert any(line.startswith("~") and "(lora.Linear, was Linear)" in line for line in compared)
    assert any(line.startswith("changes: +294.9K added") for line in compared)

    # PEFT's custom-models guide, live: the page's sentence about what PEFT prints is what it printed.
    custom = BeautifulSoup((site / "peft-custom-models.html").read_text(), "html.parser")
    printed = " ".join(figure_lines(figure_by_name(custom, "mlp_lora")))
    live = re.search(r"trainable params: ([\d,]+) \|\| all params: ([\d,]+)", printed)
    assert live is not None, printed
    warning = " ".join(custom.select_one(".admonition.warning").get_text().split())
    said = re.search(r"with PEFT ([\d.]+) it says trainable params: ([\d,]+)", warning)
    import peft

    assert said is not None and said[1] == peft.__version__ and said[2] == live[1], (warning, live[0])

    # The notebook page: cells run by myst-nb in a real kernel, their outputs the interactive figures.
    notebook = BeautifulSoup((site / "notebook.html").read_text(), "html.parser")
    outputs = notebook.select(".cell_output .mv[data-mv]")
    assert len(outputs) == 2 and "mv-auto" in outputs[0]["class"]
    assert any(line.strip() == "0-5 (BertLayer)" for line in figure_lines(outputs[0]))
    assert any("lora_A" in line for line in figure_lines(outputs[1]))

    gallery = BeautifulSoup((site / "gallery.html").read_text(), "html.parser")
    lines = [line for figure in gallery.select(".mv[data-mv]") for line in figure_lines(figure)]
    for expected in ("0-11 (GPT2Block)", "0-79 (LlamaDecoderLayer)", "(ViTLayer)", "T5Block"):
        assert any(expected in line for line in lines), expected
    summaries = [line for line in lines if line.startswith("parameters:")]
    assert len(summaries) >= 4 and any("70.6B total" in line for line in summaries)


def test_will_it_fit_says_what_its_figures_show(site: Path) -> None:
    """The "Will it fit?" tutorial's numbers are read in its live figures: Llama 70B's total and layer, and what
    LoRA's training adds against full fine-tuning."""
    page = BeautifulSoup((site / "tutorial" / "will-it-fit.html").read_text(), "html.parser")
    prose = " ".join(page.select_one("article").get_text().split())
    llama = figure_lines(figure_by_name(page, "fit_llama70b"))
    assert llama[-1] == "memory: 128.5 GiB bf16 + 512 B f32 = 128.5 GiB (512 B in buffers)"
    assert any(line.strip() == "0-79 (LlamaDecoderLayer) 1.6 GiB each" for line in llama)
    assert "the weights take 128.5 GiB" in prose and "Each of the 80 decoder layers takes 1.6 GiB" in prose
    full = " ".join(line.strip() for line in figure_lines(figure_by_name(page, "fit_bert_full")))
    assert "training: 417.8 MiB weights + 417.8 MiB gradients + 835.5 MiB Adam states = 1.6 GiB" in full
    lora = " ".join(line.strip() for line in figure_lines(figure_by_name(page, "fit_bert_lora")))
    assert "training: 418.9 MiB weights + 1.1 MiB gradients + 2.2 MiB Adam states = 422.3 MiB" in lora
    assert "default (Linear) weight:[8, 768] 24.0 KiB + 24.0 KiB grads + 48.0 KiB states = 96.0 KiB" in lora
    assert "1.1 MiB of gradients, 2.2 MiB of Adam states) to the 418.9 MiB of weights" in prose
    fp8 = figure_lines(figure_by_name(page, "fit_llama70b_fp8"))
    assert fp8[-1].endswith("= 64.7 GiB (512 B in buffers)") and "about 65 GiB" in prose
    assert fp8[-2].startswith("parameters: 69.0B total"), "as many parameters in float8 as in bf16"


def test_what_a_forward_pass_costs_says_what_its_figure_shows(site: Path) -> None:
    """The "Will it fit?" tutorial's FLOPs are read in its live figure: the total, a layer, the decoder."""
    page = BeautifulSoup((site / "tutorial" / "will-it-fit.html").read_text(), "html.parser")
    prose = " ".join(page.select_one("article").get_text().split())
    lines = [line.strip() for line in figure_lines(figure_by_name(page, "fit_bert_flops"))]
    assert lines[-1] == "flops: 28.5 GFLOPs in the pass (addmm 27.9 GFLOPs, bmm 604 MFLOPs)"
    assert "0-11 (BertLayer) → [1, 128, 768] 1.86 GFLOPs each" in lines
    assert "attention (BertAttention) → ([1, 128, 768], None) 654 MFLOPs" in " ".join(lines)
    assert any(line.endswith("→ [1, 128, 30522] 6.00 GFLOPs") for line in lines)
    assert "The pass costs 28.5 GFLOPs" in prose and "Each of the 12 layers costs 1.86 GFLOPs" in prose
    assert "costs 6.00 GFLOPs on its own" in prose


def test_will_it_fit_places_llama_70b_as_it_says(site: Path) -> None:
    """The placement sections' words are read in their live figures: the layers by device, each rank's shards."""
    page = BeautifulSoup((site / "tutorial" / "will-it-fit.html").read_text(), "html.parser")
    prose = " ".join(page.select_one("article").get_text().split())
    placed = [line.strip() for line in figure_lines(figure_by_name(page, "fit_llama70b_placed"))]
    layers = [line.split(" 1.6 GiB")[0] for line in placed if "(LlamaDecoderLayer)" in line]
    assert layers == [
        "0-19 (LlamaDecoderLayer) @0",
        "20-40 (LlamaDecoderLayer) @1",
        "41-61 (LlamaDecoderLayer) @2",
        "62-79 (LlamaDecoderLayer) @3",
    ]
    assert "0-19 on GPU 0 (with the embedding), 20-40 on GPU 1, 41-61 on GPU 2 and 62-79 on GPU 3" in prose
    tp = " ".join(line.strip() for line in figure_lines(figure_by_name(page, "fit_llama70b_tp")))
    assert "q_proj (Linear) weight:[8192, 8192] colwise: weight [1024, 8192] each" in tp
    assert "per rank: 16.1 GiB each" in tp and "Each rank holds 16.1 GiB" in prose


def test_the_conf_py_example_of_the_options_guide_builds(tmp_path: Path) -> None:
    """The guide's example `conf.py` block, exactly as printed, configures a working project."""
    guide = (DOCS / "guides" / "options.md").read_text()
    block = re.search(r"```python\n(# conf\.py\n.*?)```", guide, flags=re.S)
    assert block is not None
    (tmp_path / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n' + block[1])
    (tmp_path / "index.rst").write_text(
        "Example\n=======\n\n.. modelvis::\n\n   from torch import nn\n   model = nn.Linear(4, 4)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(tmp_path), str(tmp_path / "_build" / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "_build" / "html" / "index.html").read_text()
    assert "model = nn.Linear(4, 4)" in re.sub(r"<[^>]+>", "", page)  # modelvis_show_code = True
    figure = BeautifulSoup(page, "html.parser").select_one(".modelvis-figure")
    assert any(line.startswith("root weight:[4, 4]") for line in figure_lines(figure))
    assert (tmp_path / "_build" / ".modelvis-cache").is_dir()


def test_the_options_guide_s_figures_show_the_example_model(site: Path) -> None:
    """The page says its first block builds the model the others show: the figures that name `model` draw it,
    not a model rebound by a later example (`:reset:` builds its own, last; `:compare:` binds another name)."""
    soup = BeautifulSoup((site / "guides" / "options.html").read_text(), "html.parser")
    captioned = [figure for figure in soup.select("figure") if figure.figcaption is not None]

    def lines(caption: str) -> list[str]:
        (figure,) = [figure for figure in captioned if caption in " ".join(figure.figcaption.get_text().split())]
        return [line.strip() for line in figure_lines(figure)]

    first_level = ["0 (Embedding) weight:[100, 32]", "2 (Linear) weight:[100, 32] bias:[100]"]
    for caption in (
        ":max-depth: 1.",
        ":rootname: model.",
        ":theme: dark keeps",
        ":format: svg: a picture",
        ":width: 50%, :align: center",
        ":hide-code:: only the figure",
    ):
        shown = lines(caption)
        assert all(line in shown for line in first_level), (caption, shown)
        assert not any("head" in line for line in shown), (caption, shown)
    full = lines(":collapse: with a summary")
    assert "0-5 (Block)" in full and "root" in full, full
    assert lines(":timeout: 60.")[0] == "root weight:[100, 32] bias:[100]"
    assert any(line.startswith("+") and "head (Linear)" in line for line in lines(":compare: options_model"))
    preview = lines(":targets: with a regex")
    adapted = [line for line in preview if line.startswith("◆")]
    assert [line.split()[1:] for line in adapted] == [
        ["attn", "(Linear)", "weight:[32,", "32]", "bias:[32]", "(adapted)"]
    ]
    assert "0-2 (Block)" in preview and "3-5 (Block)" in preview, preview
    reset = lines(":reset:: model is not defined")
    assert reset[0] == "False" and reset[1].startswith("Linear(in_features=4")
    assert reset == [line.strip() for line in figure_lines(captioned[-1])], ":reset:'s figure is the page's last"


def build(source: Path, builder: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``sphinx-build -W`` of a small project, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-b", builder, *extra, str(source), str(source / "_build" / builder)],
        capture_output=True,
        text=True,
        timeout=300,
    )


FIGURE_PAGE = """\
Figures
=======

.. modelvis::
   :caption: A layer.
   :name: layer

   from torch import nn
   model = nn.Linear(4, 4)

See :numref:`layer`.
"""


def test_numbered_figures_need_numfig_as_the_options_guide_says(tmp_path: Path) -> None:
    guide = " ".join((DOCS / "guides" / "options.md").read_text().split())
    said = re.search(
        r"With `(numfig = True)` in `conf.py`.*?\(which writes \"(Fig\. 1)\"\); without it, Sphinx "
        r"ignores `:numref:` with a warning \(\"(numfig is disabled)\"\), which `-W` turns into a failed build",
        guide,
    )
    assert said is not None, "the guide's sentence about numfig"
    (tmp_path / "index.rst").write_text(FIGURE_PAGE)
    (tmp_path / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    without = build(tmp_path, "html")
    assert without.returncode != 0 and said[3] in without.stderr, without.stderr
    (tmp_path / "conf.py").write_text(f'extensions = ["sphinx_modelvis"]\n{said[1]}\n')
    numbered = build(tmp_path, "html", "-E")
    assert numbered.returncode == 0, numbered.stderr
    soup = BeautifulSoup((tmp_path / "_build" / "html" / "index.html").read_text(), "html.parser")
    assert soup.select_one('a.reference[href="#layer"]').get_text() == said[2]
    figure = figure_by_name(soup, "layer")
    assert figure.figcaption.get_text(" ", strip=True).startswith(said[2])
    assert figure_lines(figure)[0].strip() == "root weight:[4, 4] bias:[4]"


def test_latex_images_are_where_the_sphinx_guide_says(tmp_path: Path) -> None:
    guide = " ".join((DOCS / "guides" / "sphinx.md").read_text().split())
    assert "written into the output folder itself, next to the `.tex` file" in guide
    assert "the HTML builders write no image file" in guide
    (tmp_path / "index.rst").write_text(FIGURE_PAGE.replace("See :numref:`layer`.", ""))
    (tmp_path / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    for builder in ("latex", "html"):
        result = build(tmp_path, builder)
        assert result.returncode == 0, result.stderr
    latex = tmp_path / "_build" / "latex"
    (png,) = latex.glob("modelvis-*.png")
    assert re.fullmatch(r"modelvis-[0-9a-f]{40}\.png", png.name) and png.read_bytes().startswith(b"\x89PNG")
    assert f"\\sphinxincludegraphics{{{png.name}}}" in next(latex.glob("*.tex")).read_text()
    assert [path.name for path in (tmp_path / "_build").rglob("modelvis-*.png")] == [png.name], "no other copy"


def test_a_changed_block_runs_again_with_the_blocks_after_it_as_the_guides_say(tmp_path: Path) -> None:
    """ci.md and sphinx.md say the same: the key chains over the page."""
    said = "when a block changes, it runs again with every block after it on its page; the figures before it, and "
    for guide in ("ci.md", "sphinx.md"):
        assert said in " ".join((DOCS / "guides" / guide).read_text().split()), guide
    page = "Page\n====\n\n" + "".join(
        f".. modelvis::\n\n   from torch import nn\n   layer_{n} = nn.Linear({n}, {n})\n\n" for n in (1, 2, 3)
    )
    (tmp_path / "index.rst").write_text(page + ".. toctree::\n\n   other\n")
    (tmp_path / "other.rst").write_text(page.replace("Page\n====", "Other\n====="))
    (tmp_path / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    assert build(tmp_path, "html").returncode == 0
    (tmp_path / "index.rst").write_text(page.replace("Linear(2, 2)", "Linear(2, 5)") + ".. toctree::\n\n   other\n")
    again = build(tmp_path, "html")
    assert again.returncode == 0, again.stderr
    runs = re.findall(r"modelvis: (\w+\.rst):(\d+) \.\.\. [\d.]+ s( \(replayed\))?", again.stdout)
    # The first block is replayed (its figure is a hit), the changed one and the one after it run, other.rst not.
    assert runs == [("index.rst", "6", " (replayed)"), ("index.rst", "11", ""), ("index.rst", "16", "")], again.stdout


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    with serve(site) as address:
        yield address


# For every figure: its size, its background, and each text color with the color behind it (the figure's
# background, or a background drawn under that text), as the browser computes them.
FIGURE_COLORS_JS = """
() => Array.from(document.querySelectorAll('.mv[data-mv]')).map(figure => {
  const box = figure.getBoundingClientRect();
  const background = getComputedStyle(figure).backgroundColor;
  const pairs = new Set();
  figure.querySelectorAll('.l, .l span').forEach(element => {
    if (!Array.from(element.childNodes).some(node => node.nodeType === 3 && node.textContent.trim())) return;
    let behind = background;
    for (let up = element; up !== figure; up = up.parentElement) {
      const color = getComputedStyle(up).backgroundColor;
      if (color !== 'rgba(0, 0, 0, 0)') { behind = color; break; }
    }
    pairs.add(getComputedStyle(element).color + '|' + behind);
  });
  return {width: box.width, height: box.height, background, pairs: Array.from(pairs),
          visible: figure.checkVisibility()};
})
"""


# The browser's own search (window.find, as Ctrl+F does it) from the top of the page, on to the next match until one
# is inside a figure: whether a reader searching the page finds ``text`` in a figure.
FIND_IN_FIGURE_JS = """
text => {
  window.getSelection().removeAllRanges();
  while (window.find(text, true, false, false)) {
    const node = window.getSelection().anchorNode;
    const element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
    if (element.closest('.mv')) return true;
  }
  return false;
}
"""


SETTLED_JS = """
() => document.fonts.status === 'loaded'
  && Array.from(document.querySelectorAll('.mv[data-mv]')).every(figure => figure.classList.contains('mv-on'))
"""


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.browser
@needs_chromium
def test_tutorial_as_a_reader_sees_it(server: str, mode: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(color_scheme=mode, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "response",
                lambda response: errors.append(f"{response.status} {response.url}") if response.status >= 400 else None,
            )
            page.goto(f"{server}/tutorial/visualization.html", wait_until="networkidle")

            # The site follows the reader's color scheme.
            body_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            page_is_dark = luminance(rgb(body_background)) < 0.2
            assert page_is_dark == (mode == "dark")

            # Collapsed outputs are closed, and open on a click on their summary.
            closed = page.locator("details:not([open])")
            count = closed.count()
            assert count >= 2
            for index in range(count):
                details = page.locator("details").nth(index)
                details.locator("summary").first.click()
                assert details.evaluate("node => node.open")
            # What the checks below read has settled: the fonts are in, and the script has set every figure up.
            page.wait_for_function(SETTLED_JS, timeout=10_000)

            figures = page.evaluate(FIGURE_COLORS_JS)
            assert len(figures) >= 5
            for figure in figures:
                assert figure["visible"] and figure["width"] > 100 and figure["height"] > 50, figure
                # The figures follow the page: dark on the dark page, light on the light one.
                assert (luminance(rgb(figure["background"])) < 0.2) == page_is_dark, figure["background"]
                for pair in figure["pairs"]:
                    fill, background = pair.split("|")
                    assert contrast(rgb(fill), rgb(background)) >= 4.5, pair

            # The tree is text: the browser's search finds it in a figure (the prose has the words too).
            assert page.evaluate(FIND_IN_FIGURE_JS, "0-11 (BertLayer)")
            assert page.evaluate(FIND_IN_FIGURE_JS, "lora_A")

            shoot(page, f"tutorial-{mode}", tmp_path, least=10_000)
        finally:
            browser.close()
    outside = [url for url in requests if not url.startswith(server)]
    assert outside == [], "no request may leave localhost"
    assert errors == []


# Each figure's first module line with a key, the first folded range, and whether it has a filter.
USABLE_JS = """
figure => ({
  path: figure.querySelector('.i[data-path]:not([data-path=""])').dataset.path,
  folded: !!figure.querySelector('.i > .l:first-child .f'),
  filter: !!figure.querySelector('.mv-find'),
})
"""


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("name", ["tutorial/visualization.html", "notebook.html", "guides/interactive.html"])
@pytest.mark.browser
@needs_chromium
def test_every_figure_can_be_hovered_copied_unfolded_and_searched(server: str, name: str, mode: str) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(color_scheme=mode, viewport={"width": 1280, "height": 900})
            context.grant_permissions(["clipboard-read", "clipboard-write"])
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server}/{name}", wait_until="networkidle")
            closed = page.locator("details:not([open]) > summary")
            while closed.count():
                closed.first.click()
            figures = page.locator(".mv[data-mv]")
            trees = [index for index in range(figures.count()) if figures.nth(index).locator(".i").count()]
            assert len(trees) >= 2
            for index in trees:
                figure = figures.nth(index)
                found = figure.evaluate(USABLE_JS)
                line = figure.locator(f'.i[data-path="{found["path"]}"] > .l').first
                line.locator(".n").first.hover()
                assert page.locator(".mv-tip").inner_text().splitlines()[0] == found["path"]
                line.locator(".n").first.click()
                page.locator(".mv-tip", has_text="copied").wait_for()
                assert page.evaluate("navigator.clipboard.readText()") == found["path"]
                if found["folded"]:
                    before = figure.locator(".i:not([hidden])").count()
                    figure.locator(".i > .l:first-child .f").first.click()
                    assert figure.locator(".i:not([hidden])").count() > before
                if found["filter"]:
                    figure.locator(".mv-find").fill("dense")
                    assert figure.locator(".i.mv-match").count() > 0
        finally:
            browser.close()
    assert errors == []
