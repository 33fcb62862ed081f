"""The MkDocs plugin: real MkDocs sites (tests/mkdocs_sites/, docs/examples/mkdocs-site/) built and their HTML read."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mkdocs")
from bs4 import BeautifulSoup, Tag
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort
from sphinx_html import figure_lines, roles_of

from sphinx_modelvis.mkdocs.fences import find_fences

os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # MkDocs 1.6 prints a banner about its future otherwise

HERE = Path(__file__).resolve().parent
SITES = HERE / "mkdocs_sites"
EXAMPLE = HERE.parent / "docs" / "examples" / "mkdocs-site"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def mkdocs_log() -> Iterator[_Records]:
    """What MkDocs and its plugins log (the ``mkdocs`` logger), as records."""
    handler = _Records()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@dataclass
class Built:
    """A built site: its output folder, the plugin object (with its run counts) and the warnings logged."""

    site: Path
    plugin: Any
    warnings: list[str]

    def page(self, name: str = "index.html") -> BeautifulSoup:
        return BeautifulSoup((self.site / name).read_text(encoding="utf-8"), "html.parser")

    def figure(self, anchor: str, name: str = "index.html") -> Tag:
        found = self.page(name).find(id=anchor)
        assert isinstance(found, Tag), f"no element with id {anchor!r} in {name}"
        return found


def build_site(project: Path, site: str | Path = "site", **overrides: Any) -> Built:
    """Build ``project/mkdocs.yml`` into ``project/<site>`` (``overrides``: mkdocs.yml keys), as ``mkdocs build``."""
    site_dir = project / site
    config = load_config(str(project / "mkdocs.yml"), site_dir=str(site_dir), **overrides)
    with mkdocs_log() as log:
        build(config)
    warnings = [record.getMessage() for record in log.records if record.levelno >= logging.WARNING]
    return Built(site_dir, config.plugins["modelvis"], warnings)


def copy_site(source: Path, target: Path) -> Path:
    """A copy of a test site to build (its output and figure cache stay out of the source tree)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("site", ".modelvis-cache"))
    return target


def figure_text(element: Tag) -> str:
    """The text of the figure drawn in ``element`` (interactive lines, an SVG's text elements, or a <pre>)."""
    figure = element if "modelvis-figure" in (element.get("class") or []) else element.find(class_="modelvis-figure")
    assert isinstance(figure, Tag), "no figure here"
    if figure.find(class_="mv") is not None:
        return "\n".join(figure_lines(figure))
    svg = figure.find("svg")
    if svg is None:
        return figure.get_text().replace("\xa0", " ")
    lines: dict[float, str] = {}
    for text in svg.find_all("text"):  # one <text> per run of a style; a line is the runs at one y
        y = float(text["y"])
        lines[y] = lines.get(y, "") + text.get_text()
    return "\n".join(lines[y] for y in sorted(lines)).replace("\xa0", " ")


# -- finding fences (no MkDocs build) -------------------------------------------------------------


def test_fences_with_options_code_and_lines() -> None:
    page = textwrap.dedent(
        """\
        # Title

        ```{modelvis} backbone_model
        :keep-non-params:
        :caption: A *caption*: with a colon

        x = 1

        y = 2

        ```
        """
    )
    (fence,) = find_fences(page)
    assert fence.argument == "backbone_model"
    assert fence.options == {"keep-non-params": None, "caption": "A *caption*: with a colon"}
    assert fence.option_lines == {"keep-non-params": 4, "caption": 5}
    assert fence.code == "x = 1\n\ny = 2\n"
    assert fence.code_line == 7
    assert (fence.start, fence.end) == (2, 11)


