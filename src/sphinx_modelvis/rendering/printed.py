"""Captured terminal output as lines of a figure: ANSI colors kept, long lines folded, and past ``:max-lines:`` the
first and last lines kept around a note of how many were left out."""

from __future__ import annotations

import io

from rich.style import Style
from rich.text import Text

from ..capture import TextBlock
from ..theme import Theme
from .styled import role_style

__all__ = ["ansi_lines", "printed_lines"]


def ansi_lines(ansi: str, theme: Theme, *, width: int) -> list[Text]:
    """Captured terminal output (with ANSI colors) as lines no wider than ``width``."""
    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system="truecolor", legacy_windows=False, _environ={})
    text = Text.from_ansi(ansi.rstrip("\n"), style=Style(color=theme.foreground))
    lines: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        if line.cell_len <= width:
            lines.append(line)
        else:
            lines.extend(line.wrap(console, width, overflow="fold"))
    return lines


def printed_lines(block: TextBlock, theme: Theme, *, width: int) -> list[Text]:
    """A run of printed text as lines no wider than ``width``, at most ``block.max_lines`` of them (0: all).

    Past the cap, the first half and the last half of the lines stay, with a note between them saying how
    many were left out (those the capture dropped, and those that long lines wrapped into past the cap).
    """
    head = ansi_lines(block.ansi, theme, width=width) if block.ansi else []
    tail = ansi_lines(block.tail, theme, width=width) if block.tail else []
    omitted = block.omitted
    cap = block.max_lines
    if cap:
        keep_head, keep_tail = (cap + 1) // 2, cap // 2
        if not (omitted or tail):
            if len(head) > cap:
                tail = head[len(head) - keep_tail :] if keep_tail else []
                omitted = len(head) - keep_head - len(tail)
                head = head[:keep_head]
        else:
            if len(head) > keep_head:
                omitted += len(head) - keep_head
                head = head[:keep_head]
            if len(tail) > keep_tail:
                omitted += len(tail) - keep_tail
                tail = tail[len(tail) - keep_tail :] if keep_tail else []
    if not omitted:
        return head + tail
    noun = "line" if omitted == 1 else "lines"
    note = f"⋯ {omitted:,} {noun} left out: the figure keeps the first and last of {cap:,} (:max-lines:) ⋯"
    return [*head, Text(note, style=role_style(theme.note)), *tail]
