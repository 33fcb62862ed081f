"""``Visualization(model).structure_graph()``: the interface tutorial readers already type."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text

from ._gc import gc_paused
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

    The lines are laid out for the width of the console that prints it. In Jupyter it shows as the
    interactive HTML figure (``theme="auto"`` follows the notebook's light or dark theme; a terminal
    draws ``auto`` in the dark colors).
    """

    def __init__(self, block: TreeBlock, *, theme: str | Theme = "auto") -> None:
        self.block = block
        #: How an HTML figure takes its colors: ``auto``, ``dark`` or ``light`` (``None``: a theme of its own).
        self.mode = theme if isinstance(theme, str) else None
        self.theme = get_theme("dark" if theme == "auto" else theme)
        # The notebook cell (IPython's execution count) that already shows this figure.
        self._shown_in: int | None = None

    @property
    def tree(self) -> ModelTree:
        return self.block.tree

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with gc_paused():
            lines = tree_block_lines(self.block, self.theme, width=options.max_width)
            output = _rich_output(lines, console, options)
        yield from output

    def render(self, format: str = "svg", *, width: int = 100) -> str | bytes:
        """Export as ``svg``, ``html``, ``text``, ``ansi`` or ``png`` (bytes)."""
        return render_figure(build_figure(self.block, theme=self.theme, width=width), format)

    def __str__(self) -> str:
        return str(self.render("text"))

    def _repr_html_(self) -> str:
        """The interactive figure, its stylesheet and script inline (a notebook output is a page of its own)."""
        if self.mode is None:  # a theme of its own: its colors as they are, in rich's styled <pre>
            return str(self.render("html"))
        from .rendering.interactive import standalone_html

        return standalone_html(build_figure(self.block, theme=self.theme), mode=self.mode)

    def _ipython_display_(self) -> None:
        """Shown in IPython: once per cell, when ``structure_graph()`` has shown it and is also the cell's value."""
        from IPython.display import display

        count = _ipython_count()
        if count is not None and count == self._shown_in:
            return
        self._shown_in = count
        display({"text/html": self._repr_html_(), "text/plain": str(self)}, raw=True)


def _rich_output(lines: list[Text], console: Console, options: ConsoleOptions) -> list[Segment | Text]:
    """What rich would make of ``lines`` printed one by one, no wrap, cropped: mostly segments, made here.

    A line that fits becomes the segments ``Text.render`` gives it (its style first, then its spans,
    combined in order), made in one pass when its spans nest (each inside the one before or after it
    ends, as the tree's lines are built), with combined styles shared between lines: a big tree has
    many lines and few styles. Anything else (a line too long, an unusual justify) is left to rich.
    """
    width = options.max_width
    plain_justify = options.justify in (None, "default")
    null = Style.null()
    # Every style met and every combination made, numbered (styles by id: the lines keep them alive).
    numbers: dict[int, int] = {}
    styles: list[Style] = [null]
    combined: dict[tuple[int, int], int] = {}
    newline = Segment("\n")
    output: list[Segment | Text] = []
    append = output.append
    for line in lines:
        text = line.plain
        if not (plain_justify and line.cell_len <= width and "\n" not in text and "\t" not in text):
            line.no_wrap = True
            line.overflow = "crop"
            append(line)
            continue
        spans = [Span(0, len(text), line.style), *line.spans] if line.style else line.spans
        if not spans:
            append(Segment(text))
            append(newline)
            continue
        mark = len(output)
        cursor = 0
        # The open spans: where each ends and the number of the style combined up to it.
        stack: list[tuple[int, int]] = [(len(text), 0)]
        nested = True
        for start, end, style in spans:
            while len(stack) > 1 and stack[-1][0] <= start:
                close, current = stack.pop()
                if close > cursor:
                    append(Segment(text[cursor:close], styles[current]))
                    cursor = close
            if start < cursor or end > stack[-1][0]:
                nested = False  # spans out of order or crossing: rich's own sweep handles those
                break
            current = stack[-1][1]
            if start > cursor:
                append(Segment(text[cursor:start], styles[current]))
                cursor = start
            number = numbers.get(id(style))
            if number is None:
                number = numbers[id(style)] = len(styles)
                styles.append(console.get_style(style, default=null))
            key = (current, number)
            joined = combined.get(key)
            if joined is None:
                joined = combined[key] = len(styles)
                styles.append(styles[current] + styles[number])
            stack.append((end, joined))
        if not nested:
            del output[mark:]
            output.extend(Text(text, spans=spans).render(console, end="\n"))
            continue
        while stack:
            close, current = stack.pop()
            if close > cursor:
                append(Segment(text[cursor:close], styles[current]))
                cursor = close
        append(newline)
    return output


