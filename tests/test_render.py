"""Rendering to SVG, HTML, text, ANSI and PNG: self-contained, deterministic, names always literal."""

from __future__ import annotations

import io
import re
import warnings
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from sphinx_modelvis.capture import Capture, TextBlock, TreeBlock
from sphinx_modelvis.rendering import build_figure, render, render_figure
from sphinx_modelvis.rendering.figure import figure_text, first_lines
from sphinx_modelvis.theme import DARK, LIGHT
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo

pytestmark = pytest.mark.compat  # every format, drawn with rich and (PNG) Pillow: in the compatibility matrix

SVG_NS = "{http://www.w3.org/2000/svg}"


def sample_tree() -> ModelTree:
    layers = [
        ModuleNode(
            str(i), "Block", children=[ModuleNode("fc", "Linear", [ParamInfo("weight", (8, 8), requires_grad=False)])]
        )
        for i in range(4)
    ]
    adapter = ModuleNode("lora_A", "Linear", [ParamInfo("weight", (2, 8), delta=True)])
    return ModelTree(
        ModuleNode(
            "root",
            "Net",
            children=[
                ModuleNode("embed", "Embedding", [ParamInfo("weight", (100, 8))]),
                ModuleNode("layers", "ModuleList", children=layers),
                ModuleNode("adapter", "Adapter", children=[adapter]),
            ],
        )
    )


HOSTILE = ["[bold]x", "x[/bold]", "</text><script>alert(1)</script>", "a & b", "{unique_id}"]


def hostile_tree() -> ModelTree:
    children = [ModuleNode(name, "Linear", [ParamInfo("weight", (2, 2))]) for name in HOSTILE]
    # Different shapes, so they do not fold.
    for index, child in enumerate(children):
        child.params[0].shape = (index + 1, 2)
    return ModelTree(ModuleNode("root", "ModuleDict", children=children))


@pytest.mark.parametrize("fmt", ["svg", "html", "text", "ansi"])
def test_names_are_text_never_markup(fmt: str) -> None:
    out = render(hostile_tree(), format=fmt)
    assert isinstance(out, str)
    if fmt in ("svg", "html"):
        from html import unescape

        visible = unescape(re.sub(r"<[^>]+>", "", out)).replace("\xa0", " ")
        assert "<script>" not in out
    else:
        visible = re.sub(r"\x1b\[[0-9;]*m", "", out)
    for name in HOSTILE:
        assert f"{name} (Linear)" in visible, name
    if fmt == "svg":
        ET.fromstring(out)  # still well-formed XML


def test_svg_is_self_contained_and_well_formed() -> None:
    svg = render(sample_tree(), format="svg")
    assert isinstance(svg, str)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in svg and "@font-face" not in svg and "url(" not in svg
    assert 'font-family: "DejaVu Sans Mono"' in svg and "monospace" in svg


def test_svg_is_deterministic_and_ids_differ_between_figures() -> None:
    first = render(sample_tree(), format="svg")
    assert first == render(sample_tree(), format="svg")
    other = render(hostile_tree(), format="svg")
    ids = {re.search(r"\.(mv[0-9a-f]+)-matrix", svg).group(1) for svg in (first, other)}  # type: ignore[union-attr]
    assert len(ids) == 2, "two figures on one page must not share CSS classes"
    assert render(sample_tree(), format="svg", theme="light") != first


def test_svg_guides_are_joined_lines_not_glyphs() -> None:
    svg = render(sample_tree(), format="svg")
    assert isinstance(svg, str)
    texts = "".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
    assert not set(texts) & set("│├└─"), "box-drawing characters are drawn as paths"
    paths = re.findall(r'<path [^>]*d="([^"]+)"', svg)
    assert paths
    # The root's vertical guide runs from under "root" down to the last top-level child in one segment.
    verticals = re.findall(r"M([\d.]+) ([\d.]+)V([\d.]+)", paths[0])
    _, top, bottom = (float(v) for v in verticals[0])
    assert bottom - top > 3 * 24, "one continuous line across rows"


def test_svg_colors_follow_the_roles() -> None:
    svg = render(sample_tree(), format="svg")
    assert isinstance(svg, str)
    css = dict(re.findall(r"\.(mv[0-9a-f]+-r\d+) \{ fill: (#[0-9a-f]{6})", svg))

    def color_of(word: str) -> str:
        match = re.search(rf'class="([^"]+)"[^>]*>{re.escape(word)}</text>', svg)
        assert match, word
        return css[match.group(1)]

    assert color_of("embed") == DARK.module_name.color
    assert color_of("Embedding") == DARK.module_type.color
    assert color_of("weight:[100,&#160;8]") == DARK.tunable.color
    assert color_of("weight:[8,&#160;8]") == DARK.frozen.color
    assert color_of("weight:[2,&#160;8]") == DARK.delta.color
    assert color_of("0-3") == DARK.folded.color


def test_text_has_no_color_and_ansi_has_truecolor() -> None:
    text = render(sample_tree(), format="text")
    ansi = render(sample_tree(), format="ansi")
    assert isinstance(text, str) and isinstance(ansi, str)
    assert "\x1b[" not in text
    assert re.sub(r"\x1b\[[0-9;]*m", "", ansi).rstrip() == text.rstrip()
    r, g, b = (int(DARK.delta.color[i : i + 2], 16) for i in (1, 3, 5))
    assert f"38;2;{r};{g};{b}" in ansi


