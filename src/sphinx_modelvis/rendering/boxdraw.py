"""Box-drawing characters as line geometry, so tree guides join whatever font a reader has."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.terminal_theme import TerminalTheme
from rich.text import Text

__all__ = ["BoxCell", "Segments", "split_box_cells"]

UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8

_LIGHT = {
    "─": LEFT | RIGHT, "│": UP | DOWN, "┌": DOWN | RIGHT, "┐": DOWN | LEFT, "└": UP | RIGHT, "┘": UP | LEFT,
    "├": UP | DOWN | RIGHT, "┤": UP | DOWN | LEFT, "┬": DOWN | LEFT | RIGHT, "┴": UP | LEFT | RIGHT,
    "┼": UP | DOWN | LEFT | RIGHT, "╭": DOWN | RIGHT, "╮": DOWN | LEFT, "╯": UP | LEFT, "╰": UP | RIGHT,
    "╴": LEFT, "╵": UP, "╶": RIGHT, "╷": DOWN,
}  # fmt: skip
_HEAVY = {
    "━": LEFT | RIGHT, "┃": UP | DOWN, "┏": DOWN | RIGHT, "┓": DOWN | LEFT, "┗": UP | RIGHT, "┛": UP | LEFT,
    "┣": UP | DOWN | RIGHT, "┫": UP | DOWN | LEFT, "┳": DOWN | LEFT | RIGHT, "┻": UP | LEFT | RIGHT,
    "╋": UP | DOWN | LEFT | RIGHT, "═": LEFT | RIGHT, "║": UP | DOWN, "╔": DOWN | RIGHT, "╗": DOWN | LEFT,
    "╚": UP | RIGHT, "╝": UP | LEFT, "╠": UP | DOWN | RIGHT, "╣": UP | DOWN | LEFT, "╦": DOWN | LEFT | RIGHT,
    "╩": UP | LEFT | RIGHT, "╬": UP | DOWN | LEFT | RIGHT,
}  # fmt: skip
ARMS = {
    **{char: (arms, False) for char, arms in _LIGHT.items()},
    **{char: (arms, True) for char, arms in _HEAVY.items()},
}


@dataclass(frozen=True, slots=True)
class BoxCell:
    """A box-drawing character taken out of a line: its column, arms, weight and color."""

    column: int
    arms: int
    heavy: bool
    color: str


def _color_at(line: Text, offset: int, palette: TerminalTheme) -> str:
    color = palette.foreground_color.hex
    candidates = [line.style] + [span.style for span in line.spans if span.start <= offset < span.end]
    for style in candidates:
        parsed = Style.parse(style) if isinstance(style, str) else style
        if parsed and parsed.color is not None and not parsed.color.is_default:
            color = parsed.color.get_truecolor(palette).hex
    return color


def split_box_cells(line: Text, palette: TerminalTheme) -> tuple[Text, list[BoxCell]]:
    """The line with its box-drawing characters blanked, and those characters as :class:`BoxCell` s."""
    plain = line.plain
    if not any(char in ARMS for char in plain):
        return line, []
    from rich.cells import cell_len

    cells: list[BoxCell] = []
    chars = list(plain)
    column = 0
    for offset, char in enumerate(plain):
        found = ARMS.get(char)
        if found is not None:
            cells.append(BoxCell(column, found[0], found[1], _color_at(line, offset, palette)))
            chars[offset] = " "
            column += 1
        else:
            column += 1 if char < "\u1100" else cell_len(char)
    return Text("".join(chars), style=line.style, spans=list(line.spans)), cells


class Segments:
    """Line segments grouped by color and weight, merged where they touch, for one figure."""

    def __init__(self, cell_width: float, line_height: float, top: float) -> None:
        self.cell_width = cell_width
        self.line_height = line_height
        self.top = top
        self._horizontal: dict[tuple[str, bool], dict[float, list[tuple[float, float]]]] = {}
        self._vertical: dict[tuple[str, bool], dict[float, list[tuple[float, float]]]] = {}

    def add(self, row: int, cell: BoxCell) -> None:
        x0 = cell.column * self.cell_width
        x1 = x0 + self.cell_width
        cx = x0 + self.cell_width / 2
        y0 = self.top + row * self.line_height
        y1 = y0 + self.line_height
        cy = y0 + self.line_height / 2
        key = (cell.color, cell.heavy)
        if cell.arms & (LEFT | RIGHT):
            runs = self._horizontal.setdefault(key, {}).setdefault(cy, [])
            runs.append((x0 if cell.arms & LEFT else cx, x1 if cell.arms & RIGHT else cx))
        if cell.arms & (UP | DOWN):
            runs = self._vertical.setdefault(key, {}).setdefault(cx, [])
            runs.append((y0 if cell.arms & UP else cy, y1 if cell.arms & DOWN else cy))

    def lines(self) -> dict[tuple[str, bool], list[tuple[float, float, float, float]]]:
        """Merged segments ``(x1, y1, x2, y2)`` per ``(color, heavy)``, in a stable order."""
        result: dict[tuple[str, bool], list[tuple[float, float, float, float]]] = {}
        for key in sorted(set(self._horizontal) | set(self._vertical)):
            out = result.setdefault(key, [])
            for y, runs in sorted(self._horizontal.get(key, {}).items()):
                out.extend((start, y, end, y) for start, end in _merge(runs))
            for x, runs in sorted(self._vertical.get(key, {}).items()):
                out.extend((x, start, x, end) for start, end in _merge(runs))
        return result


def _merge(runs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(runs):
        if merged and start <= merged[-1][1] + 1e-6:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