def test_fences_indented_yaml_options_and_no_code() -> None:
    page = textwrap.dedent(
        """\
        !!! note

            ~~~~{modelvis} model
            ---
            caption: "quoted: value"
            name: here
            ---
            ~~~~
        """
    )
    (fence,) = find_fences(page)
    assert fence.indent == "    "
    assert fence.options == {"caption": "quoted: value", "name": "here"}
    assert fence.option_lines == {"caption": 5, "name": 6}
    assert fence.code == ""
    assert fence.code_line == 3, "with no code, the opening line"


def test_fences_inside_other_code_blocks_are_text() -> None:
    page = textwrap.dedent(
        """\
        ````markdown
        ```{modelvis}
        print("shown, not run")
        ```
        ````

        ```{modelvis}` is inline code, not a fence

        ```{modelvisual}
        no
        ```
        """
    )
    assert find_fences(page) == []


def test_fences_in_html_comments_are_switched_off() -> None:
    page = textwrap.dedent(
        """\
        <!--
        ```{modelvis}
        raise RuntimeError("commented out")
        ```
        -->

        Text <!-- a remark --> and more.

        ```{modelvis}
        shown = 1
        ```

        ```python
        opening = "<!--"
        ```

        ```{modelvis}
        also_shown = 1
        ```
        """
    )
    assert [fence.code for fence in find_fences(page)] == ["shown = 1\n", "also_shown = 1\n"]


# -- the tutorial's flow, with mkdocs-material ----------------------------------------------------


@pytest.fixture(scope="module")
def tutorial_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_site(SITES / "tutorial", tmp_path_factory.mktemp("mkdocs") / "tutorial")


@pytest.fixture(scope="module")
def tutorial(tutorial_project: Path) -> Built:
    """The tutorial site built once with material (light and dark palettes): every figure run."""
    built = build_site(tutorial_project)
    assert built.warnings == []
    assert built.plugin.stats.worker_starts == 2, "a worker of its own for each page, forked from the template"
    return built


def test_figure_inline_with_caption_and_anchor(tutorial: Built) -> None:
    figure = tutorial.figure("bert-vis")
    assert figure.name == "figure"
    drawing = figure.find("div", class_="modelvis-figure")
    assert isinstance(drawing, Tag) and drawing.find(class_="mv-auto") is not None, "interactive, following the page"
    assert "0-1 (BertLayer)" in figure_text(figure), "the two encoder layers fold into one line"
    caption = figure.find("figcaption")
    assert isinstance(caption, Tag)
    assert caption.get_text() == "The folded tree of the tiny BERT."
    assert caption.find("em") is not None, "the caption is Markdown"
    tree = drawing.find(class_="mv")
    assert isinstance(tree, Tag) and tree["aria-label"] == "The folded tree of the tiny BERT."


def test_code_block_above_figure_highlighted_by_material(tutorial: Built) -> None:
    figure = tutorial.figure("bert-vis")
    code = figure.find_previous_sibling()
    assert isinstance(code, Tag)
    assert "highlight" in code["class"], "pymdownx.highlight's block, as for any code in the site"
    assert "Visualization(backbone_model).structure_graph()" in code.get_text()
    assert code.find("span", class_="kn") is not None, "Pygments tokens: `from ... import`"


def test_collapse_makes_closed_details(tutorial: Built) -> None:
    figure = tutorial.figure("raw-print")
    details = figure.parent
    assert isinstance(details, Tag) and details.name == "details" and not details.has_attr("open")
    summary = details.find("summary")
    assert isinstance(summary, Tag) and summary.get_text() == "The raw printout"
    assert "BertForMaskedLM(" in figure_text(figure), "print(backbone_model)'s own output"


def test_blocks_share_the_page_namespace(tutorial: Built) -> None:
    figure = tutorial.figure("bert-delta")
    text = figure_text(figure)
    assert "lora_A" in text and "base_layer" in text, "the backbone built two blocks earlier, adapted"
    # The adapters get_peft_model added are delta parameters, drawn and counted as such.
    assert roles_of(figure, "weight:[4, 64]") == {"d"}
    assert text.splitlines()[-1] == "parameters: 112.8K total, 18.7K tunable (16.57%), 94.1K frozen, 2.0K delta"
    assert "lora_A" in figure_text(tutorial.figure("keep-non-params")), "get_peft_model changed the backbone"


