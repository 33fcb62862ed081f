"""A figure's page markup kept in the figure cache: its key covers every rendering option, and a build with
nothing changed takes each figure's markup from the cache, byte for byte what drawing it gives."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import build_sphinx

from sphinx_modelvis.capture import Capture, TreeBlock
from sphinx_modelvis.execution.cache import FigureCache
from sphinx_modelvis.execution.markup import PAGE_FIGURE_OPTIONS, markup_key, renderer_state
from sphinx_modelvis.rendering import page_figure
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo


def capture() -> str:
    fc = ModuleNode("fc", "Linear", [ParamInfo("w", (8, 8))])
    layers = [ModuleNode(str(i), "Block", children=[fc]) for i in range(3)]
    tree = ModelTree(ModuleNode("root", "Net", children=[ModuleNode("layers", "ModuleList", children=layers)]))
    return Capture([TreeBlock(tree)]).to_json()


#: Interactive, so that ``open_depth`` and ``anchor`` draw something.
BASE: dict[str, Any] = {
    "format": "interactive",
    "theme": "auto",
    "width": 100,
    "label": "model structure",
    "open_depth": None,
    "anchor": None,
}
#: Each option changed to a value that draws another figure.
CHANGED = {"format": "svg", "theme": "dark", "width": 30, "label": "the encoder", "open_depth": 1, "anchor": "net"}


def test_the_key_is_made_of_exactly_page_figure_s_options() -> None:
    parameters = inspect.signature(page_figure).parameters
    source, *options = parameters
    assert source == "source"
    assert sorted(PAGE_FIGURE_OPTIONS) == sorted(options), "a new rendering option belongs in the key"
    assert sorted(BASE) == sorted(CHANGED) == sorted(PAGE_FIGURE_OPTIONS)
    with pytest.raises(ValueError, match="keyed by all of"):
        markup_key(capture(), {name: BASE[name] for name in PAGE_FIGURE_OPTIONS[:-1]}, renderer_state())


@pytest.mark.parametrize("option", PAGE_FIGURE_OPTIONS)
def test_changing_a_rendering_option_changes_the_markup_and_its_key(option: str) -> None:
    text, renderer = capture(), renderer_state()
    changed = {**BASE, option: CHANGED[option]}
    drawn = page_figure(Capture.from_json(text), **BASE)
    assert page_figure(Capture.from_json(text), **changed) != drawn, f"{option} shapes the markup"
    assert markup_key(text, changed, renderer) != markup_key(text, BASE, renderer)


def test_the_capture_and_the_renderer_are_in_the_key() -> None:
    text, renderer = capture(), renderer_state()
    other = Capture.from_json(text)
    other.blocks[0].tree.root.children[0].name = "blocks"  # type: ignore[union-attr]
    assert markup_key(other.to_json(), BASE, renderer) != markup_key(text, BASE, renderer)
    assert markup_key(text, BASE, renderer + " edited") != markup_key(text, BASE, renderer)
    assert renderer_state().startswith("sphinx-modelvis ") and " rich " in renderer_state()


def test_an_unchanged_build_takes_each_figure_s_markup_from_the_cache(tmp_path: Path) -> None:
    src = tmp_path / "interactive"
    first = build_sphinx("interactive", src)
    stored = sorted((src / "_build" / ".modelvis-cache" / "markup").glob("*.markup"))
    figures = first.page("index").count('class="modelvis-figure')
    assert figures == len(stored) >= 5, "one markup per figure drawn"
    again = build_sphinx("interactive", src)
    assert again.stats.executed == 0 and again.page("index") == first.page("index"), "the same bytes from the cache"
    # Proof that the second build took them from the cache: a stored markup marked by hand shows in the page.
    data = json.loads(stored[0].read_text(encoding="utf-8"))
    data["markup"] = data["markup"].replace("<", "<!-- kept -->\n<", 1)
    stored[0].write_text(json.dumps(data), encoding="utf-8")
    marked = build_sphinx("interactive", src)
    assert marked.page("index").count("<!-- kept -->") == 1
    assert FigureCache(src / "_build" / ".modelvis-cache").usage().entries == figures, "markup is not an entry"


def test_a_cache_that_cannot_keep_markup_draws_the_figures_without_a_warning(tmp_path: Path) -> None:
    src = tmp_path / "interactive"
    first = build_sphinx("interactive", src)
    markup = src / "_build" / ".modelvis-cache" / "markup"
    shutil.rmtree(markup)
    markup.write_text("a file in the way")  # as a read-only cache: the entries read, nothing written
    again = build_sphinx("interactive", src, warningiserror=True)
    assert again.stats.executed == 0 and again.warnings == ""
    assert again.page("index") == first.page("index")


MKDOCS_PAGE = """\
# Figures

```{modelvis}
from torch import nn

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
```

```{modelvis}
:format: svg

layer = nn.Linear(3, 3)
```
"""


def test_mkdocs_takes_each_figure_s_markup_from_the_cache(tmp_path: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(MKDOCS_PAGE, encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text("site_name: markup\nplugins:\n  - modelvis\n", encoding="utf-8")

    def page() -> str:
        build(load_config(str(tmp_path / "mkdocs.yml"), site_dir=str(tmp_path / "site")))
        text = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
        return text.rsplit("<!--\nMkDocs version", 1)[0]  # without the build's date

    first = page()
    stored = sorted((tmp_path / ".modelvis-cache" / "markup").glob("*.markup"))
    assert len(stored) == first.count('class="modelvis-figure') == 2
    assert page() == first
    data = json.loads(stored[0].read_text(encoding="utf-8"))
    data["markup"] = data["markup"].replace("<", "<!-- kept -->\n<", 1)
    stored[0].write_text(json.dumps(data), encoding="utf-8")
    assert page().count("<!-- kept -->") == 1
