"""A figure: styled lines and a theme, exported to SVG, HTML, plain text or ANSI through rich."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.terminal_theme import TerminalTheme
from rich.text import Text

from ..theme import Theme
from .boxdraw import Segments, split_box_cells

if TYPE_CHECKING:
    from .lines import TreeLine

__all__ = [
    "SHORTER_HINT",
    "Figure",
    "figure_ansi",
    "figure_html",
    "figure_svg",
    "figure_text",
    "first_lines",
    "terminal_theme",
]

#: Geometry of the SVG, in the units rich's ``export_svg`` uses.
CHAR_HEIGHT = 20
FONT_ASPECT = 0.6
CHAR_WIDTH = CHAR_HEIGHT * FONT_ASPECT
LINE_HEIGHT = CHAR_HEIGHT * 1.22
#: Where a row's cell starts, relative to rich's row origin, so guide lines center on the text.
CELL_TOP = CHAR_HEIGHT * 0.73 - LINE_HEIGHT / 2
PADDING = 10
#: The SVG is drawn with a 20 px font and shown at this scale (14 px, the size of code in most
#: themes), so a small figure does not tower over the page text and a 100-column one fits a column.
DISPLAY_SCALE = 0.7

#: What a figure cut short (a PNG) says can be done about it, unless its host says better.
SHORTER_HINT = "max_depth draws a shorter tree"

FONT_STACK = '"DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", "Noto Sans Mono", "Courier New", monospace'


@dataclass(slots=True)
class Figure:
    """Styled lines ready to export; ``width`` is the longest line in cells.

    ``rows`` says, line by line, what a tree's lines stand for (``None`` for other lines, such as printed
    output and summaries), for renderers that need more than the text; ``None`` when nothing is known.
    """

    lines: list[Text]
    theme: Theme
    rows: list[TreeLine | None] | None = None

    @property
    def width(self) -> int:
        return max((line.cell_len for line in self.lines), default=1) or 1

    def digest(self) -> str:
        """A short hash of the content, used for ids that must differ between figures on one page."""
        sha = hashlib.sha256(self.theme.name.encode())
        for line in self.lines:
            sha.update(line.markup.encode("utf-8", "surrogatepass"))
            sha.update(b"\n")
        return sha.hexdigest()[:10]


def first_lines(figure: Figure, count: int, *, hint: str) -> Figure:
    """The figure's first ``count`` lines, the last of them a note of how many more there were, and ``hint``.

    The figure itself when it has no more than ``count`` lines.
    """
    if len(figure.lines) <= count:
        return figure
    from .lines import role_style

    kept = max(count - 1, 0)
    more = len(figure.lines) - kept
    note = Text(f"⋯ {more:,} more lines not shown: {hint}", style=role_style(figure.theme.note))
    rows = None if figure.rows is None else [*figure.rows[:kept], None]
    return Figure([*figure.lines[:kept], note], figure.theme, rows)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def terminal_theme(theme: Theme) -> TerminalTheme:
    """The theme as a rich ``TerminalTheme``, for palette colors in captured output."""
    return TerminalTheme(
        _rgb(theme.background),
        _rgb(theme.foreground),
        [_rgb(color) for color in theme.ansi[:8]],
        [_rgb(color) for color in theme.ansi[8:]],
    )


def _console(width: int, *, color: bool = True) -> Console:
    # ``_environ={}`` keeps COLUMNS, NO_COLOR and friends from changing what a figure looks like.
    return Console(
        width=width,
        record=True,
        file=io.StringIO(),
        force_terminal=color,
        color_system="truecolor" if color else None,
        legacy_windows=False,
        highlight=False,
        emoji=False,
        markup=False,
        _environ={},
    )


def _record(lines: list[Text], width: int, *, color: bool = True) -> Console:
    console = _console(width, color=color)
    for line in lines:
        console.print(line, no_wrap=True, overflow="crop", crop=True, soft_wrap=False)
    return console


def figure_text(figure: Figure) -> str:
    """Plain text, no color, no trailing spaces."""
    return "".join(line.plain.rstrip() + "\n" for line in figure.lines)


def figure_ansi(figure: Figure) -> str:
    """Text with ANSI truecolor escapes, for a terminal."""
    console = _record(figure.lines, figure.width)
    return console.export_text(styles=True)


_SVG_TEMPLATE = """\
<svg xmlns="http://www.w3.org/2000/svg" class="@CLASS@" width="@DW@" height="@DH@" viewBox="0 0 @W@ @H@" \
role="img" aria-label="@LABEL@">
<style>
.{unique_id}-matrix {{ font-family: @FONT@; font-size: @CH@px; white-space: pre; }}
{styles}
</style>
<rect width="@W@" height="@H@" rx="6" fill="@BG@"/>
<g transform="translate(@PAD@ @PAD@)">
{backgrounds}
@GUIDES@
<g class="{unique_id}-matrix">
{matrix}
</g>
</g>
</svg>
"""

_CLIP = re.compile(r' clip-path="url\(#[^)]*\)"')
#: rich (15) also writes each line's newline as a ``<text>`` of its own; it draws nothing.
_NEWLINE_TEXT = re.compile(r"<text [^>]*>\n</text>")


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def figure_svg(
    figure: Figure, *, unique_id: str | None = None, label: str = "model structure", css_class: str = ""
) -> str:
    """A self-contained SVG through rich's ``export_svg``.

    No font is fetched (a local monospace stack; rich's ``textLength`` keeps columns aligned in any
    of them), box-drawing characters become merged line segments so guides join, and the output
    depends only on the figure (the id is a hash of its content unless given).
    """
    palette = terminal_theme(figure.theme)
    width = figure.width
    segments = Segments(CHAR_WIDTH, LINE_HEIGHT, CELL_TOP)
    blanked: list[Text] = []
    for row, line in enumerate(figure.lines):
        text, cells = split_box_cells(line, palette)
        blanked.append(text)
        for cell in cells:
            segments.add(row, cell)
    guides = []
    for (color, heavy), parts in segments.lines().items():
        path = "".join(
            f"M{_number(x1)} {_number(y1)}" + (f"H{_number(x2)}" if y1 == y2 else f"V{_number(y2)}")
            for x1, y1, x2, y2 in parts
        )
        stroke = 2.6 if heavy else 1.4
        guides.append(f'<path fill="none" stroke="{color}" stroke-width="{stroke}" d="{path}"/>')
    total_width = width * CHAR_WIDTH + 2 * PADDING
    total_height = max(len(figure.lines), 1) * LINE_HEIGHT + 2 * PADDING
    template = _SVG_TEMPLATE
    for key, value in {
        "@DW@": _number(total_width * DISPLAY_SCALE),
        "@DH@": _number(total_height * DISPLAY_SCALE),
        "@W@": _number(total_width),
        "@H@": _number(total_height),
        "@LABEL@": _escape_attribute(label),
        "@FONT@": FONT_STACK,
        "@CH@": str(CHAR_HEIGHT),
        "@BG@": figure.theme.background,
        "@CLASS@": " ".join(filter(None, ["modelvis-svg", css_class])),
        "@PAD@": str(PADDING),
        "@GUIDES@": "\n".join(guides).replace("{", "{{").replace("}", "}}"),
    }.items():
        template = template.replace(key, value)
    console = _record(blanked, width)
    svg = console.export_svg(
        theme=palette,
        code_format=template,
        font_aspect_ratio=FONT_ASPECT,
        unique_id=unique_id or f"mv{figure.digest()}",
        title="",
    )
    # The figure is laid out to its width, so rich's per-line clip paths only cost bytes.
    return _NEWLINE_TEXT.sub("", _CLIP.sub("", svg))


def _escape_attribute(value: str) -> str:
    from html import escape

    return escape(value, quote=True).replace("{", "{{").replace("}", "}}")


_HTML_TEMPLATE = (
    '<pre class="@CLASS@" style="background:@BG@;color:@FG@;font-family:@FONT@;line-height:1.15;'
    'padding:0.8em 1em;border-radius:6px;overflow-x:auto;white-space:pre">'
    '<code style="font-family:inherit">{code}</code></pre>\n'
)


def figure_html(figure: Figure, *, css_class: str = "") -> str:
    """A ``<pre>`` block with inline styles, through rich's ``export_html``: text a reader can select and search."""
    template = (
        _HTML_TEMPLATE.replace("@BG@", figure.theme.background)
        .replace("@CLASS@", " ".join(filter(None, ["modelvis-html", css_class])))
        .replace("@FG@", figure.theme.foreground)
        .replace("@FONT@", FONT_STACK.replace('"', "'"))
    )
    console = _record(figure.lines, figure.width)
    return console.export_html(theme=terminal_theme(figure.theme), code_format=template, inline_styles=True)
