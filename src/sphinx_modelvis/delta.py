"""Which modules are delta (adapter) modules: OpenDelta's ``_is_delta`` mark and the layers PEFT inserts."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["NO_ADAPTERS", "AdapterFinder", "is_delta_module", "plain_module_type"]


def is_delta_module(module: Any, plain_types: dict[type, bool]) -> bool:
    """``getattr(module, "_is_delta", False)``: whether OpenDelta marked the module as delta.

    Answered without the attribute lookup when it would end in ``nn.Module.__getattr__`` and find
    nothing there: that raises (slowly) for every missing attribute, and a big model has many modules.
    ``plain_types`` remembers, per class, whether its lookup would end there (no ``__getattr__`` of its
    own, no ``_is_delta`` class attribute).
    """
    kind = type(module)
    plain = plain_types.get(kind)
    if plain is None:
        plain = plain_types[kind] = plain_module_type(kind)
    if plain:
        state = module.__dict__
        if (
            "_is_delta" not in state
            and "_is_delta" not in state["_parameters"]
            and "_is_delta" not in state["_buffers"]
            and "_is_delta" not in state["_modules"]
        ):
            return False
    return bool(getattr(module, "_is_delta", False))


class AdapterFinder:
    """Names of the children that PEFT inserted into a module (LoRA's ``lora_A``/``lora_B``, ...).

    Uses PEFT's own layer classes: every tuner layer lists its adapter sub-modules in
    ``adapter_layer_names``. Only looked at when PEFT is already imported (else no model has its layers).
    """

    __slots__ = ("_peft_model", "_wrappers")

    def __init__(self) -> None:
        self._wrappers: tuple[type, ...] = ()
        self._peft_model: type | None = None
        peft = sys.modules.get("peft")
        if peft is None:
            return
        from peft.tuners.tuners_utils import BaseTunerLayer

        self._wrappers = (BaseTunerLayer,)
        try:
            from peft.utils.other import AuxiliaryTrainingWrapper

            self._wrappers += (AuxiliaryTrainingWrapper,)
        except ImportError:  # older PEFT
            pass
        self._peft_model = peft.PeftModel

    def __call__(self, module: Any) -> frozenset[str]:
        if not self._wrappers:
            return NO_ADAPTERS
        if isinstance(module, self._wrappers):
            return frozenset(getattr(module, "adapter_layer_names", ()))
        if self._peft_model is not None and isinstance(module, self._peft_model):
            if getattr(module, "prompt_encoder", None) is not None:
                return frozenset({"prompt_encoder"})
        return NO_ADAPTERS


#: What :class:`AdapterFinder` answers for a module PEFT did not insert adapters into.
NO_ADAPTERS: frozenset[str] = frozenset()


def plain_module_type(kind: type) -> bool:
    """Whether looking up a missing attribute on modules of this class ends in ``nn.Module.__getattr__``."""
    torch = sys.modules["torch"]
    return kind.__getattr__ is torch.nn.Module.__getattr__ and not hasattr(kind, "_is_delta")  # type: ignore[attr-defined]