def test_html_is_a_pre_block_with_inline_styles() -> None:
    html = render(sample_tree(), format="html", theme="light")
    assert isinstance(html, str)
    assert html.startswith('<pre class="modelvis-html"') and f"background:{LIGHT.background}" in html
    assert "0-3" in html and "<style" not in html and "http" not in html


def _pixels(png: bytes) -> tuple[Image.Image, set[tuple[int, int, int]]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image, {color for _, color in image.getcolors(maxcolors=1 << 24) or []}


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=["dark", "light"])
def test_png_draws_every_role_with_the_shipped_font(theme: object) -> None:
    png = render(sample_tree(), format="png", theme=theme)  # type: ignore[arg-type]
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    image, colors = _pixels(png)
    assert image.getpixel((0, 0)) == _rgb(theme.background)  # type: ignore[attr-defined]
    for role in ("module_type", "tunable", "frozen", "delta", "folded", "guide"):
        assert _rgb(getattr(theme, role).color) in colors, role
    assert png == render(sample_tree(), format="png", theme=theme), "deterministic"  # type: ignore[arg-type]


def test_png_guides_join_vertically() -> None:
    png = render(sample_tree(), format="png")
    assert isinstance(png, bytes)
    image, _ = _pixels(png)
    guide = _rgb(DARK.guide.color)
    columns: dict[int, int] = {}
    width, height = image.size
    for x in range(width // 3):
        run = best = 0
        for y in range(height):
            run = run + 1 if image.getpixel((x, y)) == guide else 0
            best = max(best, run)
        columns[x] = best
    assert max(columns.values()) > height // 2, "the root guide is one unbroken line"


def test_capture_mixes_printed_text_and_trees() -> None:
    capture = Capture([TextBlock("\x1b[32mhello\x1b[0m world\n"), TreeBlock(sample_tree(), rootname="model")])
    text = render(capture, format="text")
    assert isinstance(text, str)
    assert text.startswith("hello world\nmodel\n")
    assert Capture.from_json(capture.to_json()).to_json() == capture.to_json()
    figure = build_figure(capture, theme="light")
    assert figure.lines[0].spans, "colors of printed text are kept"


def test_long_printed_lines_wrap_to_the_width() -> None:
    capture = Capture([TextBlock("x" * 250 + "\n")])
    lines = str(render(capture, format="text", width=100)).splitlines()
    assert [len(line) for line in lines] == [100, 100, 50]


def test_unknown_format_and_theme_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown format 'jpeg'"):
        render(sample_tree(), format="jpeg")
    with pytest.raises(ValueError, match="unknown theme 'blue'"):
        render(sample_tree(), theme="blue")


@pytest.mark.parametrize("fmt", ["text", "ansi", "svg"])
def test_control_characters_in_names_are_shown_escaped_on_their_line(fmt: str) -> None:
    names = ["new\nline", "tab\there", "bell\x07"]
    children = [ModuleNode(name, "Linear", [ParamInfo("weight", (2, i + 1))]) for i, name in enumerate(names)]
    out = str(render(ModelTree(ModuleNode("root", "ModuleDict", children=children)), format=fmt))
    for shown in ("new\\nline", "tab\\there", "bell\\x07"):
        if fmt == "svg":  # the name is a text run of its own
            assert f">{shown}</text>" in out
        else:
            assert f"{shown} (Linear)" in re.sub(r"\x1b\[[0-9;]*m", "", out)
    if fmt == "text":
        assert len(out.splitlines()) == 5  # root, three modules, the summary


def test_a_png_too_tall_to_open_keeps_its_first_lines_and_says_so() -> None:
    """A 5,000-deep chain: its PNG would be 180,000 px high, which Pillow refuses to open."""
    root = node = ModuleNode("root", "Chain")
    for depth in range(5000):
        child = ModuleNode("inner", "Link", [ParamInfo("weight", (depth + 1,))])
        node.children.append(child)
        node = child
    figure = build_figure(ModelTree(root))
    png = render_figure(figure, "png", hint="--max-depth N draws a shorter tree")
    assert isinstance(png, bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(png))
        width, height = image.size
        assert width * height <= Image.MAX_IMAGE_PIXELS
        # The last line is the note, in the note color.
        bottom = image.convert("RGB").crop((0, height - 2 * round(28 * 1.3), width, height))
    assert _rgb(DARK.note.color) in {color for _, color in bottom.getcolors(maxcolors=1 << 20) or []}
    rows = (height - 2 * round(28 * 0.6)) // round(28 * 1.3)
    cut = figure_text(first_lines(figure, rows, hint="--max-depth N draws a shorter tree")).splitlines()
    assert len(cut) == rows and cut[-1] == (
        f"⋯ {len(figure.lines) - rows + 1:,} more lines not shown: --max-depth N draws a shorter tree"
    )
    short = render_figure(build_figure(sample_tree()), "png", max_lines=3)
    assert isinstance(short, bytes) and Image.open(io.BytesIO(short)).size[1] < 4 * round(28 * 1.3)