def test_keep_non_params_and_hide_code(tutorial: Built) -> None:
    assert "Dropout" in figure_text(tutorial.figure("keep-non-params"))
    assert "Dropout" not in figure_text(tutorial.figure("bert-vis"))
    assert "train(False)" not in tutorial.page().get_text(), ":hide-code: hides the code"


def test_figures_in_admonitions_and_lists(tutorial: Built) -> None:
    page = "other/index.html"
    admonition = tutorial.figure("in-admonition", page)
    assert admonition.find_parent("div", class_="admonition") is not None
    drawing = admonition.find("div", class_="modelvis-figure")
    assert isinstance(drawing, Tag)
    assert drawing["style"] == "width: 300px" and "align-center" in admonition["class"]
    listed = tutorial.figure("in-list", page)
    assert listed.name == "div", ":name: without :caption: still anchors the figure"
    assert listed.find_parent("li") is not None
    assert "weight:[16, 8]" in figure_text(listed)
    tabbed = tutorial.figure("in-tab", page)
    assert tabbed.find_parent("div", class_="tabbed-block") is not None
    assert "weight:[2, 16]" in figure_text(tabbed)


def test_html_format_figure(tutorial: Built) -> None:
    anchor = tutorial.figure("mlp", "other/index.html")
    drawing = anchor.find("div", class_="modelvis-html")
    assert isinstance(drawing, Tag) and drawing["role"] == "img"
    pre = drawing.find("pre")
    assert isinstance(pre, Tag) and "nohighlight" in pre["class"], "kept from highlight.js"
    assert "background:#ffffff" in pre["style"], ":theme: light"
    assert "0 (Linear)" in pre.get_text()


def test_material_palettes(tutorial: Built) -> None:
    page = tutorial.page()
    body = page.find("body")
    assert isinstance(body, Tag) and body["data-md-color-scheme"] == "default"
    schemes = {tag["data-md-color-scheme"] for tag in page.find_all("input", attrs={"data-md-color-scheme": True})}
    assert schemes == {"default", "slate"}, "the light/dark toggle"


def test_css_asset_written_and_linked(tutorial: Built) -> None:
    css = (tutorial.site / "assets" / "modelvis" / "modelvis.css").read_text(encoding="utf-8")
    assert "div.modelvis-figure" in css and "pre.modelvis-html>code" in css
    links = [link["href"] for link in tutorial.page().find_all("link", rel="stylesheet")]
    assert "assets/modelvis/modelvis.css" in links
    nested = [link["href"] for link in tutorial.page("other/index.html").find_all("link", rel="stylesheet")]
    assert "../assets/modelvis/modelvis.css" in nested


