"""The interactive figure as a reader uses it: built by a real Sphinx (furo and pydata-sphinx-theme) and a real
MkDocs (Material), then driven in headless Chromium: hover, click and keyboard, the clipboard, unfolding and
folding, collapsing, the filter, the page's light and dark mode, and JavaScript switched off.

Screenshots go to pytest's temporary folder, and to ``$MODELVIS_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, CHROMIUM_FLAGS, luminance, needs_chromium, rgb, serve, shoot
from conftest import build_sphinx

from sphinx_modelvis.theme import DARK, LIGHT

pytestmark = [pytest.mark.browser, needs_chromium]

QKV = "encoder.layer.{0-11}.attention.self.{query,key,value}"
LAYERS = "encoder.layer.{0-11}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One figure cache for the module's builds: the second theme's build runs no snippet."""
    return tmp_path_factory.mktemp("modelvis-cache")


@pytest.fixture(scope="module")
def furo_site(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    build = build_sphinx("interactive", tmp_path_factory.mktemp("furo") / "src", modelvis_cache_dir=str(cache))
    assert build.warnings == ""
    return build.outdir


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def furo(furo_site: Path) -> Iterator[str]:
    with serve(furo_site) as address:
        yield f"{address}/index.html"


def open_page(
    browser: Any, url: str, *, mode: str = "light", javascript: bool = True, reduced_motion: str = "no-preference"
) -> Any:
    """A new page at ``url`` in a fresh context (``mode``: the reader's color scheme), failing on script errors."""
    context = browser.new_context(
        color_scheme=mode,
        java_script_enabled=javascript,
        reduced_motion=reduced_motion,
        viewport={"width": 1280, "height": 900},
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("response", lambda response: errors.append(response.url) if response.status >= 400 else None)
    page.goto(url, wait_until="networkidle")
    page.modelvis_errors = errors
    return page


def module(page: Any, figure: str, path: str) -> Any:
    """The module element of ``path`` in the figure named ``figure``."""
    return page.locator(f'#{figure} [data-path="{path}"]').first


def head(page: Any, figure: str, path: str) -> Any:
    """The first line of a module: what a reader points at and clicks (on its type: a click on a folded
    range unfolds it instead)."""
    return module(page, figure, path).locator(":scope > .l .t").first


#: The clipboard's text once it holds the first argument (copying is asynchronous), or after the second's ms.
CLIPBOARD_ONCE = """async ([expected, milliseconds]) => {
  const end = performance.now() + milliseconds;
  let text = await navigator.clipboard.readText();
  while (text !== expected && performance.now() < end) {
    await new Promise((done) => setTimeout(done, 20));
    text = await navigator.clipboard.readText();
  }
  return text;
}"""


def clipboard(page: Any, expected: str) -> str:
    """The clipboard's text once it holds ``expected``, or what it holds after two seconds."""
    return str(page.evaluate(CLIPBOARD_ONCE, [expected, 2000]))


def after_a_note(page: Any) -> None:
    """Returns once a "copied" note shown before this call has had its time: a timer of the same length, set
    in the page after the note's own, runs after it (the note's length is the script's, read from the page)."""
    page.evaluate("() => new Promise(done => setTimeout(done, window.modelvisFigures.noteMilliseconds))")


#: Records what the page's script hands to the clipboard, as it does it (the click handler's own call).
RECORD_COPIES = """() => {
  window.copies = [];
  const write = navigator.clipboard.writeText.bind(navigator.clipboard);
  navigator.clipboard.writeText = (text) => { window.copies.push(text); return write(text); };
}"""


def background(page: Any, figure: str) -> tuple[int, int, int]:
    return rgb(page.locator(f"#{figure} .mv").first.evaluate("el => getComputedStyle(el).backgroundColor"))


def test_hover_shows_the_key_and_the_regex(browser: Any, furo: str) -> None:
    page = open_page(browser, furo)
    head(page, "bert", "encoder.layer.{0-11}.output.dense").hover()
    tip = page.locator(".mv-tip")
    assert tip.is_visible()
    text = tip.inner_text()
    assert text.splitlines()[0] == "encoder.layer.{0-11}.output.dense"
    assert r"encoder\.layer\.\d+\.output\.dense" in text
    # A line without a folded group above it has no regex to offer.
    head(page, "bert", "embeddings.word_embeddings").hover()
    assert tip.inner_text().splitlines()[0] == "embeddings.word_embeddings" and "regex" not in tip.inner_text()
    # Focus shows it too, for keyboard readers.
    module(page, "bert", "pooler").focus()
    assert tip.inner_text().splitlines()[0] == "pooler"
    assert page.modelvis_errors == []


def test_click_copies_the_key_and_shift_click_the_regex(browser: Any, furo: str) -> None:
    page = open_page(browser, furo)
    head(page, "bert", QKV).click()
    page.locator(".mv-tip", has_text="key copied").wait_for()
    assert page.locator(".mv-tip").inner_text().startswith(f"key copied: {QKV}")
    assert clipboard(page, QKV) == QKV
    # The note stays while the pointer moves over its line; then the key comes back.
    module(page, "bert", QKV).locator(":scope > .l .u").first.hover()
    assert page.locator(".mv-tip").inner_text().startswith("key copied")
    page.locator(".mv-tip", has_text="regex for PEFT").wait_for(timeout=3000)
    # Moved on to another line (of another figure) within the note's time: that line's key stays, after the
    # note's time too.
    head(page, "bert", QKV).click()
    page.locator(".mv-tip", has_text="key copied").wait_for()
    head(page, "lora", "base_model.model.pooler.dense").hover()
    assert page.locator(".mv-tip").inner_text().splitlines()[0] == "base_model.model.pooler.dense"
    after_a_note(page)
    assert page.locator(".mv-tip").inner_text().splitlines()[0] == "base_model.model.pooler.dense"
    head(page, "bert", QKV).click(modifiers=["Shift"])
    regex = r"encoder\.layer\.\d+\.attention\.self\.(?:query|key|value)"
    assert clipboard(page, regex) == regex
    # Enter on a focused line copies as well.
    module(page, "bert", "embeddings.LayerNorm").focus()
    page.keyboard.press("Enter")
    assert clipboard(page, "embeddings.LayerNorm") == "embeddings.LayerNorm"
    # Clicks on a folded range or on a marker do not copy: each click's own effect shows that its handler
    # has run (a copy would have started in it), and nothing went to the clipboard.
    page.evaluate("navigator.clipboard.writeText('untouched')")
    page.evaluate(RECORD_COPIES)
    encoder = module(page, "bert", "encoder")
    marker = encoder.locator(":scope > .l .mv-marker")
    marker.click()
    assert encoder.get_attribute("aria-expanded") == "false"
    marker.click()  # and open again
    assert encoder.get_attribute("aria-expanded") == "true"
    module(page, "bert", QKV).locator(":scope > .l .f").click()  # unfolds query, key and value
    assert module(page, "bert", "encoder.layer.{0-11}.attention.self.key").is_visible()
    assert page.evaluate("window.copies") == []
    assert page.evaluate("navigator.clipboard.readText()") == "untouched"
    # The record sees a copy when there is one.
    head(page, "bert", "pooler").click()
    assert clipboard(page, "pooler") == "pooler" and page.evaluate("window.copies") == ["pooler"]
    assert page.modelvis_errors == []


def test_every_copied_regex_matches_exactly_its_modules(browser: Any, furo: str) -> None:
    """What PEFT does with ``target_modules`` (``re.fullmatch`` on each key), done on the figure's own keys."""
    import re

    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=1000, hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64
    )
    import torch

    with torch.device("meta"):
        keys = [name for name, _ in BertModel(config).named_modules() if name]
    page = open_page(browser, furo)
    folded = page.locator("#bert [data-r]").evaluate_all("els => els.map(el => [el.dataset.path, el.dataset.r])")
    assert len(folded) > 5
    for path, pattern in folded:
        matched = [key for key in keys if re.fullmatch(pattern, key)]
        # The folded path, with each group's members written out, names the same keys.
        expected = [key for key in keys if _matches_folded(path, key)]
        assert matched == expected and matched, path
    assert module(page, "bert", QKV).get_attribute("data-r") is not None


def _matches_folded(path: str, key: str) -> bool:
    """Whether ``key`` is one of the keys the folded ``path`` (``a.{0-11}.b.{query,key}``) stands for."""
    import re

    def group(members: str) -> str:
        names: list[str] = []
        for run in members.split(","):
            ends = run.split("-")
            if all(end.isdecimal() for end in ends):
                names += [str(i) for i in range(int(ends[0]), int(ends[-1]) + 1)]
            else:
                names.append(run)
        return "(?:" + "|".join(map(re.escape, names)) + ")"

    pattern = re.sub(r"\\\{([^}]*)\\\}", lambda match: group(re.sub(r"\\(.)", r"\1", match[1])), re.escape(path))
    return re.fullmatch(pattern, key) is not None


def test_a_folded_group_unfolds_into_its_members_and_back(browser: Any, furo: str, tmp_path: Path) -> None:
    page = open_page(browser, furo)
    page.locator(f'#bert [data-path="{LAYERS}"] > .l .f').first.click()
    members = [f"encoder.layer.{index}" for index in range(12)]
    shown = page.locator("#bert .i:not([hidden])").evaluate_all("els => els.map(el => el.dataset.path)")
    assert [path for path in shown if path in members] == members
    assert LAYERS not in shown
    # Each member has its own keys all the way down, and no regex where no group is left.
    assert module(page, "bert", "encoder.layer.7.attention.self.{query,key,value}").is_visible()
    seven = module(page, "bert", "encoder.layer.7.output.dense")
    assert seven.is_visible() and seven.get_attribute("data-r") is None
    head(page, "bert", "encoder.layer.7.output.dense").click()
    assert clipboard(page, "encoder.layer.7.output.dense") == "encoder.layer.7.output.dense"
    # Index labels read 0 to 11, and the guides of all but the last member go on down.
    labels = page.locator("#bert .i:not([hidden]) > .l .mv-member").all_inner_texts()
    assert labels == [str(index) for index in range(12)]
    shoot(page, "unfolded", tmp_path, "#bert")
    # A click on a member's index folds them back.
    page.locator('#bert [data-path="encoder.layer.3"] > .l .mv-member').click()
    shown = page.locator("#bert .i:not([hidden])").evaluate_all("els => els.map(el => el.dataset.path)")
    assert LAYERS in shown and not any(path in members for path in shown)
    assert page.locator('#bert [data-path="encoder.layer.3"]').count() == 0
    # And with the keyboard: Space on the folded line, Space on a member.
    module(page, "bert", LAYERS).focus()
    page.keyboard.press(" ")
    assert module(page, "bert", "encoder.layer.0").is_visible()
    module(page, "bert", "encoder.layer.5").focus()
    page.keyboard.press(" ")
    assert module(page, "bert", LAYERS).is_visible()
    assert page.modelvis_errors == []


def test_markers_and_arrow_keys_collapse_subtrees(browser: Any, furo: str) -> None:
    page = open_page(browser, furo)
    encoder = module(page, "bert", "encoder")
    assert encoder.get_attribute("aria-expanded") == "true"
    encoder.locator(":scope > .l .mv-marker").click()
    assert encoder.get_attribute("aria-expanded") == "false"
    assert not module(page, "bert", LAYERS).is_visible() and module(page, "bert", "pooler").is_visible()
    encoder.locator(":scope > .l .mv-marker").click()
    assert module(page, "bert", LAYERS).is_visible()
    encoder.focus()
    page.keyboard.press("ArrowLeft")
    assert encoder.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowRight")
    assert encoder.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.path") == "encoder.layer"
    # :open-depth: 1 starts collapsed below the root's children; the whole tree is in the page.
    assert module(page, "shut", "embeddings").is_visible()
    assert not module(page, "shut", "embeddings.word_embeddings").is_visible()
    assert module(page, "shut", "embeddings.word_embeddings").count() == 1
    assert page.modelvis_errors == []


def test_the_filter_highlights_matches_and_their_ancestors(browser: Any, furo: str, tmp_path: Path) -> None:
    page = open_page(browser, furo)
    assert page.locator("#bert .mv-find").count() == 0, "short figures have no filter"
    find = page.locator("#lora .mv-find")
    find.fill("lora_A")
    hits = page.locator("#lora .i.mv-match").evaluate_all("els => els.map(el => el.dataset.path)")
    assert hits and all("lora_A" in path for path in hits) and any(path.endswith(".lora_A") for path in hits)
    ancestors = page.locator("#lora .i.mv-ancestor").evaluate_all("els => els.map(el => el.dataset.path)")
    assert "base_model.model.encoder" in ancestors
    dim = page.locator("#lora [data-path='base_model.model.embeddings']")
    # The dimming fades in (0.15 s): wait for it to settle.
    faded = "([el, below]) => below ? getComputedStyle(el).opacity < 0.5 : getComputedStyle(el).opacity == 1"
    page.wait_for_function(faded, arg=[dim.element_handle(), True], timeout=5000)
    assert page.locator("#lora .mv-count").inner_text() == f"{len(hits)} match" + ("es" if len(hits) > 1 else "")
    shoot(page, "filtered", tmp_path, "#lora")
    find.fill("")
    assert page.locator("#lora .i.mv-match").count() == 0
    page.wait_for_function(faded, arg=[dim.element_handle(), False], timeout=5000)
    # A reader who asks for reduced motion gets no fade: dimmed at once.
    still = open_page(browser, furo, reduced_motion="reduce")
    still.locator("#lora .mv-find").fill("lora_A")
    embeddings = still.locator("#lora [data-path='base_model.model.embeddings']")
    assert float(embeddings.evaluate("el => getComputedStyle(el).opacity")) < 0.5
    assert page.modelvis_errors == []


def test_furo_dark_mode_switches_the_figures_live(browser: Any, furo: str, tmp_path: Path) -> None:
    page = open_page(browser, furo, mode="light")
    assert background(page, "bert") == rgb(LIGHT.background)
    assert background(page, "pinned") == rgb(DARK.background), ":theme: dark stays dark"
    # furo's toggle cycles auto, dark, light (from a light system): click until the body says dark.
    for _ in range(3):
        if page.evaluate("document.body.dataset.theme") == "dark":
            break
        page.locator(".theme-toggle:visible").first.click()
    assert page.evaluate("document.body.dataset.theme") == "dark"
    assert background(page, "bert") == rgb(DARK.background)
    assert background(page, "lora") == rgb(DARK.background)
    picture = page.locator("#picture svg rect").first.evaluate("el => getComputedStyle(el).fill")
    assert rgb(picture) == rgb(DARK.background), "an auto SVG picture follows the page too"
    shoot(page, "furo-dark", tmp_path, "#bert")
    # A dark system with furo set to light: light.
    dark = open_page(browser, furo, mode="dark")
    assert background(dark, "bert") == rgb(DARK.background)
    dark.evaluate("document.body.dataset.theme = 'light'")
    assert background(dark, "bert") == rgb(LIGHT.background)
    shoot(dark, "furo-light", tmp_path, "#bert")


def test_without_javascript_the_whole_tree_is_there(browser: Any, furo: str, tmp_path: Path) -> None:
    page = open_page(browser, furo, javascript=False)
    modules = page.locator("#shut .i")
    assert modules.count() > 10
    assert all(modules.nth(index).is_visible() for index in range(modules.count())), ":open-depth: needs the script"
    assert page.locator(".mv-find").count() == 0 and page.locator(".mv-marker").count() == 0
    assert background(page, "bert") == rgb(LIGHT.background)
    text = page.locator("#bert .mv").inner_text()
    assert "0-11 (BertLayer)" in text and "query,key,value (Linear)" in text
    shoot(page, "no-script", tmp_path, "#bert")


def test_pydata_theme_dark_mode(browser: Any, tmp_path_factory: pytest.TempPathFactory, cache: Path) -> None:
    pytest.importorskip("pydata_sphinx_theme")
    src = tmp_path_factory.mktemp("pydata") / "src"
    build = build_sphinx("interactive", src, html_theme="pydata_sphinx_theme", modelvis_cache_dir=str(cache))
    assert "WARNING" not in build.warnings, build.warnings
    with serve(build.outdir) as address:
        page = open_page(browser, f"{address}/index.html", mode="light")
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        assert background(page, "bert") == rgb(LIGHT.background)
        # pydata's color mode menu: open it, choose Dark.
        page.locator(".theme-switch-button:visible").first.click()
        page.locator("[data-mode=dark]:visible").first.click()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert background(page, "bert") == rgb(DARK.background)
        head(page, "bert", QKV).hover()
        assert page.locator(".mv-tip").inner_text().startswith(QKV)


def test_material_example_site(browser: Any, tmp_path: Path) -> None:
    """The guide's MkDocs Material example site, as documented: its palette toggle switches the figures."""
    pytest.importorskip("mkdocs")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    project = tmp_path / "site"
    shutil.copytree(Path(__file__).parent.parent / "docs" / "examples" / "mkdocs-site", project)
    build(load_config(str(project / "mkdocs.yml"), site_dir=str(project / "site")))
    with serve(project / "site") as address:
        page = open_page(browser, f"{address}/index.html", mode="light")
        assert page.evaluate("document.body.dataset.mdColorScheme") == "default"
        assert background(page, "bert-tree") == rgb(LIGHT.background)
        layers = "bert.encoder.layer.{0-1}"
        head(page, "bert-tree", layers).hover()
        assert page.locator(".mv-tip").inner_text().splitlines()[0] == layers
        page.locator(f'#bert-tree [data-path="{layers}"] > .l .f').first.click()
        head(page, "bert-tree", "bert.encoder.layer.1.output.dense").click()
        assert clipboard(page, "bert.encoder.layer.1.output.dense") == "bert.encoder.layer.1.output.dense"
        # Material's toggle: the label of the palette input that is not checked.
        page.locator("label[for='__palette_1']:visible").first.click()
        assert page.evaluate("document.body.dataset.mdColorScheme") == "slate"
        assert background(page, "bert-tree") == rgb(DARK.background)
        assert background(page, "bert-lora") == rgb(DARK.background)
        shoot(page, "material-dark", tmp_path, "#bert-lora")
        assert page.modelvis_errors == [], "no script error, and no request elsewhere (font: false)"


def test_the_figure_reads_like_its_svg(browser: Any, furo: str) -> None:
    """Same lines, and tree guides that join: each guide cell is as tall as its line, with no gap."""
    page = open_page(browser, furo)
    gaps = page.locator("#bert .mv").evaluate(
        """fig => Array.from(fig.querySelectorAll('.l')).map(line => {
             const box = line.getBoundingClientRect();
             return Array.from(line.querySelectorAll('i')).map(cell => {
               const c = cell.getBoundingClientRect();
               return Math.abs(c.top - box.top) + Math.abs(c.height - box.height);
             });
           }).flat()"""
    )
    assert gaps and max(gaps) < 0.5
    heights = page.locator("#bert .l").evaluate_all("els => els.map(el => el.getBoundingClientRect().height)")
    assert len(set(round(height, 1) for height in heights)) == 1, "every line has the same height"
    assert luminance(background(page, "bert")) > 0.8
