"""The console fast path of ``TreeFigure`` prints exactly what rich prints for the same lines."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Span, Text

from sphinx_modelvis.visualization import _rich_output

pytestmark = pytest.mark.compat  # against each rich of the compatibility matrix

STYLES: list[Style | str] = [
    Style(color="#79b8ff"),
    Style(color="#ffffff", bold=True),
    Style(color="#8b949e", italic=True),
    "#e6edf3",
    "bold red",
    Style(underline=True),
]


def _random_line(rng: random.Random) -> Text:
    text = "".join(rng.choice("ab ├─│(x)") for _ in range(rng.randint(0, 30)))
    spans = []
    for _ in range(rng.randint(0, 6)):
        start = rng.randint(0, len(text))
        spans.append(Span(start, rng.randint(start, len(text)), rng.choice(STYLES)))
    if rng.random() < 0.7:  # mostly nested and in order, as the tree's lines are
        spans.sort(key=lambda span: (span.start, -span.end))
    return Text(text, style=rng.choice(["", *STYLES]), spans=spans)


def _print(lines: list[Text], *, fast: bool, width: int, justify: str | None = None) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor", _environ={})

    class Lines:
        def __rich_console__(self, console: Console, options: object) -> object:
            if fast:
                yield from _rich_output([line.copy() for line in lines], console, options)  # type: ignore[arg-type]
                return
            for line in lines:
                copy = line.copy()
                copy.no_wrap = True
                copy.overflow = "crop"
                yield copy

    console.print(Lines(), justify=justify)  # type: ignore[arg-type]
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("justify", [None, "center"])
def test_same_output_as_rich(seed: int, justify: str | None) -> None:
    rng = random.Random(seed)
    lines = [_random_line(rng) for _ in range(30)]
    width = rng.choice([10, 25, 80])
    assert _print(lines, fast=True, width=width, justify=justify) == _print(
        lines, fast=False, width=width, justify=justify
    )
