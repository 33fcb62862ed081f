"""A module's key in a URL, and the key role's links, as a reader follows them: a real Sphinx build of
``tests/roots/test-keys`` (furo), opened in headless Chromium at ``page.html#NAME:KEY``, in light and dark mode
and with JavaScript switched off.

Screenshots go to pytest's temporary folder, and to ``$MODELVIS_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import luminance, needs_chromium, rgb, serve, shoot
from conftest import build_sphinx
from test_interactive import browser, open_page  # noqa: F401 - the module's browser fixture

pytestmark = [pytest.mark.browser, needs_chromium]

QUERY_3 = "encoder.layer.3.attention.self.query"
FOLDED_QKV = "encoder.layer.{0-11}.attention.self.{query,key,value}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("keys")
    build = build_sphinx("keys", folder / "src", modelvis_cache_dir=str(folder / "cache"))
    # Only the page written to fail warns.
    assert all("broken.md" in line for line in build.warnings.splitlines() if "WARNING" in line), build.warnings
    with serve(build.outdir) as address:
        yield address


def target(page: Any) -> Any:
    """The module the page's URL went to, as the script marks it."""
    return page.locator("#bert-vis .i.mv-target")


def visible_in_window(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= page.viewport_size["height"]


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_a_url_to_a_folded_member_unfolds_opens_and_highlights_it(
    browser: Any,  # noqa: F811
    site: str,
    mode: str,
    tmp_path: Path,
) -> None:
    # The figure starts shut below its first level (:open-depth: 1) and folds the twelve layers into one line.
    page = open_page(browser, f"{site}/index.html#bert-vis:{QUERY_3}", mode=mode)
    marked = target(page)
    assert marked.count() == 1
    assert marked.get_attribute("data-path") == QUERY_3
    assert marked.is_visible() and visible_in_window(page, marked.locator(":scope > .l").first)
    # Unfolded down to it: layer 3 is a line of its own, and so is its query among key and value.
    assert page.locator('#bert-vis .i[data-path="encoder.layer.3"]').is_visible()
    assert page.locator('#bert-vis .i[data-path="encoder.layer.3.attention.self.key"]').is_visible()
    # Highlighted in the page's colors: the line's background is not the figure's.
    line = marked.locator(":scope > .l").first
    figure_background = rgb(page.locator("#bert-vis .mv").evaluate("el => getComputedStyle(el).backgroundColor"))
    line_background = rgb(line.evaluate("el => getComputedStyle(el).backgroundColor"))
    assert line_background != figure_background
    assert (luminance(figure_background) < 0.2) == (mode == "dark")
    shoot(page, f"key-url-{mode}", tmp_path, "#bert-vis")
    assert page.modelvis_errors == []


def test_the_role_links_to_the_module_and_a_second_click_reveals_it_again(browser: Any, site: str) -> None:  # noqa: F811
    page = open_page(browser, f"{site}/other.html")
    link = page.locator("a.mv-key", has_text="encoder.layer.7.output.dense")
    # The markup's href is the folded line (where a page without script lands); the script points it at the module.
    assert link.evaluate("el => decodeURIComponent(el.hash)") == "#bert-vis:encoder.layer.7.output.dense"
    link.click()
    page.wait_for_url("**/index.html#bert-vis:encoder.layer.7.output.dense")
    page.wait_for_selector("#bert-vis .i.mv-target")
    assert target(page).get_attribute("data-path") == "encoder.layer.7.output.dense"
    # On the figure's own page: a link to another key moves the highlight there.
    page.locator("a.mv-key", has_text="pooler").click()
    page.wait_for_function("document.querySelector('#bert-vis .mv-target').dataset.path === 'pooler'")
    assert target(page).count() == 1
    # The same link again changes no hash, and still brings the module back into view.
    page.mouse.wheel(0, -5000)
    page.locator("a.mv-key", has_text="pooler").click()
    assert visible_in_window(page, target(page).locator(":scope > .l").first)
    assert page.modelvis_errors == []


def test_a_folded_pattern_lands_on_the_folded_line_itself(browser: Any, site: str) -> None:  # noqa: F811
    page = open_page(browser, f"{site}/index.html")
    page.locator("a.mv-key", has_text="layer.{0-11}.attention").click()
    page.wait_for_selector("#bert-vis .i.mv-target")
    assert target(page).get_attribute("data-path") == "encoder.layer.{0-11}.attention"
    assert page.locator('#bert-vis .i[data-path="encoder.layer.0"]').count() == 0  # nothing unfolded


def test_without_javascript_the_link_lands_on_the_line_that_holds_the_module(
    browser: Any,  # noqa: F811
    site: str,
    tmp_path: Path,
) -> None:
    page = open_page(browser, f"{site}/other.html", javascript=False)
    page.locator("a.mv-key", has_text="encoder.layer.7.output.dense").click()
    page.wait_for_url(lambda url: url.endswith(".output.dense") and "/index.html#bert-vis:encoder.layer." in url)
    line = page.locator('[id="bert-vis:encoder.layer.{0-11}.output.dense"]')
    assert line.evaluate("el => el.matches(':target')")
    assert visible_in_window(page, line.locator(":scope > .l").first)
    shoot(page, "key-no-script", tmp_path)
