"""What a model's tensors are and store: each tensor's dtype, logical shape, quantization scheme and stored bytes.

Quantized tensors are read as what they stand for (a 4-bit ``[4096, 4096]`` weight, not the packed ``uint8``
column bitsandbytes keeps it in) and measured as what they store (the packed data and its scales). With
:mod:`~sphinx_modelvis.introspect` and :mod:`~sphinx_modelvis.tracing`, one of the modules that look at torch
objects; :mod:`~sphinx_modelvis.memory` turns what :func:`tensor_places` reads into annotations on the tree.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from .memory import TensorRecord, annotate_memory
from .tree import ModelTree

if TYPE_CHECKING:
    import torch

__all__ = [
    "TensorForm",
    "dtype_name",
    "memory_view",
    "quantized_form",
    "stored_bytes",
    "tensor_places",
    "tensor_record",
]


def dtype_name(dtype: Any) -> str:
    """A torch dtype as trees keep it: ``float32``, ``int64`` (``unknown`` for none)."""
    return "unknown" if dtype is None else str(dtype).removeprefix("torch.")


class TensorForm(NamedTuple):
    """What a quantized tensor stands for: its logical shape and dtype, its scheme (``nf4, bitsandbytes, blocks of
    64``), and the name its stored bytes are counted under (``nf4``, ``int8``)."""

    shape: tuple[int, ...]
    dtype: str
    scheme: str
    storage: str


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(size) for size in value)


def _bitsandbytes_form(tensor: Any) -> TensorForm | None:
    """bitsandbytes' ``Params4bit`` (packed two a byte in a ``uint8`` column, its logical shape in ``quant_state``)
    and ``Int8Params`` (LLM.int8(): ``int8`` rows and one fp32 scale a row, ``SCB``)."""
    kind = type(tensor).__name__
    if kind == "Params4bit":
        state = getattr(tensor, "quant_state", None)
        quant_type = str(getattr(tensor, "quant_type", "") or getattr(state, "quant_type", "") or "4bit")
        if state is None or not getattr(tensor, "bnb_quantized", False):  # quantized when moved to a device
            return TensorForm(_shape(tensor.shape), dtype_name(tensor.dtype), f"{quant_type}, not quantized yet", "")
        scheme = f"{quant_type}, bitsandbytes, blocks of {state.blocksize}"
        return TensorForm(_shape(state.shape), dtype_name(state.dtype), scheme, quant_type)
    if kind == "Int8Params":
        if getattr(tensor, "has_fp16_weights", False):
            return TensorForm(_shape(tensor.shape), dtype_name(tensor.dtype), "LLM.int8(), 16-bit weights kept", "")
        if getattr(tensor, "SCB", None) is None:
            return TensorForm(_shape(tensor.shape), dtype_name(tensor.dtype), "LLM.int8(), not quantized yet", "")
        return TensorForm(_shape(tensor.shape), "int8", "LLM.int8(), bitsandbytes", "int8")
    return None


def _torchao_form(tensor: Any) -> TensorForm:
    """A torchao tensor subclass: it has its logical shape and dtype already; its scheme is the dtype its data is
    quantized to (``target_dtype``, else its ``qdata`` 's), and the group size when smaller than a row."""
    names, _context = tensor.__tensor_flatten__()
    data = getattr(tensor, names[0], None) if names else None
    target = getattr(tensor, "target_dtype", None) or getattr(data, "dtype", None)
    storage = dtype_name(target)
    shape = _shape(tensor.shape)
    scheme = f"{storage}, torchao"
    block = getattr(tensor, "block_size", None)
    if block and shape and 1 < int(block[-1]) < shape[-1]:
        scheme += f", groups of {int(block[-1])}"
    return TensorForm(shape, dtype_name(tensor.dtype), scheme, storage)


def quantized_form(tensor: Any) -> TensorForm | None:
    """What a quantized tensor stands for (see :class:`TensorForm`); ``None`` for any other tensor."""
    module = type(tensor).__module__
    if module.startswith("bitsandbytes"):
        return _bitsandbytes_form(tensor)
    if module.startswith("torchao") and hasattr(tensor, "__tensor_flatten__"):
        return _torchao_form(tensor)
    return None


def stored_bytes(tensor: Any, seen: set[int] | None = None) -> int:
    """The bytes ``tensor`` stores: shape × element size for a plain tensor (on the meta device too); for a tensor
    subclass that wraps others (torchao's), theirs; for bitsandbytes' parameters, the packed data and its
    statistics (absmax, quantization map, row scales). Tensors in ``seen`` (by id) are not counted again, and
    the ones counted are added to it: a quantization map many weights share counts once."""
    seen = set() if seen is None else seen
    stack = [tensor]
    total = 0
    torch = sys.modules["torch"]
    plain = (torch.Tensor, torch.nn.Parameter)
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        kind = type(item)
        if kind not in plain and hasattr(item, "__tensor_flatten__"):
            names, _context = item.__tensor_flatten__()
            stack.extend(getattr(item, name, None) for name in names)
            continue
        total += item.numel() * item.element_size()
        if kind.__name__ == "Params4bit" and getattr(item, "bnb_quantized", False):
            state = getattr(item, "quant_state", None)
            nested = getattr(state, "state2", None)
            stack.extend([getattr(state, "absmax", None), getattr(state, "code", None), getattr(state, "offset", None)])
            if nested is not None:
                stack.extend([getattr(nested, "absmax", None), getattr(nested, "code", None)])
        elif kind.__name__ == "Int8Params":
            stack.append(getattr(item, "SCB", None))
    return total


def tensor_record(tensor: Any, *, buffer: bool = False, seen: set[int] | None = None) -> TensorRecord:
    """How the memory view counts ``tensor``: the bytes it stores (see :func:`stored_bytes`; ``seen`` as there),
    under its dtype (a quantized tensor's: what it is quantized to, ``nf4``), its logical elements and shape, and
    whether training updates it."""
    torch = sys.modules["torch"]
    if isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin):  # a lazy module before its first call
        return TensorRecord(dtype_name(getattr(tensor, "dtype", None)), 0, 0, (), False, buffer)
    form = quantized_form(tensor)
    shape = form.shape if form is not None else _shape(tensor.shape)
    dtype = form.storage or form.dtype if form is not None else dtype_name(tensor.dtype)
    numel = 1
    for size in shape:
        numel *= size
    tunable = not buffer and bool(getattr(tensor, "requires_grad", False))
    return TensorRecord(dtype, stored_bytes(tensor, seen), numel, shape, tunable, buffer)


