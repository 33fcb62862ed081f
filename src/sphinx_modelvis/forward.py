"""The forward view: a tree annotated with what one traced pass did (call order, call counts, output shapes).

The tracing itself needs torch and lives in :mod:`sphinx_modelvis.introspect`; this module turns its plain
records into annotations on the tree, so that the annotated tree is data like any other: it folds, caches
and compares without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .tree import ModelTree, ModuleNode

__all__ = ["annotate_forward", "format_output"]

#: Short names of dtypes, as parameters show them, for outputs whose dtype is not the model's usual one.
_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "int64": "i64", "bool": "bool"}
#: Longest output summary shown; a longer one keeps its start and says it goes on.
LIMIT = 72


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def format_output(summary: Any, dominant_dtype: str = "float32", *, limit: int = LIMIT) -> str:
    """A summarized output (see :func:`~sphinx_modelvis.introspect.summarize_output`) as figures show it:
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
        text = _shape(shape)
        return text if dtype == dominant else f"{text} {_DTYPES.get(dtype, dtype)}"
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
    ``output``, as :class:`~sphinx_modelvis.introspect.ForwardRecord` has them), its children in the order of
    their first call (those never called after the others, in registration order), and a line of the
    pass's input and output."""
    dominant = tree.dominant_dtype

    # Every place by its path, parents first (without recursion: a model may be thousands deep).
    places: list[tuple[str, ModuleNode]] = []
    stack: list[tuple[str, ModuleNode]] = [("", tree.root)]
    while stack:
        path, node = stack.pop()
        places.append((path, node))
        stack.extend((f"{path}.{child.name}" if path else child.name, child) for child in reversed(node.children))
    # Each place's annotated node, and when it (or, for a container never called itself, a module in it) first ran.
    done: dict[str, tuple[ModuleNode, int | None]] = {}
    for path, node in reversed(places):  # children before their parents
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
        done[path] = (
            ModuleNode(
                node.name,
                node.type_name,
                list(node.params),
                [item[3] for item in ranked],
                node.shared_with,
                node.type_path,
                node.type_label,
                node.change,
                node.was_type,
                calls=calls,
                output=format_output(record.output, dominant) if record is not None and calls > 0 else "",
            ),
            first,
        )

    root = done[""][0]
    forward = ""
    if inputs is not None or output is not None:
        forward = f"{format_output(inputs, dominant)} -> {format_output(output, dominant, limit=2 * LIMIT)}"
    return ModelTree(
        root, dominant_dtype=dominant, expand_params=tree.expand_params, changes=tree.changes, forward=forward
    )
