"""The project's own documentation: built for real with -W, then read in headless Chromium in light and dark mode.

The built site and full-page screenshots are kept under pytest's temporary folder
(`pytest --basetemp=out` keeps them in ./out).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sphinx_html import figure_by_name, svg_lines

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


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
        assert figure_by_name(tutorial, name).find("svg") is not None, name
    assert len(tutorial.select("svg.modelvis-svg")) >= 5
    assert not list(site.rglob("modelvis-*")), "no image file: every figure is inline"

    gallery = (site / "gallery.html").read_text()
    lines = [line for svg in re.findall(r"<svg.*?</svg>", gallery, flags=re.S) for line in svg_lines(svg)]
    for expected in ("0-11 (GPT2Block)", "0-79 (LlamaDecoderLayer)", "(ViTLayer)", "T5Block"):
        assert any(expected in line for line in lines), expected
    summaries = [line for line in lines if line.startswith("parameters:")]
    assert len(summaries) >= 4 and any("70.6B total" in line for line in summaries)


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
    assert any(line.startswith("root weight:[4, 4]") for line in svg_lines(page))
    assert (tmp_path / "_build" / ".modelvis-cache").is_dir()


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _rgb(css: str) -> tuple[int, int, int]:
    if css.startswith("#"):
        return int(css[1:3], 16), int(css[3:5], 16), int(css[5:7], 16)
    r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])
    return r, g, b


# For every figure: its size, and each text color with the color behind it (the figure's background,
# or a cell background rich drew under that text), as the browser computes them.
FIGURE_COLORS_JS = """
() => Array.from(document.querySelectorAll('svg.modelvis-svg')).map(svg => {
  const box = svg.getBoundingClientRect();
  const rects = Array.from(svg.querySelectorAll('rect'));
  const background = rects[0].getAttribute('fill');
  const cells = rects.slice(1).map(r => ({x: +r.getAttribute('x'), y: +r.getAttribute('y'),
      w: +r.getAttribute('width'), fill: r.getAttribute('fill')}));
  const pairs = new Set();
  svg.querySelectorAll('text').forEach(t => {
    const x = +t.getAttribute('x'), y = +t.getAttribute('y');
    const cell = cells.find(c => Math.abs(c.y + 18.5 - y) < 0.5 && c.x <= x && x < c.x + c.w);
    pairs.add(getComputedStyle(t).fill + '|' + (cell ? cell.fill : background));
  });
  return {width: box.width, height: box.height, pairs: Array.from(pairs), visible: svg.checkVisibility()};
})
"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps installs it)")
@pytest.mark.parametrize("mode", ["light", "dark"])
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
            page_is_dark = _luminance(_rgb(body_background)) < 0.2
            assert page_is_dark == (mode == "dark")

            # Collapsed outputs are closed, and open on a click on their summary.
            closed = page.locator("details:not([open])")
            count = closed.count()
            assert count >= 3
            for index in range(count):
                details = page.locator("details").nth(index)
                details.locator("summary").first.click()
                assert details.evaluate("node => node.open")
            page.wait_for_timeout(200)

            figures = page.evaluate(FIGURE_COLORS_JS)
            assert len(figures) >= 5
            for figure in figures:
                assert figure["visible"] and figure["width"] > 100 and figure["height"] > 50, figure
                for pair in figure["pairs"]:
                    fill, background = pair.split("|")
                    assert contrast(_rgb(fill), _rgb(background)) >= 4.5, pair

            # The tree is text: the browser's search finds it.
            assert page.evaluate("window.find('BertLayer')")
            assert page.evaluate("window.find('lora_A')")

            shot = tmp_path / f"tutorial-{mode}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("MODELVIS_SCREENSHOTS"):
                target = Path(os.environ["MODELVIS_SCREENSHOTS"])
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, target / shot.name)
        finally:
            browser.close()
    outside = [url for url in requests if not url.startswith(server)]
    assert outside == [], "no request may leave localhost"
    assert errors == []