def tensor_places(model: torch.nn.Module) -> dict[str, list[TensorRecord]]:
    """Each module place's own parameters and buffers (all of them, shown or not), by dotted path.

    Places are met as :func:`~sphinx_modelvis.introspect.build_tree` meets them (depth first, in registration
    order): a module reachable from two parents holds its tensors where it is met first, and a tensor held twice
    (a tied weight) counts where it is met first, so every tensor counts once.
    """
    places: dict[str, list[TensorRecord]] = {}
    seen_modules: set[int] = set()
    seen_tensors: set[int] = set()
    stored: set[int] = set()  # what the tensors store, inner tensors and shared statistics included
    torch = sys.modules["torch"]
    plain = (torch.nn.Parameter, torch.Tensor)
    # Plain tensors alike in shape, dtype and role share one record: most of a big model's tensors are alike.
    alike: dict[tuple[Any, ...], TensorRecord] = {}
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
                if type(tensor) not in plain:
                    own.append(tensor_record(tensor, buffer=is_buffer, seen=stored))
                    continue
                key = (tensor.shape, tensor.dtype, tensor.requires_grad, is_buffer)
                record = alike.get(key)
                if record is None:
                    record = alike[key] = tensor_record(tensor, buffer=is_buffer)
                own.append(record)
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