def test_cached_rebuild_starts_no_worker_and_gives_identical_html(tutorial_project: Path, tutorial: Built) -> None:
    # In a fresh process, as `mkdocs build` in CI with a kept cache: no worker, and torch never imported.
    script = textwrap.dedent(
        """\
        import json, sys
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        config = load_config(sys.argv[1], site_dir=sys.argv[2])
        build(config)
        stats = config.plugins["modelvis"].stats
        print(json.dumps({"worker_starts": stats.worker_starts, "cached": stats.cached,
                          "executed": stats.executed, "torch": "torch" in sys.modules}))
        """
    )
    again = tutorial_project / "site-again"
    done = subprocess.run(
        [sys.executable, "-c", script, str(tutorial_project / "mkdocs.yml"), str(again)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats == {"worker_starts": 0, "cached": 8, "executed": 0, "torch": False}
    for page in ("index.html", "other/index.html"):
        assert (again / page).read_bytes() == (tutorial.site / page).read_bytes()


def test_material_dark_palette_from_the_cache(tutorial_project: Path, tutorial: Built, tmp_path: Path) -> None:
    # Into a folder elsewhere, as `mkdocs serve` builds: the cache is found next to mkdocs.yml all the same.
    slate = {"name": "material", "palette": {"scheme": "slate"}}
    built = build_site(tutorial_project, tmp_path / "served", theme=slate)
    assert built.plugin.stats.worker_starts == 0 and built.warnings == []
    body = built.page().find("body")
    assert isinstance(body, Tag) and body["data-md-color-scheme"] == "slate"
    assert built.figure("bert-vis").find(class_="mv-auto") is not None
    # Slate's figures take the dark palette from the stylesheet every page links, with the script beside it.
    head = str(built.page().find("head")) + str(body)
    assert "assets/modelvis/modelvis.css" in head and "assets/modelvis/modelvis-figure.js" in head
    css = (built.site / "assets" / "modelvis" / "modelvis.css").read_text(encoding="utf-8")
    assert "[data-md-color-scheme=slate] .mv-auto" in css and "--mv-bg:" in css


def test_plain_mkdocs_theme(tutorial_project: Path, tutorial: Built) -> None:
    # Without pymdownx.highlight, code is left to the theme's highlight.js.
    built = build_site(tutorial_project, "site-plain", theme={"name": "mkdocs"}, markdown_extensions=["admonition"])
    assert built.plugin.stats.worker_starts == 0 and built.warnings == []
    page = built.page()
    code = built.figure("bert-vis").find_previous_sibling()
    assert isinstance(code, Tag) and code.name == "pre"
    assert code.find("code", class_="language-python") is not None, "highlight.js colors it in the browser"
    assert any("hljs.highlightAll" in script.get_text() for script in page.find_all("script"))
    assert page.find("div", class_="highlight") is None
    assert built.figure("raw-print").parent.name == "details"


# -- failures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The failures site (plain theme): a raise, a timeout, a crash, a bad option, another page's name."""
    return build_site(copy_site(SITES / "failures", tmp_path_factory.mktemp("mkdocs") / "failures"))


def _warning(built: Built, start: str) -> str:
    found = [warning for warning in built.warnings if warning.startswith(start)]
    assert len(found) == 1, f"one warning starting {start!r} in {built.warnings}"
    return found[0]


def _error_boxes(built: Built, page: str = "index.html") -> dict[str, Tag]:
    return {box["data-modelvis-failure"]: box for box in built.page(page).find_all("div", class_="modelvis-error")}


def test_failing_snippet_warns_with_page_line_and_traceback(failures: Built) -> None:
    # The page has 5 lines of front matter; the lines are those of the file.
    warning = _warning(failures, "modelvis: index.md:19: the snippet raised ValueError: no model here")
    assert 'File "index.md", line 22, in <module>' in warning
    assert 'File "index.md", line 19, in broken' in warning
    box = _error_boxes(failures)["snippet"]
    assert "admonition" in box["class"]
    assert "index.md:19: the snippet raised ValueError" in box.get_text()
    trace = box.find("pre", class_="modelvis-traceback")
    assert isinstance(trace, Tag) and 'raise ValueError("no model here")' in trace.get_text()
    shown_code = [code.get_text() for code in failures.page().find_all("code", class_="language-python")]
    assert shown_code and not any("def broken" in code for code in shown_code), ":hide-code:"


def test_timeout_warns_and_later_figures_rerun(failures: Built) -> None:
    warning = _warning(failures, "modelvis: index.md:30: running the snippet: it ran for more than 2 s")
    assert 'File "index.md", line 30' in warning, "the line it was stuck on"
    assert "timeout" in _error_boxes(failures)
    assert "0 (Linear)" in figure_text(failures.figure("after-timeout")), "a new worker replayed the page"


def test_crash_warns_and_later_figures_rerun(failures: Built) -> None:
    warning = _warning(failures, "modelvis: index.md:41: running the snippet: the worker process exited")
    assert "the rest of the page runs in a new worker" in warning
    assert "crash" in _error_boxes(failures)
    assert "0 (Linear)" in figure_text(failures.figure("after-crash"))
    assert failures.plugin.stats.worker_starts == 4, "one a page (2), and one after the timeout and the crash"


def test_bad_option_warns_at_its_line(failures: Built) -> None:
    _warning(failures, "modelvis: index.md:51: invalid value for :columns: (expected a number of at least 20, got 5)")
    assert "options" in _error_boxes(failures)


def test_each_page_has_its_own_namespace(failures: Built) -> None:
    warning = _warning(failures, "modelvis: second.md:3: the snippet raised NameError: name 'mlp' is not defined")
    assert 'File "second.md", line 3' in warning
    assert set(_error_boxes(failures, "second/index.html")) == {"snippet"}
    assert len(failures.warnings) == 5


def _tiny_site(root: Path, options: str, page: str) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "mkdocs.yml").write_text(
        f"site_name: tiny\ntheme: mkdocs\nplugins:\n  - modelvis:\n{textwrap.indent(options, '      ')}\n",
        encoding="utf-8",
    )
    (root / "docs" / "index.md").write_text(page, encoding="utf-8")
    return root


FAILING_PAGE = "# Tiny\n\n```{modelvis}\nraise RuntimeError('stop')\n```\n"


def test_strict_build_fails_on_a_failing_snippet(tmp_path: Path) -> None:
    project = _tiny_site(tmp_path, "timeout: 60", FAILING_PAGE)
    with pytest.raises(Abort, match="Aborted with 1 warnings in strict mode"):
        build_site(project, strict=True)


def test_strict_mkdocs_command_fails(tmp_path: Path) -> None:
    project = _tiny_site(tmp_path, "timeout: 60", FAILING_PAGE)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 1
    assert "WARNING -  modelvis: index.md:4: the snippet raised RuntimeError: stop" in done.stderr
    assert "Aborted with 1 warnings in strict mode!" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("options", "page", "message", "ending"),
    [
        (
            "columns: 5",
            "# Nothing to run\n",
            "ERROR   -  Config value 'plugins': Plugin 'modelvis' option 'columns': columns = 5 is invalid: it must be "
            "at least 20",
            r"Aborted with (a|1) configuration errors?!",  # MkDocs 1.6, 1.5
        ),
        (
            "on_error: raise",
            FAILING_PAGE,
            "ERROR   -  modelvis: index.md:4: the snippet raised RuntimeError: stop",
            r"Aborted with a BuildError!",
        ),
    ],
)
def test_the_mkdocs_command_ends_a_user_error_with_our_message_alone(
    tmp_path: Path, options: str, page: str, message: str, ending: str
) -> None:
    project = _tiny_site(tmp_path, options, page)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(project / "mkdocs.yml")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert message in output and re.search(ending, output), output
    # No frame of MkDocs or of ours: only the snippet's own traceback, at its page and line.
    assert "site-packages" not in output and "sphinx_modelvis" not in output, output


