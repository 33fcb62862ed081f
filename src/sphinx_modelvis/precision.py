"""What a model's tensors store: each tensor's dtype, bytes and logical size, read from torch, for the memory view.

With :mod:`~sphinx_modelvis.introspect` and :mod:`~sphinx_modelvis.tracing`, one of the modules that look at torch
objects; :mod:`~sphinx_modelvis.memory` turns what it reads into annotations on the tree.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .introspect import dtype_name
from .memory import TensorRecord, annotate_memory
from .tree import ModelTree

if TYPE_CHECKING:
    import torch

__all__ = ["memory_view", "tensor_places", "tensor_record"]


def tensor_record(tensor: Any, *, buffer: bool = False) -> TensorRecord:
    """How the memory view counts ``tensor``: the bytes it stores (shape × element size for a plain tensor,
    on the meta device too), its logical elements and shape, and whether training updates it."""
    torch = sys.modules["torch"]
    if isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin):  # a lazy module before its first call
        return TensorRecord(dtype_name(getattr(tensor, "dtype", None)), 0, 0, (), False, buffer)
    shape = tuple(int(size) for size in tensor.shape)
    numel = 1
    for size in shape:
        numel *= size
    nbytes = numel * tensor.element_size()
    tunable = not buffer and bool(getattr(tensor, "requires_grad", False))
    return TensorRecord(dtype_name(tensor.dtype), nbytes, numel, shape, tunable, buffer)


def tensor_places(model: torch.nn.Module) -> dict[str, list[TensorRecord]]:
    """Each module place's own parameters and buffers (all of them, shown or not), by dotted path.

    Places are met as :func:`~sphinx_modelvis.introspect.build_tree` meets them (depth first, in registration
    order): a module reachable from two parents holds its tensors where it is met first, and a tensor held twice
    (a tied weight) counts where it is met first, so every tensor counts once.
    """
    places: dict[str, list[TensorRecord]] = {}
    seen_modules: set[int] = set()
    seen_tensors: set[int] = set()
    stack: list[tuple[str, Any]] = [("", model)]
    while stack:
        path, module = stack.pop()
        if id(module) in seen_modules:
            places.setdefault(path, [])
            continue
        seen_modules.add(id(module))
        own: list[TensorRecord] = []
        for is_buffer, tensors in ((False, module._parameters), (True, module._buffers)):
            for tensor in tensors.values():
                if tensor is None or id(tensor) in seen_tensors:
                    continue
                seen_tensors.add(id(tensor))
                own.append(tensor_record(tensor, buffer=is_buffer))
        places[path] = own
        for key, child in reversed(module._modules.items()):
            if child is not None:
                stack.append((f"{path}.{key}" if path else key, child))
    return places


def memory_view(
    model: torch.nn.Module, tree: ModelTree, *, training: bool = False, optimizer: str = "adam"
) -> ModelTree:
    """``tree`` (the tree of ``model``) with the bytes of every subtree, and under ``training`` what training
    with ``optimizer`` adds (see :func:`~sphinx_modelvis.memory.annotate_memory`)."""
    return annotate_memory(tree, tensor_places(model), training=training, optimizer=optimizer)
