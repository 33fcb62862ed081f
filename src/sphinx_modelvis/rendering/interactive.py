"""The interactive HTML figure: the figure's lines as text, in the page's light or dark colors, that a script
turns into a tree a reader can use (each module's key on hover, copied on click, folded groups unfolded,
subtrees collapsed, a filter).

The markup is what readers see without JavaScript: every line, in both themes' colors through CSS custom
properties (``--mv-*``), tree guides drawn by CSS so they join whatever the font. Each module is one
``div.i`` holding its lines, with its level (``data-l``), its own name (``data-n``; a folded group's label as
``{0-11}``), the regular expression of a folded group's own names (``data-s``), its members when they are not
plain indices (``data-m``) and whether it has children (``data-k``). From the names along the way, the script
gives each module its key (``data-path``, as ``model.get_submodule()`` takes it) and, where a folded group is on
the way, the regular expression PEFT's ``target_modules`` matches for it (``data-r``). The script and the
stylesheet ship once per page (:func:`figure_assets`); a self-contained page or notebook output carries them
inline (:func:`standalone_html`).
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache

from rich.color import ColorType
from rich.console import Console
from rich.style import Style
from rich.text import Text

from ..folding import label_lists_all
from ..keys import line_anchor
from ..theme import CSS_NAMES, DARK, LIGHT, PROBE_NAMES, THEME_CHOICES, Theme, css_colors
from .assets import minified_css, minified_js, written
from .figure import FONT_STACK, Figure, _console, terminal_theme
from .lines import TreeLine, role_style

__all__ = [
    "CLASS_OF_ROLE",
    "MODES",
    "ansi_style",
    "figure_assets",
    "figure_interactive",
    "follow_page",
    "palette_css",
    "standalone_html",
]

#: How a figure takes its colors: from the page (``auto``), or pinned to a theme.
MODES = THEME_CHOICES
#: The CSS class of each theme role: its color is the custom property of the same name (``--mv-n``).
CLASS_OF_ROLE = {field: name for field, name in CSS_NAMES.items() if field not in ("background", "foreground")}
#: Tree guide cells (four characters each) and the class that draws each with CSS.
GUIDE_CLASS = {"│   ": "P", "├── ": "B", "└── ": "E", "    ": "S"}


def _classes(theme: Theme) -> dict[Style, str]:
    """Each style the figure's lines use for a role, to the role's class (the foreground: no class)."""
    classes: dict[Style, str] = {}
    for role, name in CLASS_OF_ROLE.items():  # roles drawn alike (folded and error) take the first's class
        classes.setdefault(role_style(theme.role(role)), name)
    classes.setdefault(Style(color=theme.foreground), "c")
    return classes


def _span_class(style: Style, classes: dict[Style, str]) -> tuple[str, str]:
    """The class (and inline CSS, for colors no role names) of text drawn in ``style``."""
    known = classes.get(style)
    if known is not None:
        return known, ""
    css: list[str] = []
    color = style.color
    if color is not None and not color.is_default:
        if color.type in (ColorType.STANDARD, ColorType.WINDOWS) or (
            color.type == ColorType.EIGHT_BIT and color.number is not None and color.number < 16
        ):
            css.append(f"color:var(--mv-a{color.number})")  # a palette color: it follows the theme
        else:
            css.append(f"color:{color.get_truecolor().hex}")
    if style.bgcolor is not None and not style.bgcolor.is_default:
        css.append(f"background:{style.bgcolor.get_truecolor(terminal_theme(DARK)).hex}")
    for flag, declaration in (
        (style.bold, "font-weight:bold"),
        (style.italic, "font-style:italic"),
        (style.underline, "text-decoration:underline"),
        (style.dim, "opacity:.6"),
    ):
        if flag:
            css.append(declaration)
    return "", ";".join(css)


def _attributes(name: str, css: str) -> str:
    """The ``class`` and ``style`` attributes of an element, each only when it has a value."""
    return (f' class="{name}"' if name else "") + (f' style="{css}"' if css else "")


def _line_html(
    line: Text, guides: int, classes: dict[Style, str], console: Console, clipped: int = 0, gutter: int = 0
) -> str:
    """One line: its guide cells, then its text, each span of it an HTML span of its role's class.

    Spans nest as the lines are built (a parameter's color, the dtype inside it), and so do the HTML spans:
    a span's text takes what its own style does not say from the spans around it and from the line's style,
    as it does when the line is printed. A compared tree's lines start with their mark (``gutter``
    characters: ``+``, ``-``, ``~`` or blank, then a space) before the guides; a previewed tree's with its
    preview mark (``◆``, ``■``, ``◇`` or blank, then a space) before that.
    """
    plain = line.plain
    base_class, base_css = _style_of(line.style, classes)
    opening = _attributes(f"l {base_class}".rstrip(), base_css) + (f' data-c="{clipped}"' if clipped else "")
    parts = [f"<div{opening}>"]
    for column in range(0, gutter, 2):  # an adapter preview's mark, then a comparison's: a sign and a space each
        sign = plain[column : column + 2]
        style = next((span.style for span in line.spans if span.start == column and span.end <= gutter), None)
        name, css = _style_of(style, classes) if style is not None else ("", "")
        parts.append(f"<span{_attributes(name, css)}>{html.escape(sign[0], quote=False)}</span>{sign[1:]}")
    for start in range(gutter, gutter + guides, 4):
        cell = plain[start : start + 4]
        name = "X" if cell.startswith("⋯") else GUIDE_CLASS.get(cell, "S")
        parts.append(f'<i class="{name}"></i>')
    spans = sorted(line.spans, key=lambda span: (span.start, -span.end))
    mark = len(parts)
    guides += gutter
    cursor = guides
    # The spans still open: where each ends.
    open_ends: list[int] = []

    def text_to(end: int) -> None:
        nonlocal cursor
        if end > cursor:
            parts.append(html.escape(plain[cursor:end], quote=False))
            cursor = end

    for span in spans:
        if span.end <= guides:
            continue
        while open_ends and open_ends[-1] <= span.start:
            text_to(open_ends.pop())
            parts.append("</span>")
        if open_ends and span.end > open_ends[-1]:  # crossing spans (not built here): styles as printed
            del parts[mark:]
            return _segments_html(line, guides, classes, console, parts)
        text_to(max(span.start, guides))
        parts.append(f"<span{_attributes(*_style_of(span.style, classes))}>")
        open_ends.append(span.end)
    while open_ends:
        text_to(open_ends.pop())
        parts.append("</span>")
    text_to(len(plain))
    parts.append("</div>")
    return "".join(parts).replace("<span></span>", "")


def _style_of(style: str | Style, classes: dict[Style, str]) -> tuple[str, str]:
    if not style:
        return "", ""
    parsed = Style.parse(style) if isinstance(style, str) else style
    return _span_class(parsed, classes)


def _segments_html(line: Text, guides: int, classes: dict[Style, str], console: Console, parts: list[str]) -> str:
    """A line whose spans cross: each run of text in the style it is printed in."""
    offset = 0
    for segment in line.render(console):
        text = segment.text
        end = offset + len(text)
        if end <= guides:
            offset = end
            continue
        if offset < guides:
            text = text[guides - offset :]
        offset = end
        name, css = _span_class(segment.style, classes) if segment.style else ("", "")
        escaped = html.escape(text, quote=False)
        if name or css:
            escaped = f"<span{_attributes(name, css)}>{escaped}</span>"
        parts.append(escaped)
    parts.append("</div>")
    return "".join(parts)


def _item_open(row: TreeLine, anchor: str | None = None) -> str:
    # Its own name only: the script makes the key (data-path) and regex (data-r) from its ancestors' names, so
    # that a deep tree's page does not repeat every ancestor's name on each line (it grew with depth squared).
    # The anchor (a named figure's) is the exception: a link must land on the line without the script.
    attributes = [f'data-l="{row.level}"', f'data-n="{html.escape(row.name, quote=True)}"']
    if anchor is not None:
        attributes.insert(0, f'id="{html.escape(anchor, quote=True)}"')
    if row.members:
        # The regex of the group's own names, which a member's regex puts its name in place of.
        attributes.append(f'data-s="{html.escape(row.segment, quote=True)}"')
        if not all(name.isdecimal() for name in row.members) or not label_lists_all(list(row.members)):
            # Indices are read back from the label (0-11, 0,2,…,10); other names could hold its commas, and a
            # long label leaves names out.
            attributes.append(f'data-m="{html.escape(json.dumps(list(row.members)), quote=True)}"')
    if row.kids:
        attributes.append("data-k")
    return f'<div class="i" {" ".join(attributes)}>'


def _last_tree_start(rows: list[TreeLine | None]) -> int:
    """Where the figure's last tree starts among its rows (the tree a named figure's anchors address)."""
    end = max((index for index, row in enumerate(rows) if row is not None), default=-1)
    start = end
    while start > 0 and rows[start - 1] is not None:
        start -= 1
    return start


def figure_interactive(
    figure: Figure,
    *,
    label: str = "model structure",
    mode: str = "auto",
    open_depth: int | None = None,
    anchor: str | None = None,
) -> str:
    """The figure as interactive HTML: ``mode`` ``auto`` follows the page's light/dark mode, ``dark`` and
    ``light`` pin one; ``open_depth`` starts the tree collapsed below that depth (the script does it: without
    it, the whole tree shows). ``anchor`` (a named figure's, see :func:`~sphinx_modelvis.keys.anchor_prefix`)
    gives each module line of its last tree an ``id``, ``ANCHOR:KEY`` with the key as the line shows it."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    classes = _classes(figure.theme)
    console = _console(figure.width + 1)
    rows: list[TreeLine | None] = figure.rows if figure.rows is not None else [None] * len(figure.lines)
    opening = f'<div class="mv mv-{mode}" data-mv aria-label="{html.escape(label, quote=True)}"'
    if open_depth is not None:
        opening += f' data-open="{open_depth}"'
    if anchor is not None:
        opening += f' data-anchor="{html.escape(anchor, quote=True)}"'
    parts = [opening + ">"]
    in_tree = in_item = False
    anchored_from = _last_tree_start(rows) if anchor is not None else len(rows)
    names: list[str] = []  # the shown names above the current line, by level (the root's is empty)
    for index, (line, row) in enumerate(zip(figure.lines, rows, strict=True)):
        if row is None:
            if in_item:
                parts.append("</div>")
            if in_tree:
                parts.append("</div>")
            in_tree = in_item = False
            parts.append(_line_html(line, 0, classes, console))
            continue
        if not in_tree:
            parts.append(f'<div class="T" aria-label="{html.escape(label, quote=True)}">')
            in_tree = True
        if row.head:
            if in_item:
                parts.append("</div>")
            line_id = None
            if index >= anchored_from:
                del names[row.level :]
                names.append(row.name)
                line_id = line_anchor(str(anchor), ".".join(name for name in names if name))
            parts.append(_item_open(row, line_id))
            in_item = True
        parts.append(_line_html(line, row.guides, classes, console, row.clipped, row.gutter))
    if in_item:
        parts.append("</div>")
    if in_tree:
        parts.append("</div>")
    parts.append("</div>")
    body = "".join(parts)
    ansi = ansi_style(body)
    return body.replace(">", ">" + ansi, 1) if ansi else body


# -- the stylesheet and the script ---------------------------------------------------------------------


def _palette(theme: Theme, ansi: bool) -> str:
    """``--mv-*`` custom properties of a theme: background, foreground and each role, or the 16 ANSI colors."""
    return ";".join(f"--mv-{name}:{color}" for name, color in css_colors(theme).items() if _is_ansi(name) == ansi)


def _is_ansi(name: str) -> bool:
    return name[0] == "a" and name[1:].isdecimal()


#: Where printed output names an ANSI palette color, the figure takes it from this custom property.
_ANSI_VAR = re.compile(r"var\(--mv-a\d+\)")


def ansi_style(markup: str) -> str:
    """``<style>`` with both palettes' 16 ANSI colors, for a figure whose ``markup`` uses them (printed output
    in named terminal colors), else nothing: most figures do not, so the page's stylesheet leaves them out."""
    return f"<style>{palette_css(ansi=True)}</style>" if _ANSI_VAR.search(markup) else ""


@lru_cache(maxsize=2)
def palette_css(*, ansi: bool = False) -> str:
    """Both palettes, and which applies where: to figures of class ``mv-auto`` (following the page),
    ``mv-dark`` and ``mv-light`` (pinned).

    Light unless the page is dark: furo marks it on ``body[data-theme]``, pydata-sphinx-theme and
    sphinx-book-theme on ``html[data-theme]``, MkDocs Material on ``[data-md-color-scheme]`` (``slate``),
    JupyterLab on ``body[data-jp-theme-light]``, VS Code's notebooks with a class of ``body``; elsewhere the
    reader's ``prefers-color-scheme`` decides. ``ansi``: the same rules for the 16 ANSI colors instead.
    """
    light, dark = _palette(LIGHT, ansi), _palette(DARK, ansi)
    dark_pages = ",".join(
        f"{page} .mv-auto"
        for page in (
            "html[data-theme=dark]",
            "body[data-theme=dark]",
            "[data-md-color-scheme=slate]",
            "body[data-jp-theme-light=false]",
            "body.vscode-dark",
        )
    )
    not_light = (
        "html:not([data-theme=light]) body:not([data-theme=light]):not([data-md-color-scheme=default])"
        ":not([data-jp-theme-light=true]):not(.vscode-light) .mv-auto"
    )
    return (
        f".mv-auto,.mv-light{{{light}}}\n"
        f"{dark_pages},.mv-dark{{{dark}}}\n"
        f"@media (prefers-color-scheme:dark){{{not_light}{{{dark}}}}}\n"
    )


_PROBE_COLOR = re.compile("|".join(re.escape(color) for color in PROBE_NAMES), re.IGNORECASE)


def follow_page(markup: str) -> str:
    """Markup drawn in the :data:`~sphinx_modelvis.theme.PROBE` theme with its colors made CSS custom
    properties, so that it takes the page's palette (an element of class ``mv-auto`` must hold it)."""
    markup = re.sub(
        r'(fill|stroke)="(#0101[0-9a-f]{2})"',
        lambda match: f'style="{match[1]}:var(--mv-{PROBE_NAMES[match[2].lower()]})"',
        markup,
    )
    return _PROBE_COLOR.sub(lambda match: f"var(--mv-{PROBE_NAMES[match[0].lower()]})", markup)


@lru_cache(maxsize=1)
def figure_assets() -> tuple[str, str]:
    """The stylesheet (layout, both palettes) and the script every interactive figure of a page shares, minified
    as a page is served them (see :mod:`~sphinx_modelvis.rendering.assets`)."""
    css = written(__name__.rpartition(".")[0], "modelvis-figure.css").replace("FONT_STACK", FONT_STACK)
    script = written(__name__.rpartition(".")[0], "modelvis-figure.js")
    return minified_css(css + "\n" + palette_css()), minified_js(script)


def standalone_html(figure: Figure, *, label: str = "model structure", mode: str = "auto") -> str:
    """The interactive figure with its stylesheet and script inline: for a notebook output or a file of its own.

    The script sets itself up once per page, however many figures carry it.
    """
    css, script = figure_assets()
    body = figure_interactive(figure, label=label, mode=mode)
    return f"<style>{css}</style>{body}<script>{script}</script>"
