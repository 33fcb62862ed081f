"""Styled pieces of lines: a theme's styles, tokens that wrap as a whole, and lines wrapped from them."""

from __future__ import annotations

from functools import lru_cache

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.style import Style, StyleType
from rich.text import Span, Text

from ..theme import Role, Theme

__all__ = ["Styles", "Token", "joined", "role_style", "wrap"]


def role_style(role: Role) -> Style:
    """The rich style of a theme role."""
    return _role_style(role)


@lru_cache(maxsize=256)
def _role_style(role: Role) -> Style:
    # Cached: building a ``Style`` is dear, and a big tree asks for the same few styles on every line.
    return Style(color=role.color, bold=role.bold or None, italic=role.italic or None)


def _visible(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\x1b``), so a name stays on its line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class Token:
    """A piece of a line that wraps as a whole: its text, its base style and its ``(start, end, style)`` spans.

    Lines are assembled from tokens into one :class:`~rich.text.Text` each, with the very spans that
    ``Text.append_text`` would give them, but without building a ``Text`` per token (a big tree has many).
    """

    __slots__ = ("cell_len", "plain", "spans", "style")

    def __init__(self, text: str = "", style: StyleType = "") -> None:
        if text.isascii() and text.isprintable():  # the usual case, and no control code nor wide character
            self.plain = text
            self.cell_len = len(text)
        else:
            self.plain = _visible(text)
            self.cell_len = cell_len(self.plain)
        self.style = style
        self.spans: list[tuple[int, int, StyleType]] = []

    def append(self, text: str, style: StyleType | None = None) -> Token:
        """Add ``text`` in ``style``, as ``Text.append`` does (control codes dropped, no span for no style)."""
        if text.isascii() and text.isprintable():
            size = len(text)
        else:
            text = _visible(text)
            size = cell_len(text)
        if text:
            start = len(self.plain)
            self.plain += text
            if style:
                self.spans.append((start, start + len(text), style))
            self.cell_len += size
        return self


class Styles:
    """The styles of a theme's roles, made once per tree rather than once per line."""

    __slots__ = ("change", "folded", "foreground", "guide", "module_name", "module_type", "note", "state")

    def __init__(self, theme: Theme) -> None:
        self.guide = role_style(theme.guide)
        self.note = role_style(theme.note)
        self.module_name = role_style(theme.module_name)
        self.folded = role_style(theme.folded)
        self.module_type = role_style(theme.module_type)
        self.foreground = theme.foreground
        self.state = {state: role_style(theme.role(state)) for state in ("buffer", "delta", "tunable", "frozen")}
        changed = role_style(theme.changed)
        self.change = {
            "added": role_style(theme.added),
            "removed": role_style(theme.removed),
            "changed": changed,
            "moved": changed,
        }


def joined(*parts: tuple[str, Style]) -> Token:
    """One token of several ``(text, style)`` parts: they wrap together (``109.5M total,`` in two colors)."""
    assembled = Token()
    for text, style in parts:
        assembled.append(text, style)
    return assembled


def wrap(tokens: list[Token], first: str, rest: str, width: int, guide: Style) -> list[Text]:
    """Lay ``tokens`` out after the guide prefix ``first``, continuing under ``rest`` when a line is full."""
    lines: list[Text] = []
    parts = [first if first.isprintable() else strip_control_codes(first)]
    length = offset = len(parts[0])
    spans: list[Span] = []
    start = True
    for token in tokens:
        size = token.cell_len
        if not start and length + 1 + size > width:
            lines.append(Text("".join(parts), style=guide, spans=spans))
            parts = [rest if rest.isprintable() else strip_control_codes(rest)]
            length = offset = len(parts[0])
            spans = []
            start = True
        if not start:
            parts.append(" ")
            length += 1
            offset += 1
        parts.append(token.plain)
        if token.style:
            spans.append(Span(offset, offset + len(token.plain), token.style))
        spans.extend(Span(offset + begin, offset + end, style) for begin, end, style in token.spans)
        length += size
        offset += len(token.plain)
        start = False
    lines.append(Text("".join(parts), style=guide, spans=spans))
    return lines