def _placement(model: Any, tree: ModelTree, device_map: Any, max_memory: Any, tp_plan: int | None) -> ModelTree:
    """The placement view: a device map (see :func:`~sphinx_modelvis.placement.placement_view`) or a
    tensor-parallel plan (see :func:`~sphinx_modelvis.tensor_plan.tensor_plan_view`), not both."""
    from .placement import OWN_MAP, placement_view
    from .tensor_plan import tensor_plan_view

    if tp_plan is not None:
        if device_map is not None:
            raise ValueError("a tensor-parallel plan and a device map can't be shown together (nor loaded)")
        return tensor_plan_view(model, tree, tp_plan)
    return placement_view(model, tree, OWN_MAP if device_map is True else device_map, max_memory)


def _ipython_shell() -> Any:
    """The running IPython shell, if any (a Jupyter kernel's, or a terminal's)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None


def _ipython_count() -> int | None:
    """The number of the IPython cell running now, or ``None`` outside IPython."""
    count = getattr(_ipython_shell(), "execution_count", None)
    return count if isinstance(count, int) else None


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
        common_structure: bool = False,
        mapping: Any = None,
        only_common: bool = False,
        printTree: bool = True,  # the name tutorials use
        *,
        show_buffers: bool = False,
        max_depth: int | None = None,
        summary: bool = True,
        theme: str | Theme = "auto",
        width: int | None = None,
        compare: TreeFigure | TreeBlock | ModelTree | None = None,
        changes_only: bool = False,
        inputs: Any = None,
        flops: bool = False,
        memory: bool | str = False,
        optimizer: str = "adam",
        targets: Any = None,
        device_map: Any = None,
        max_memory: Any = None,
        tp_plan: int | None = None,
    ) -> TreeFigure:
        """Print the folded tree to the current ``sys.stdout`` through rich (in a Jupyter kernel: show the
        interactive HTML figure), and return it.

        Identical sibling modules fold into one line (``0-11 (BertLayer)``); tunable parameters are
        blue, frozen grey, delta purple. ``keep_non_params`` keeps modules without parameters
        (dropout, activations); ``expand_params`` puts each parameter on its own line;
        ``show_buffers`` adds buffers; ``max_depth`` cuts the tree below that depth; ``summary``
        adds the parameter totals under the tree. The colors survive when stdout is captured in
        memory; a real file that is not a terminal gets plain text. In a ``modelvis`` directive
        the tree becomes part of the figure. ``theme`` is ``auto`` (dark in a terminal; in HTML, the
        page's or notebook's mode), ``dark``, ``light`` or a :class:`~sphinx_modelvis.theme.Theme`.

        The returned figure's tree is data, taken now: changing the model afterwards does not change it.
        ``compare`` takes such an earlier figure (or its tree) and draws the model now marked against it:
        ``+`` added, ``-`` removed, ``~`` changed (tunable and frozen, shape, dtype, class, a weight moved
        into a wrapper), with a line counting the parameters added, newly frozen, newly tunable and
        unchanged; ``changes_only`` leaves out the subtrees in which nothing changed.

        ``inputs`` (a tensor, a tuple of positional arguments or a dict of keyword arguments) gives the
        forward view: the model runs once on them under ``torch.no_grad()`` (on the meta device, for free),
        and the tree shows children in the order they were called, each module's output shape, how many
        times it ran when more than once, and the modules never called, faint. With ``flops=True`` each line
        also carries its subtree's FLOPs in the pass (all calls summed; ``each`` on a folded line), counted by
        PyTorch's flop counter (``torch.utils.flop_counter``; attention included), and the summary the pass's total.

        ``memory=True`` (or ``"weights"``) puts on each line the bytes its subtree's parameters and buffers
        store, by dtype when mixed (``each`` on a folded line; tied and shared tensors once), and the totals by
        dtype under the tree; on the meta device too. ``memory="training"`` adds what training costs: gradients
        of the tunable parameters, the state of ``optimizer`` (``adam``, ``adamw``, ``sgd``, ``sgd-momentum``,
        ``adafactor``, ``8bit-adam``) and fp32 master copies of half-precision tunable weights.
        The arguments bigmodelvis (OpenDelta's ``Visualization``) takes come first, in its order, so its calls
        work unchanged. ``common_structure`` draws the model under the common names of ``mapping`` (a nested
        dict as OpenDelta's ``structure_mapping.py`` writes them, or its ``CommonStructureMap``): the keys OpenDelta's
        unified naming gives (``encoder.block.0.attn.q``); modules the mapping gives no common name keep theirs,
        drawn faint, and ``only_common`` leaves them out (see :mod:`sphinx_modelvis.common_structure`).
        ``targets`` (a PEFT config with ``target_modules``, or a list of module names as OpenDelta's
        ``modified_modules``) previews what the config would touch, before it is applied, found by PEFT's own
        matching: ``◆`` on each module it would adapt, ``■`` on each ``modules_to_save`` copies, ``◇`` on each
        ``exclude_modules`` leaves out, and a line counting them and the parameters the adapter would add, naming
        the entries that matched nothing or only part of a stack. The model is only read.

        ``device_map`` places the model as ``from_pretrained(device_map=...)`` would: ``"auto"``, ``"balanced"``,
        ``"balanced_low_0"`` or ``"sequential"`` runs accelerate's ``infer_auto_device_map`` (with the model's
        ``_no_split_modules``) for the devices of ``max_memory`` (``{0: "40GiB", 1: "40GiB", "cpu": "200GiB"}``;
        the devices need not exist), a dict is taken as given, ``True`` shows the model's own ``hf_device_map``.
        Each line says its device where it differs from its parent's (``@0``), folding splits where the device
        changes, a module split across devices is flagged, and the summary gives the bytes on each device.
        ``tp_plan`` (a number of ranks) shows a transformers model's tensor-parallel plan instead: each planned
        module's style and each sharded parameter's shape on every rank, and the bytes each rank holds.
        """
        if common_structure and keep_non_params:  # as bigmodelvis: a common structure holds parameters only
            raise ValueError(
                "keep_non_params can't be used with common_structure: the common structure only holds parameter nodes"
            )
        if common_structure and mapping is None:
            raise ValueError(
                "common_structure=True needs a mapping (a dict as OpenDelta's structure_mapping.py writes them)"
            )
        tree = build_tree(
            self.plm,
            keep_non_params=keep_non_params,
            expand_params=expand_params,
            show_buffers=show_buffers,
            delta=self.delta,
        )
        if flops and inputs is None:
            raise ValueError("flops=True counts a forward pass: give inputs too")
        if inputs is not None:
            from .tracing import counted_forward_view, forward_view

            tree = (counted_forward_view if flops else forward_view)(self.plm, tree, inputs)
        if memory:
            from .memory import memory_mode
            from .precision import memory_view

            mode = memory_mode(memory)
            tree = memory_view(self.plm, tree, training=mode == "training", optimizer=optimizer)
        if targets is not None:
            from .targets import target_view

            tree = target_view(self.plm, tree, targets)
        if device_map is not None or tp_plan is not None or max_memory is not None:
            tree = _placement(self.plm, tree, device_map, max_memory, tp_plan)
        if common_structure:  # last: the views above read the model's own names
            from .common_structure import common_tree

            tree = common_tree(tree, mapping, only_common=only_common)
        if compare is not None:
            from .compare import compare_trees

            earlier = compare.block.tree if isinstance(compare, TreeFigure) else compare
            earlier = earlier.tree if isinstance(earlier, TreeBlock) else earlier
            tree = compare_trees(earlier, tree, changes_only=changes_only)
        figure = TreeFigure(TreeBlock(tree, rootname=rootname, max_depth=max_depth, summary=summary), theme=theme)
        if printTree:
            stream = sys.stdout
            add_tree = getattr(stream, "modelvis_add_tree", None)
            shell = _ipython_shell()
            if add_tree is not None:  # running inside a modelvis figure: hand over the tree itself
                add_tree(figure.block)
            elif getattr(shell, "kernel", None) is not None:  # a Jupyter kernel: the interactive figure
                figure._ipython_display_()
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
                # In a terminal IPython the figure, the cell's value, is not shown a second time.
                figure._shown_in = _ipython_count()
        return figure