def test_on_error_raise_stops_the_build(tmp_path: Path) -> None:
    project = _tiny_site(tmp_path, "on_error: raise", FAILING_PAGE)
    with mkdocs_log() as log, pytest.raises(Abort, match="Aborted with a BuildError"):
        build_site(project)
    errors = [record.getMessage() for record in log.records if record.levelno >= logging.ERROR]
    assert errors[0] == "Error reading page 'index.md':"
    assert errors[1].startswith("modelvis: index.md:4: the snippet raised RuntimeError: stop\n\nTraceback")


def test_failing_pre_code_is_reported_at_the_figure(tmp_path: Path) -> None:
    page = "# Pre code\n\n```{modelvis}\nprint(value)\n```\n"
    project = _tiny_site(tmp_path, "pre_code: 'value = 1 / 0'", page)
    built = build_site(project)
    warning = _warning(built, "modelvis: index.md:4: pre_code failed, so this page's figures cannot run")
    assert 'File "<pre_code>", line 1' in warning and "ZeroDivisionError" in warning
    assert set(_error_boxes(built)) == {"pre-code"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("columns: 5", "Plugin 'modelvis' option 'columns': columns = 5 is invalid: it must be at least 20"),
        ("device: 'not a device'", "Plugin 'modelvis' option 'device': device = 'not a device' is invalid"),
        (
            "execute: sometimes",
            "Plugin 'modelvis' option 'execute': execute = 'sometimes' is invalid: it must be 'auto' or 'always' or "
            "'never'",
        ),
        ("timeout: soon", "Plugin 'modelvis' option 'timeout': timeout = 'soon' is invalid: it must be a number"),
        ("max_depth: -1", "Plugin 'modelvis' option 'max_depth': max_depth = -1 is invalid: it must be at least 0"),
    ],
)
@pytest.mark.compat
def test_plugin_options_are_validated(tmp_path: Path, options: str, message: str) -> None:
    project = _tiny_site(tmp_path, options, "# Nothing to run\n")
    with mkdocs_log() as log, pytest.raises(Abort, match=r"Aborted with (a|1) configuration error"):  # 1.6, 1.5
        load_config(str(project / "mkdocs.yml"))
    errors = [record.getMessage() for record in log.records if record.levelno >= logging.ERROR]
    assert any(message in error for error in errors), errors


