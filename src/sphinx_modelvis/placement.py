"""The placement view: each module marked with the device a device map puts it on, or with its tensor-parallel shards.

The maps are made by the engines that place real models: accelerate's ``infer_auto_device_map`` (with
``get_balanced_memory`` for the balanced modes, as transformers' ``from_pretrained(device_map=...)`` calls them,
with the model's ``_no_split_modules``), on the model as it is: on the meta device nothing is allocated. Bytes per
device are the memory view's counting (:func:`~sphinx_modelvis.precision.tensor_record`: what each tensor stores,
tied and shared tensors once). The tensor-parallel shards are in :mod:`sphinx_modelvis.tensor_plan`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from .placement_summary import PlacementSummary, sort_devices
from .tree import ModelTree, ModuleNode

__all__ = [
    "DEVICE_MAP_MODES",
    "annotate_devices",
    "device_map_option",
    "infer_device_map",
    "named_tensors",
    "placement_view",
    "tp_ranks",
]

#: The modes ``:device-map:`` names (as ``from_pretrained(device_map=...)`` takes them); ``hf_device_map`` reads
#: the model's own map (what ``:device-map:`` with no value means); any other value is a dict expression.
DEVICE_MAP_MODES = ("auto", "balanced", "balanced_low_0", "sequential")
OWN_MAP = "hf_device_map"


def device_map_option(value: str | None) -> str:
    """A ``:device-map:`` value: a mode of :data:`DEVICE_MAP_MODES`, ``hf_device_map`` (no value), or the text of a
    dict expression (evaluated after the snippet)."""
    text = (value or "").strip()
    if not text or text.lower() == OWN_MAP:
        return OWN_MAP
    if text.lower() in DEVICE_MAP_MODES:
        return text.lower()
    if text.isidentifier() or text.startswith(("{", "dict(")):
        return text
    raise ValueError(f"expected no value, {', '.join(DEVICE_MAP_MODES)}, or a dict expression, got {value!r}")


def tp_ranks(value: str | None) -> int:
    """A ``:tp-plan:`` value: the number of ranks the tensor-parallel plan is shown over (at least 1)."""
    text = (value or "").strip()
    if not text.isdecimal() or int(text) < 1:
        raise ValueError(f"expected a number of ranks of at least 1, got {value!r}")
    return int(text)


def _device_name(device: Any) -> str:
    """A device as trees keep it: an accelerator index as its digits (``0``), else its name (``cpu``, ``disk``)."""
    if isinstance(device, bool):
        raise ValueError(f"{device!r} is not a device")
    return str(device)


class _QuietMissingDevices(logging.Filter):
    """Drops accelerate's "Device 0 is not available" warnings: the map is planned for devices named in
    ``max_memory``, which the machine building the docs need not have."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is not available, available devices are" not in record.getMessage()


@contextmanager
def _planning_quietly() -> Iterator[None]:
    logger = logging.getLogger("accelerate.utils.modeling")
    quiet = _QuietMissingDevices()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def no_split_classes(model: Any) -> list[str]:
    """The classes the model says must not be split across devices, as transformers reads them: its
    ``_get_no_split_modules`` (transformers 4) or its ``_no_split_modules`` (gathered from its submodels)."""
    getter = getattr(model, "_get_no_split_modules", None)
    names = getter("auto") if callable(getter) else getattr(model, "_no_split_modules", None)
    return sorted(names or ())


def infer_device_map(
    model: Any, mode: str, max_memory: Mapping[Any, Any]
) -> tuple[dict[str, Any], dict[Any, int], list[str]]:
    """accelerate's device map for ``model`` in ``mode`` (one of :data:`DEVICE_MAP_MODES`), for the devices of
    ``max_memory``, as ``from_pretrained(device_map=mode, max_memory=max_memory)`` makes it: the limits
    balanced by ``get_balanced_memory`` (all modes but ``sequential``; ``balanced_low_0`` keeps device 0 light),
    then ``infer_auto_device_map`` with the model's no-split classes. Returns the map, the limits it was made
    for, and the no-split classes."""
    from accelerate.utils import get_balanced_memory, get_max_memory, infer_auto_device_map

    no_split = no_split_classes(model)
    with _planning_quietly():
        if mode == "sequential":
            limits = get_max_memory(dict(max_memory))
        else:
            limits = get_balanced_memory(
                model, max_memory=dict(max_memory), no_split_module_classes=no_split, low_zero=mode == "balanced_low_0"
            )
        device_map = infer_auto_device_map(model, max_memory=dict(limits), no_split_module_classes=no_split)
    return dict(device_map), {key: int(value) for key, value in limits.items()}, no_split


def named_tensors(model: Any) -> Iterator[tuple[str, str, Any, bool]]:
    """Each module place's path, and each tensor it holds first: its name, the tensor and whether it is a buffer.

    Places are met as :func:`~sphinx_modelvis.precision.tensor_places` meets them (depth first, registration
    order), each tensor once where met first; a path with no tensor of its own is yielded with name ``""``.
    """
    seen_modules: set[int] = set()
    seen_tensors: set[int] = set()
    stack: list[tuple[str, Any]] = [("", model)]
    while stack:
        path, module = stack.pop()
        if id(module) in seen_modules:
            continue
        seen_modules.add(id(module))
        yield path, "", None, False
        for is_buffer, tensors in ((False, module._parameters), (True, module._buffers)):
            for name, tensor in tensors.items():
                if tensor is None or id(tensor) in seen_tensors:
                    continue
                seen_tensors.add(id(tensor))
                yield path, name, tensor, is_buffer
        for key, child in reversed(module._modules.items()):
            if child is not None:
                stack.append((f"{path}.{key}" if path else key, child))


