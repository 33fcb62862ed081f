"""``Visualization(model).structure_graph()``: the interface tutorial readers already type."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from .capture import TreeBlock
from .introspect import DeltaPredicate, build_tree
from .rendering import build_figure, render_figure, tree_block_lines
from .theme import Theme, get_theme
from .tree import ModelTree

if TYPE_CHECKING:
    import torch

__all__ = ["TreeFigure", "Visualization"]


class TreeFigure:
    """A folded model tree as a rich renderable: print it with any rich console, or export it.

    The lines are laid out for the width of the console that prints it.
    """

    def __init__(self, block: TreeBlock, *, theme: str | Theme = "dark") -> None:
        self.block = block
        self.theme = get_theme(theme)

    @property
    def tree(self) -> ModelTree:
        return self.block.tree

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines: Iterator[Text] = iter(tree_block_lines(self.block, self.theme, width=options.max_width))
        for line in lines:
            line.no_wrap = True
            line.overflow = "crop"
            yield line

    def render(self, format: str = "svg", *, width: int = 100) -> str | bytes:
        """Export as ``svg``, ``html``, ``text``, ``ansi`` or ``png`` (bytes)."""
        return render_figure(build_figure(self.block, theme=self.theme, width=width), format)

    def __str__(self) -> str:
        return str(self.render("text"))


def _captures_in_memory(stream: Any) -> bool:
    """Whether ``stream`` is an in-memory capture (``io.StringIO``, a notebook, a test's capsys)."""
    try:
        stream.fileno()
    except Exception:
        return True
    return False


class Visualization:
    """The folded tree of a PyTorch model.

    >>> Visualization(model).structure_graph()                      # doctest: +SKIP
    >>> Visualization(model).structure_graph(keep_non_params=True)  # doctest: +SKIP
    """

    def __init__(self, plm: torch.nn.Module, *, delta: DeltaPredicate | None = None) -> None:
        self.plm = plm
        self.delta = delta

    def structure_graph(
        self,
        rootname: str = "root",
        expand_params: bool = False,
        keep_non_params: bool = False,
        printTree: bool = True,  # the name tutorials use
        *,
        show_buffers: bool = False,
        max_depth: int | None = None,
        summary: bool = True,
        theme: str | Theme = "dark",
        width: int | None = None,
    ) -> TreeFigure:
        """Print the folded tree to the current ``sys.stdout`` through rich, and return it.

        Identical sibling modules fold into one line (``0-11 (BertLayer)``); tunable parameters are
        blue, frozen grey, delta purple. ``keep_non_params`` keeps modules without parameters
        (dropout, activations); ``expand_params`` puts each parameter on its own line;
        ``show_buffers`` adds buffers; ``max_depth`` cuts the tree below that depth; ``summary``
        adds the parameter totals under the tree. The colors survive when stdout is captured in
        memory; a real file that is not a terminal gets plain text. In a ``modelvis`` directive
        the tree becomes part of the figure.
        """
        tree = build_tree(
            self.plm,
            keep_non_params=keep_non_params,
            expand_params=expand_params,
            show_buffers=show_buffers,
            delta=self.delta,
        )
        figure = TreeFigure(TreeBlock(tree, rootname=rootname, max_depth=max_depth, summary=summary), theme=theme)
        if printTree:
            stream = sys.stdout
            add_tree = getattr(stream, "modelvis_add_tree", None)
            if add_tree is not None:  # running inside a modelvis figure: hand over the tree itself
                add_tree(figure.block)
            else:
                in_memory = _captures_in_memory(stream)
                console = Console(
                    file=stream,
                    width=width,
                    force_terminal=True if in_memory else None,
                    color_system="truecolor" if in_memory else "auto",
                    highlight=False,
                    markup=False,
                    emoji=False,
                )
                console.print(figure)
        return figure