def test_plugin_options_mirror_the_config_values() -> None:
    from sphinx_modelvis.config import ModelvisConfig
    from sphinx_modelvis.mkdocs.plugin import ModelvisPlugin

    plugin = ModelvisPlugin()
    assert [name for name, _option in plugin.config_scheme] == [name for name, _d, _h in ModelvisConfig.settings()]
    errors, warnings = plugin.load_config({"theme": "light", "timeout": 5, "max_depth": 2, "show_code": False})
    assert errors == [] and warnings == []
    assert plugin.settings == ModelvisConfig(theme="light", timeout=5, max_depth=2, show_code=False)


LINEAR = "import torch\n{name} = torch.nn.Linear(3, 4)\n"


def test_links_to_figure_names_pass_link_checking(tmp_path: Path) -> None:
    page = (
        "# Links\n\n[the tree](#lin-fig), [the other](other.md#other-fig), [the failed one](#failed-fig)\n\n"
        f"```{{modelvis}}\n:name: lin-fig\n:caption: A Linear\n\n{LINEAR.format(name='lin')}```\n\n"
        "```{modelvis}\n:name: failed-fig\n\nraise RuntimeError('stop')\n```\n"
    )
    project = _tiny_site(tmp_path, "timeout: 60", page)
    (project / "docs" / "other.md").write_text(
        f"# Other\n\n```{{modelvis}}\n:name: other-fig\n\n{LINEAR.format(name='other')}```\n", encoding="utf-8"
    )
    built = build_site(project, validation={"anchors": "warn"})
    assert len(built.warnings) == 1 and built.warnings[0].startswith("modelvis: index.md:16: the snippet raised")
    assert built.figure("failed-fig").find(class_="modelvis-error") is not None


def test_indented_blocks_without_superfences_keep_their_code_block(tmp_path: Path) -> None:
    page = (
        "# Lists\n\n- a figure in a list:\n\n"
        + textwrap.indent(f"```{{modelvis}}\n:name: in-list\n\n{LINEAR.format(name='lin')}```\n", "    ")
        + "\n- the next item\n\n!!! note\n\n"
        + textwrap.indent(f"```{{modelvis}}\n:name: in-note\n\n{LINEAR.format(name='lin2')}```\n", "    ")
    )
    project = _tiny_site(tmp_path, "timeout: 60", page)
    with (project / "mkdocs.yml").open("a", encoding="utf-8") as config:
        config.write("markdown_extensions:\n  - admonition\n")
    built = build_site(project)
    assert built.warnings == []
    main = built.page().find(attrs={"role": "main"})
    assert isinstance(main, Tag)
    item = main.find("li")
    assert isinstance(item, Tag)
    for anchor, container in (("in-list", item), ("in-note", main.find(class_="admonition"))):
        assert isinstance(container, Tag) and container.find(id=anchor) is not None
        code = container.find("code", class_="language-python")
        assert isinstance(code, Tag), f"no Python code block next to {anchor}"
        assert "torch.nn.Linear(3, 4)" in code.get_text() and "```" not in container.get_text()
    assert [li.get_text(" ", strip=True)[:13] for li in main.find_all("li")] == ["a figure in a", "the next item"]


