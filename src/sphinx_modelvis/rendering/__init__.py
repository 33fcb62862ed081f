"""Model trees and captured output to SVG, HTML, PNG, plain text or ANSI."""

from __future__ import annotations

from rich.text import Text

from .._gc import gc_paused
from ..capture import Capture, TextBlock, TreeBlock
from ..folding import ParamSummary, fold_siblings, summarize
from ..theme import PROBE, Theme, get_theme
from ..tree import ModelTree
from .costs import flop_summary_lines, memory_summary_lines
from .figure import SHORTER_HINT, Figure, figure_ansi, figure_html, figure_svg, figure_text
from .lines import TreeLine, TreeOptions, forward_lines, summary_lines, tree_rows
from .marks import change_lines, target_lines
from .placement import placement_summary_lines
from .printed import printed_lines

__all__ = [
    "FORMATS",
    "Figure",
    "build_figure",
    "page_figure",
    "paper_theme",
    "render",
    "render_figure",
    "tree_block_lines",
]

FORMATS = ("svg", "html", "text", "ansi", "png")


def tree_block_lines(block: TreeBlock, theme: Theme, *, width: int) -> list[Text]:
    """The lines of one tree: folded, laid out to ``width``, with its summary line under it."""
    with gc_paused():
        return _tree_block_rows(block, theme, width=width)[0]


def _tree_block_rows(block: TreeBlock, theme: Theme, *, width: int) -> tuple[list[Text], list[TreeLine | None]]:
    folded = fold_siblings(block.tree, max_depth=block.max_depth)
    options = TreeOptions(
        rootname=block.rootname,
        expand_params=block.tree.expand_params,
        width=width,
        compared=block.tree.changes is not None,
        targeted=block.tree.targets is not None,
    )
    lines, tree_info = tree_rows(folded, theme, options=options, dominant_dtype=block.tree.dominant_dtype)
    rows: list[TreeLine | None] = list(tree_info)
    if block.summary:
        totals = summarize(block.tree)
        changes = block.tree.changes
        if changes is not None and changes.changes_only:  # the whole model's, not the part shown
            totals = ParamSummary(changes.total, changes.tunable, changes.total - changes.tunable, changes.delta)
        summary = summary_lines(totals, theme, width=width)
        if changes is not None:
            summary.extend(change_lines(changes, theme, width=width))
        if block.tree.targets is not None:
            summary.extend(target_lines(block.tree.targets, theme, total=totals.total, width=width))
        if block.tree.forward:
            summary.extend(forward_lines(block.tree.forward, theme, width=width))
        if block.tree.flops is not None:
            summary.extend(flop_summary_lines(block.tree.flops, theme, width=width))
        if block.tree.memory is not None:
            summary.extend(memory_summary_lines(block.tree.memory, theme, width=width))
        if block.tree.placement is not None:
            summary.extend(placement_summary_lines(block.tree.placement, theme, width=width))
        lines.extend(summary)
        rows.extend(None for _ in summary)
    return lines, rows


def build_figure(source: ModelTree | TreeBlock | Capture, *, theme: str | Theme = "dark", width: int = 100) -> Figure:
    """Lay out a tree, or everything a snippet showed, as a :class:`Figure`."""
    resolved = get_theme(theme)
    if isinstance(source, ModelTree):
        source = TreeBlock(source)
    blocks = [source] if isinstance(source, TreeBlock) else source.blocks
    lines: list[Text] = []
    rows: list[TreeLine | None] = []
    with gc_paused():  # many small objects made, none freed: the collector would find nothing
        for block in blocks:
            if isinstance(block, TextBlock):
                printed = printed_lines(block, resolved, width=width)
                lines.extend(printed)
                rows.extend(None for _ in printed)
            else:
                tree_lines, tree_info = _tree_block_rows(block, resolved, width=width)
                lines.extend(tree_lines)
                rows.extend(tree_info)
    return Figure(lines, resolved, rows)


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


def paper_theme(theme: str) -> str:
    """The theme a figure takes where colors cannot follow a page (a PDF, a PNG): ``auto`` is light there."""
    return "light" if theme == "auto" else theme


def page_figure(
    source: ModelTree | TreeBlock | Capture,
    *,
    format: str = "interactive",
    theme: str = "auto",
    width: int = 100,
    label: str = "model structure",
    open_depth: int | None = None,
    anchor: str | None = None,
) -> str:
    """A figure for an HTML page: ``interactive``, an inline ``svg`` or rich's ``html``.

    With ``theme="auto"`` its colors follow the page's light/dark mode (through the ``--mv-*`` custom
    properties of the page's stylesheet, see :func:`~sphinx_modelvis.rendering.interactive.figure_assets`);
    ``dark`` and ``light`` pin one. ``open_depth`` (interactive only) starts it collapsed below that depth;
    ``anchor`` (interactive only) gives its module lines anchors (``ANCHOR:KEY``).
    """
    if format == "interactive":
        from .interactive import figure_interactive

        figure = build_figure(source, theme="dark" if theme == "auto" else theme, width=width)
        return figure_interactive(figure, label=label, mode=theme, open_depth=open_depth, anchor=anchor)
    if format not in ("svg", "html"):
        raise ValueError(f"unknown page format {format!r}; choose one of: interactive, svg, html")
    if theme != "auto":
        figure = build_figure(source, theme=theme, width=width)
        body = figure_svg(figure, label=label) if format == "svg" else figure_html(figure)
        return body
    from .interactive import ansi_style, follow_page

    figure = build_figure(source, theme=PROBE, width=width)
    body = follow_page(
        figure_svg(figure, label=label, css_class="mv-auto")
        if format == "svg"
        else figure_html(figure, css_class="mv-auto")
    )
    return ansi_style(body) + body


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
