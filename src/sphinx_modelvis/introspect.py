"""``torch.nn.Module`` to :class:`~sphinx_modelvis.tree.ModelTree`: the only module that looks at torch objects."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._gc import gc_paused
from .errors import NotAModule
from .folding import drop_parameter_free
from .tree import ModelTree, ModuleNode, ParamInfo

if TYPE_CHECKING:
    import torch

__all__ = ["DeltaPredicate", "build_tree", "is_module"]

DeltaPredicate = Callable[[str, "torch.nn.Parameter"], bool]


def is_module(value: object) -> bool:
    """Whether ``value`` is a ``torch.nn.Module``, without importing torch when nothing did yet."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def _dtype_name(tensor: Any) -> str:
    return str(getattr(tensor, "dtype", "unknown")).removeprefix("torch.")


def _shape(tensor: Any) -> tuple[int, ...] | None:
    torch = sys.modules["torch"]
    if isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin):
        return None
    try:
        return tuple(int(size) for size in tensor.shape)
    except Exception:  # odd tensor subclasses (nested, symbolic): show them with an unknown shape
        return None


def _is_delta(module: Any, plain_types: dict[type, bool]) -> bool:
    """``getattr(module, "_is_delta", False)``: whether OpenDelta marked the module as delta.

    Answered without the attribute lookup when it would end in ``nn.Module.__getattr__`` and find
    nothing there: that raises (slowly) for every missing attribute, and a big model has many modules.
    ``plain_types`` remembers, per class, whether its lookup would end there (no ``__getattr__`` of its
    own, no ``_is_delta`` class attribute).
    """
    kind = type(module)
    plain = plain_types.get(kind)
    if plain is None:
        torch = sys.modules["torch"]
        plain = plain_types[kind] = kind.__getattr__ is torch.nn.Module.__getattr__ and not hasattr(kind, "_is_delta")
    if plain:
        state = module.__dict__
        if "_is_delta" not in state and all(
            "_is_delta" not in state.get(store, ()) for store in ("_parameters", "_buffers", "_modules")
        ):
            return False
    return bool(getattr(module, "_is_delta", False))


def _tell_apart_same_named_types(nodes_of_type: dict[type, list[ModuleNode]]) -> None:
    """Give the nodes of classes that share their name with another class (``lora.Linear`` and ``nn.Linear``,
    say) the class's full path, so they never fold together; other nodes stay without it (smaller trees)."""
    by_name: dict[str, list[type]] = {}
    for kind in nodes_of_type:
        by_name.setdefault(kind.__name__, []).append(kind)
    for kinds in by_name.values():
        if len(kinds) > 1:
            for kind in kinds:
                path = f"{kind.__module__}.{kind.__qualname__}"
                for node in nodes_of_type[kind]:
                    node.type_path = path


def _adapter_children(module: Any) -> frozenset[str]:
    """Names of the children that PEFT inserted into ``module`` (LoRA's ``lora_A``/``lora_B``, ...).

    Uses PEFT's own layer classes: every tuner layer lists its adapter sub-modules in
    ``adapter_layer_names``. Only looked at when PEFT is already imported (else no model has its layers).
    """
    peft = sys.modules.get("peft")
    if peft is None:
        return frozenset()
    from peft.tuners.tuners_utils import BaseTunerLayer

    wrappers: tuple[type, ...] = (BaseTunerLayer,)
    try:
        from peft.utils.other import AuxiliaryTrainingWrapper

        wrappers += (AuxiliaryTrainingWrapper,)
    except ImportError:  # older PEFT
        pass
    if isinstance(module, wrappers):
        return frozenset(getattr(module, "adapter_layer_names", ()))
    if isinstance(module, peft.PeftModel) and getattr(module, "prompt_encoder", None) is not None:
        return frozenset({"prompt_encoder"})
    return frozenset()


