"""The forward view: a tree annotated with what one traced pass did (call order, call counts, output shapes).

The tracing itself needs torch and lives in :mod:`sphinx_modelvis.tracing`; this module turns its plain
records into annotations on the tree, so that the annotated tree is data like any other: it folds, caches
and compares without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .tree import ModelTree, ModuleNode, format_dtype, format_shape

__all__ = ["annotate_forward", "format_output"]

#: Longest output summary shown; a longer one keeps its start and says it goes on.
LIMIT = 72


def format_output(summary: Any, dominant_dtype: str = "float32", *, limit: int = LIMIT) -> str:
    """A summarized output (see :func:`~sphinx_modelvis.tracing.summarize_output`) as figures show it:
    ``[1, 16, 768]``, ``([1, 16, 768], [1, 12, 16, 16])``, ``MaskedLMOutput(logits=[1, 16, 30522])``; a
    tensor of another dtype than the model's usual one says it (``[1, 16] i64``)."""
    text = _format(summary, dominant_dtype)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format(summary: Any, dominant: str) -> str:
    if summary is None:
        return "?"
    kind = summary[0]
    if kind == "t":
        _, shape, dtype = summary
        text = format_shape(shape)
        return text if dtype == dominant else f"{text} {format_dtype(dtype)}"
    if kind == "s":
        items = [_format(item, dominant) for item in summary[1]]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if kind == "o":
        _, name, items = summary
        inner = ", ".join(f"{key}={_format(item, dominant)}" for key, item in items)
        return f"{name}({inner})" if name else "{" + inner + "}"
    return str(summary[1])


def annotate_forward(
    tree: ModelTree, records: Mapping[str, Any], *, inputs: Any = None, output: Any = None
) -> ModelTree:
    """``tree`` with each module's calls and output from ``records`` (by path: ``order``, ``calls``,
    ``output``, as :class:`~sphinx_modelvis.tracing.ForwardRecord` has them), its children in the order of
    their first call (those never called after the others, in registration order), and a line of the
    pass's input and output."""
    dominant = tree.dominant_dtype

    # Each place's annotated node, and when it (or, for a container never called itself, a module in it) first ran.
    done: dict[str, tuple[ModuleNode, int | None]] = {}
    for path, node in tree.root.places(leaves_first=True):
        record = records.get(path)
        ranked = []
        for index, child in enumerate(node.children):
            annotated, first = done[f"{path}.{child.name}" if path else child.name]
            ranked.append((first is None, first or 0, index, annotated, first))
        ranked.sort(key=lambda item: item[:3])
        ran = [item[4] for item in ranked if item[4] is not None]
        if node.shared_with is not None:  # met again through another parent: a pointer to where it is shown
            calls, first = -1, None
        elif record is not None:
            calls, first = record.calls, record.order
        elif ran:  # a container (ModuleList, ModuleDict) is not called, what it holds is
            calls, first = -1, min(ran)
        else:
            calls, first = 0, None
        shown = format_output(record.output, dominant) if record is not None and calls > 0 else ""
        done[path] = (replace(node, children=[item[3] for item in ranked], calls=calls, output=shown), first)

    root = done[""][0]
    forward = ""
    if inputs is not None or output is not None:
        forward = f"{format_output(inputs, dominant)} -> {format_output(output, dominant, limit=2 * LIMIT)}"
    return tree.with_root(root, forward=forward)