def test_serve_reuses_unchanged_pages_and_reruns_edited_ones(tmp_path: Path) -> None:
    page = (
        f"# Serve\n\n```{{modelvis}}\n{LINEAR.format(name='lin')}```\n\n"
        "```{modelvis}\nraise RuntimeError('stop')\n```\n"
    )
    project = _tiny_site(tmp_path, "timeout: 60", page)
    (project / "docs" / "other.md").write_text("# Other\n\n```{modelvis}\nprint(1)\n```\n", encoding="utf-8")
    first = build_site(project)
    plugin = first.plugin
    plugin.on_startup(command="serve", dirty=False)
    try:
        served = build_site(
            project
        )  # what `mkdocs serve` builds first: runs what failed, takes the rest from the cache
        assert served.plugin is plugin and plugin.stats.executed == 1 and len(served.warnings) == 1
        html = str(served.page().find(attrs={"role": "main"}))
        (project / "docs" / "other.md").write_text("# Other\n\n```{modelvis}\nprint(2)\n```\n", encoding="utf-8")
        again = build_site(project)  # another page edited: this one is reused as it was, its warning repeated
        assert plugin.stats.executed == 1 and plugin.stats.worker_starts == 1  # other.md's new figure only
        assert again.warnings == served.warnings
        assert str(again.page().find(attrs={"role": "main"})) == html
        (project / "docs" / "index.md").write_text(page.replace("'stop'", "'halt'"), encoding="utf-8")
        edited = build_site(project)  # this page edited: run again
        assert plugin.stats.executed == 1 and edited.warnings[0].startswith(
            "modelvis: index.md:9: the snippet raised RuntimeError: halt"
        )
    finally:
        plugin.on_shutdown()
    assert not plugin.serving and plugin.pages == {}


# -- the documented example -----------------------------------------------------------------------


def test_guide_lists_every_plugin_option_with_its_default() -> None:
    import yaml

    from sphinx_modelvis.config import ModelvisConfig
    from sphinx_modelvis.mkdocs.plugin import ModelvisPlugin

    guide = (HERE.parent / "docs" / "guides" / "mkdocs.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in guide.split("```yaml\n")[1:]]
    (block,) = [block for block in blocks if "collapse_summary:" in block]
    (entry,) = yaml.safe_load(block)["plugins"]
    options = entry["modelvis"]
    assert list(options) == [name for name, _default, _help in ModelvisConfig.settings()]
    plugin = ModelvisPlugin()
    assert plugin.load_config(options) == ([], [])
    assert plugin.settings == ModelvisConfig(), "the defaults, as the guide says"


def test_documented_example_site_builds_strict(tmp_path: Path) -> None:
    project = copy_site(EXAMPLE, tmp_path / "example")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    built = Built(project / "site", None, [])
    assert "0-1 (BertLayer)" in figure_text(built.figure("bert-tree"))
    assert "lora_A" in figure_text(built.figure("bert-lora"))
    details = built.page().find("details", class_="modelvis-details")
    assert isinstance(details, Tag) and "Dropout" in figure_text(details)
    assert "modelvis: 3 figure(s) run, 0 from the cache, 0 failed; 1 worker start(s)" in done.stderr