def _lookup(name: str, device_map: Mapping[str, str]) -> str | None:
    """The device of the tensor or module ``name`` under ``device_map``: its own entry, or its nearest ancestor's."""
    while True:
        if name in device_map:
            return device_map[name]
        if not name:
            return None
        name = name.rpartition(".")[0]


def annotate_devices(
    tree: ModelTree,
    tensors: list[tuple[str, str, int]],
    device_map: Mapping[str, Any],
    *,
    summary: PlacementSummary,
) -> ModelTree:
    """``tree`` with each module's devices (:attr:`~sphinx_modelvis.tree.ModuleNode.device`) under ``device_map``
    (module or tensor names to devices, as accelerate writes them; ``""`` the whole model), the modules split
    across devices flagged, and ``summary`` with the bytes each device holds.

    ``tensors`` lists ``(module path, tensor name, bytes)`` for each tensor once, and ``(path, "", 0)`` for every
    module place, as :func:`named_tensors` meets them. Raises ``ValueError`` naming a tensor the map places nowhere.
    """
    names = {key: _device_name(value) for key, value in device_map.items()}
    own: dict[str, set[str]] = {}
    below: dict[str, set[str]] = {}
    by_device: dict[str, int] = {}
    for path, name, size in tensors:
        own.setdefault(path, set())
        if not name:
            continue
        full = f"{path}.{name}" if path else name
        device = _lookup(full, names)
        if device is None:
            raise ValueError(f"the device map places `{full}` on no device")
        own[path].add(device)
        by_device[device] = by_device.get(device, 0) + size
    # Children before their parents: a place's path is longer than its parent's, and the parent is its prefix.
    for path in sorted(own, key=lambda item: -item.count(".") if item else 1):
        devices = below.setdefault(path, set())
        devices.update(own[path])
        if path:
            below.setdefault(path.rpartition(".")[0], set()).update(devices)
    no_split = set(summary.no_split)
    copies: dict[str, ModuleNode] = {}
    made: dict[tuple[Any, ...], ModuleNode] = {}
    split = 0
    for path, node in tree.root.places(leaves_first=True):
        children = [copies[f"{path}.{child.name}" if path else child.name] for child in node.children]
        devices = below.get(path) or set()
        if not devices and (fallback := _lookup(path, names)) is not None:  # no tensor: where its map entry puts it
            devices = {fallback}
        flag = ""
        if len(own.get(path, ())) > 1:
            flag = "parameters"
        elif len(devices) > 1 and node.type_name in no_split:
            flag = "no-split"
        split += bool(flag)
        device = ",".join(sort_devices(devices))
        key = (id(node), device, flag, tuple(map(id, children)))
        copy = made.get(key)
        if copy is None:
            copy = made[key] = replace(node, children=children, device=device, split=flag)
        copies[path] = copy
    pairs = tuple(
        (device, by_device.get(device, 0)) for device in sort_devices(set(by_device) | set(dict(summary.limits)))
    )
    placed = replace(summary, by_device=pairs, split=split)
    return tree.with_root(copies[""], placement=placed)


def _memory_pairs(max_memory: Mapping[Any, Any]) -> tuple[tuple[str, int], ...]:
    from accelerate.utils import convert_file_size_to_int

    values = {_device_name(key): convert_file_size_to_int(value) for key, value in max_memory.items()}
    return tuple((device, int(values[device])) for device in sort_devices(values))


def placement_view(model: Any, tree: ModelTree, device_map: Any, max_memory: Mapping[Any, Any] | None) -> ModelTree:
    """``tree`` (the tree of ``model``) placed by ``device_map``: a mode of :data:`DEVICE_MAP_MODES` (the map made by
    accelerate for the devices of ``max_memory``), ``hf_device_map`` (the model's own) or a dict (module or
    tensor names to devices). Raises ``ValueError`` with what to do when the inputs do not make a map."""
    from .precision import tensor_record

    given = _memory_pairs(max_memory) if max_memory else ()
    no_split = no_split_classes(model)
    limits: tuple[tuple[str, int], ...] = given
    if isinstance(device_map, str) and device_map in DEVICE_MAP_MODES:
        if not max_memory:
            raise ValueError(
                f"device_map={device_map!r} needs max_memory (the devices and their memory, such as "
                '{0: "40GiB", 1: "40GiB", "cpu": "200GiB"}): the map is planned for the devices named, not this machine'
            )
        source = device_map
        device_map, balanced, no_split = infer_device_map(model, source, max_memory)
        limits = tuple((_device_name(key), value) for key, value in balanced.items())
    elif device_map == OWN_MAP or device_map is True:
        own = getattr(model, "hf_device_map", None)
        if not isinstance(own, Mapping):
            raise ValueError(
                "the model has no hf_device_map (it was not loaded with from_pretrained(device_map=...)); "
                "name a mode (auto, balanced, balanced_low_0, sequential) with max_memory, or give a dict"
            )
        device_map, source = own, OWN_MAP
    elif isinstance(device_map, Mapping):
        source = "dict"
    elif not device_map:
        raise ValueError("max_memory is given without a device map to plan: add device_map (auto, balanced, ...)")
    else:
        raise ValueError(f"expected a device map mode or a dict of module names to devices, got {device_map!r}")
    stored: set[int] = set()
    tensors = [
        (path, name, tensor_record(tensor, buffer=is_buffer, seen=stored).nbytes if name else 0)
        for path, name, tensor, is_buffer in named_tensors(model)
    ]
    summary = PlacementSummary(source=source, limits=limits, given=given, no_split=tuple(no_split))
    return annotate_devices(tree, tensors, device_map, summary=summary)
