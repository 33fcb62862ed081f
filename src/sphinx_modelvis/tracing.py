"""The forward tracer: one pass of a ``torch.nn.Module`` with hooks on every module, recorded as plain data.

What each module did (:class:`ForwardRecord`) is handed to :func:`~sphinx_modelvis.forward.annotate_forward`,
which puts it on the tree; this module and :mod:`sphinx_modelvis.introspect` are the ones that touch torch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .forward import annotate_forward
from .introspect import dtype_name
from .tree import ModelTree

if TYPE_CHECKING:
    import torch

__all__ = ["ForwardRecord", "counted_forward_view", "forward_view", "summarize_output", "trace_forward"]


@dataclass(frozen=True, slots=True)
class ForwardRecord:
    """What one module did in a traced forward pass: when it first ran (its rank among all calls), how many
    times it ran, and what its first call returned (summarized, see :func:`summarize_output`)."""

    order: int
    calls: int
    output: Any


def summarize_output(value: Any, depth: int = 0) -> Any:
    """A module's output as plain data: a tensor as ``("t", shape, dtype)``; tuples and lists as ``("s",
    items)``; dicts and transformers' ``ModelOutput`` as ``("o", class name, [(key, item), ...])`` (keys
    whose value is ``None`` left out); anything else as ``("x", type name)``."""
    torch = sys.modules["torch"]
    if isinstance(value, torch.Tensor):
        return ("t", tuple(int(size) for size in value.shape), dtype_name(value.dtype))
    if depth > 3:
        return ("x", type(value).__name__)
    if isinstance(value, dict):
        items = [(str(key), summarize_output(item, depth + 1)) for key, item in value.items() if item is not None]
        return ("o", "" if type(value) is dict else type(value).__name__, items)
    if isinstance(value, (tuple, list)):
        return ("s", [summarize_output(item, depth + 1) for item in value])
    if value is None:
        return ("x", "None")
    return ("x", type(value).__name__)


def trace_forward(model: torch.nn.Module, inputs: Any) -> tuple[dict[str, ForwardRecord], Any, Any]:
    """Run ``model`` once on ``inputs`` under ``torch.no_grad()``, with hooks on every module, and say what
    each module did, by its path (a module reachable from two parents: by the path met first).

    ``inputs`` is a tensor (one positional argument), a tuple (positional arguments) or a dict (keyword
    arguments). The hooks are removed afterwards, also when the pass raises (the exception goes on); the
    model is otherwise untouched. On the meta device the pass costs no memory for activations. Returns
    the records, the summarized input and the summarized output.
    """
    torch = sys.modules["torch"]
    paths: dict[int, str] = {}
    for path, module in model.named_modules():
        paths.setdefault(id(module), path)
    order: dict[int, int] = {}
    calls: dict[int, int] = {}
    outputs: dict[int, Any] = {}

    def before(module: Any, _args: Any) -> None:
        key = id(module)
        order.setdefault(key, len(order))
        calls[key] = calls.get(key, 0) + 1

    def after(module: Any, _args: Any, output: Any) -> None:
        key = id(module)
        if key not in outputs:
            outputs[key] = summarize_output(output)

    handles = []
    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after))
        with torch.no_grad():
            if isinstance(inputs, dict):
                result = model(**inputs)
            elif isinstance(inputs, tuple):
                result = model(*inputs)
            else:
                result = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    records = {
        paths[key]: ForwardRecord(rank, calls[key], outputs.get(key)) for key, rank in order.items() if key in paths
    }
    return records, summarize_output(inputs), summarize_output(result)


def forward_view(model: torch.nn.Module, tree: ModelTree, inputs: Any) -> ModelTree:
    """``tree`` (of ``model``) as its forward view: one traced pass on ``inputs`` (see :func:`trace_forward`),
    annotated on the tree (:func:`~sphinx_modelvis.forward.annotate_forward`). What the pass raises goes on."""
    records, given, output = trace_forward(model, inputs)
    return annotate_forward(tree, records, inputs=given, output=output)


def counted_forward_view(model: torch.nn.Module, tree: ModelTree, inputs: Any) -> ModelTree:
    """:func:`forward_view` with each module's FLOPs, counted in the same pass by PyTorch's flop counter
    (``torch.utils.flop_counter.FlopCounterMode``), whose module tracker gives each module's share (see
    :func:`~sphinx_modelvis.flops.annotate_flops`). What the pass raises goes on."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    from .flop_summary import FlopSummary
    from .flops import annotate_flops

    torch = sys.modules["torch"]
    mapping: dict[Any, Any] = {}
    cpu_attention = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_attention is not None:
        # PyTorch counts its CUDA attention kernels but not the CPU one (the meta device takes the math path,
        # counted as its matmuls): the same formula for the CPU kernel, so attention counts alike everywhere.
        def attention(query: Any, key: Any, value: Any, *_args: Any, out_shape: Any = None, **_kwargs: Any) -> int:
            return int(sdpa_flop_count(query, key, value))

        mapping[cpu_attention] = attention
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        records, given, output = trace_forward(model, inputs)
    tree = annotate_forward(tree, records, inputs=given, output=output)
    counts = counter.get_flop_counts()
    # The tracker names a module by the root's class and its path (``BertModel.encoder.layer.0``); a module
    # reachable from two parents by one of them: each is shown at the path met first.
    first = {id(module): path for path, module in model.named_modules()}
    root_name = type(model).__name__
    by_path: dict[str, int] = {}
    for name, operations in counts.items():
        if name != root_name and not name.startswith(root_name + "."):
            continue  # "Global", or a module outside the model
        try:
            module = model.get_submodule(name[len(root_name) + 1 :])
        except AttributeError:
            continue
        if id(module) in first:
            by_path[first[id(module)]] = sum(operations.values())
    # Each operation's total, attention's kernels (flash, efficient, the CPU's) under one name.
    by_operation: dict[str, int] = {}
    for op, count in counts.get("Global", {}).items():
        name = str(op).removeprefix("aten.")
        name = "attention" if "attention" in name else name
        by_operation[name] = by_operation.get(name, 0) + int(count)
    ranked = sorted(by_operation.items(), key=lambda pair: (-pair[1], pair[0]))
    summary = FlopSummary(total=sum(by_operation.values()), by_operation=tuple(ranked))
    return annotate_flops(tree, by_path, summary)
