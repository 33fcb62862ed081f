"""Model trees and captured output to SVG, HTML, PNG, plain text or ANSI."""

from __future__ import annotations

from rich.text import Text

from .._gc import gc_paused
from ..capture import Capture, TextBlock, TreeBlock
from ..folding import fold_siblings, summarize
from ..theme import Theme, get_theme
from ..tree import ModelTree
from .figure import SHORTER_HINT, Figure, figure_ansi, figure_html, figure_svg, figure_text
from .lines import TreeOptions, printed_lines, summary_lines, tree_lines

__all__ = ["FORMATS", "Figure", "build_figure", "render", "render_figure", "tree_block_lines"]

FORMATS = ("svg", "html", "text", "ansi", "png")


def tree_block_lines(block: TreeBlock, theme: Theme, *, width: int) -> list[Text]:
    """The lines of one tree: folded, laid out to ``width``, with its summary line under it."""
    with gc_paused():
        return _tree_block_lines(block, theme, width=width)


def _tree_block_lines(block: TreeBlock, theme: Theme, *, width: int) -> list[Text]:
    folded = fold_siblings(block.tree, max_depth=block.max_depth)
    options = TreeOptions(rootname=block.rootname, expand_params=block.tree.expand_params, width=width)
    lines = tree_lines(folded, theme, options=options, dominant_dtype=block.tree.dominant_dtype)
    if block.summary:
        lines.extend(summary_lines(summarize(block.tree), theme, width=width))
    return lines


def build_figure(source: ModelTree | TreeBlock | Capture, *, theme: str | Theme = "dark", width: int = 100) -> Figure:
    """Lay out a tree, or everything a snippet showed, as a :class:`Figure`."""
    resolved = get_theme(theme)
    if isinstance(source, ModelTree):
        source = TreeBlock(source)
    blocks = [source] if isinstance(source, TreeBlock) else source.blocks
    lines: list[Text] = []
    with gc_paused():  # many small objects made, none freed: the collector would find nothing
        for block in blocks:
            if isinstance(block, TextBlock):
                lines.extend(printed_lines(block, resolved, width=width))
            else:
                lines.extend(_tree_block_lines(block, resolved, width=width))
    return Figure(lines, resolved)


def render_figure(
    figure: Figure,
    format: str,
    *,
    label: str = "model structure",
    max_lines: int | None = None,
    hint: str = SHORTER_HINT,
) -> str | bytes:
    """Export a figure: ``svg``, ``html``, ``text`` and ``ansi`` give ``str``, ``png`` gives ``bytes``.

    A PNG keeps at most ``max_lines`` lines (and never more than image libraries open), ending with a note
    of how many more there were and ``hint`` (how to draw a shorter figure).
    """
    if format == "svg":
        return figure_svg(figure, label=label)
    if format == "html":
        return figure_html(figure)
    if format in ("text", "txt"):
        return figure_text(figure)
    if format == "ansi":
        return figure_ansi(figure)
    if format == "png":
        from .png import figure_png

        return figure_png(figure, max_lines=max_lines, hint=hint)
    raise ValueError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")


def render(
    tree: ModelTree | TreeBlock | Capture,
    *,
    format: str = "svg",
    theme: str | Theme = "dark",
    width: int = 100,
) -> str | bytes:
    """Render a model tree (or a whole capture) in one format.

    ``format`` is ``"svg"``, ``"html"``, ``"text"``, ``"ansi"`` or ``"png"`` (bytes); ``theme`` is
    ``"dark"`` or ``"light"``; ``width`` is the terminal width lines are wrapped to.
    """
    return render_figure(build_figure(tree, theme=theme, width=width), format)