def build_tree(
    model: torch.nn.Module,
    *,
    keep_non_params: bool = False,
    expand_params: bool = False,
    show_buffers: bool = False,
    delta: DeltaPredicate | None = None,
) -> ModelTree:
    """The tree of ``model``: every module with its own parameters, in registration order.

    A module reachable from two parents is described once, where first reached, and marked as
    shared where met again; a parameter object met a second time (a tied weight) is marked as tied
    and not counted again. Delta parameters are recognized from OpenDelta's ``_is_delta``
    attribute (on the parameter or a module above it), from PEFT tuner layers, and from
    ``delta(name, param)``. Without ``keep_non_params``, modules with no parameter below them are left out.
    Nothing recurses, so very deep models work, and meta-device models are fine (only shapes are read).
    """
    if not is_module(model):
        raise NotAModule(f"expected a torch.nn.Module, got {type(model).__name__}")
    with gc_paused():
        return _build_tree(model, keep_non_params, expand_params, show_buffers, delta)


def _build_tree(
    model: torch.nn.Module, keep_non_params: bool, expand_params: bool, show_buffers: bool, delta: DeltaPredicate | None
) -> ModelTree:
    seen_modules: dict[int, str] = {}
    seen_params: dict[int, str] = {}
    dtype_totals: dict[str, int] = {}
    root = ModuleNode(name="root", type_name=type(model).__name__)
    plain_types: dict[type, bool] = {}
    nodes_of_type: dict[type, list[ModuleNode]] = {}
    # Each entry: module, its node, its dotted path, whether it lies inside a delta (adapter) module.
    stack: list[tuple[Any, ModuleNode, str, bool]] = [(model, root, "", _is_delta(model, plain_types))]
    while stack:
        module, node, path, in_delta = stack.pop()
        first_path = seen_modules.get(id(module))
        if first_path is not None:
            node.shared_with = first_path
            continue
        seen_modules[id(module)] = path
        prefix = f"{path}." if path else ""
        tensors: list[tuple[str, Any, bool]] = [
            (name, param, False) for name, param in module._parameters.items() if param is not None
        ]
        if show_buffers:
            tensors.extend((name, buf, True) for name, buf in module._buffers.items() if buf is not None)
        for name, tensor, is_buffer in tensors:
            qualified = prefix + name
            first = seen_params.get(id(tensor))
            if first is None:
                seen_params[id(tensor)] = qualified
            info = ParamInfo(
                name=name,
                shape=_shape(tensor),
                dtype=_dtype_name(tensor),
                requires_grad=bool(getattr(tensor, "requires_grad", False)) and not is_buffer,
                delta=not is_buffer
                and (
                    in_delta
                    or bool(getattr(tensor, "_is_delta", False))
                    or (delta is not None and bool(delta(qualified, tensor)))
                ),
                buffer=is_buffer,
                tied_to=first,
            )
            if first is None and not is_buffer and info.shape is not None:
                dtype_totals[info.dtype] = dtype_totals.get(info.dtype, 0) + info.numel
            node.params.append(info)
        adapters = _adapter_children(module)
        pending = []
        for name, child in module._modules.items():
            if child is None:
                continue
            kind = type(child)
            child_node = ModuleNode(name=name, type_name=kind.__name__)
            nodes_of_type.setdefault(kind, []).append(child_node)
            node.children.append(child_node)
            child_delta = in_delta or name in adapters or _is_delta(child, plain_types)
            pending.append((child, child_node, prefix + name, child_delta))
        # Depth first, in registration order (as ``named_modules``): a module reachable from two
        # parents is shown where it is met first and marked as shared where it is met again.
        stack.extend(reversed(pending))
    _tell_apart_same_named_types(nodes_of_type)
    dominant = max(dtype_totals.items(), key=lambda item: item[1])[0] if dtype_totals else "float32"
    if not keep_non_params:
        root = drop_parameter_free(root)
    return ModelTree(root=root, dominant_dtype=dominant, expand_params=expand_params)
