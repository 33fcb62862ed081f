"""What a placement view found: plain data a model tree carries (see :mod:`sphinx_modelvis.placement`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import PlainJson

__all__ = ["PlacementSummary", "device_label", "shards_from_json", "shards_to_json"]

#: The order devices are listed in, after accelerator indices (as accelerate orders them).
_NAMED_ORDER = ("mps", "cpu", "disk")


def _device_order(device: str) -> tuple[int, int, str]:
    if device.isdecimal():
        return (0, int(device), "")
    if device in _NAMED_ORDER:
        return (1, _NAMED_ORDER.index(device), "")
    return (2, 0, device)


def sort_devices(devices: Any) -> list[str]:
    """Device names (``"0"``, ``"cpu"``, ``"cuda:1"``) in accelerate's order: accelerators by index, then
    ``mps``, ``cpu``, ``disk``, then any other name."""
    return sorted(devices, key=_device_order)


def device_label(devices: str) -> str:
    """A node's devices (``"0,1,2,3,cpu"``) as a figure writes them: runs of three or more accelerator indices as
    ranges (``0-3,cpu``; ``0,1``)."""
    names = [name for name in devices.split(",") if name]
    out: list[str] = []
    index = 0
    while index < len(names):
        end = index
        while end + 1 < len(names) and names[end].isdecimal() and names[end + 1] == str(int(names[end]) + 1):
            end += 1
        if end - index < 2:  # two in a row stay a list: 0,1
            end = index
        out.append(names[index] if end == index else f"{names[index]}-{names[end]}")
        index = end + 1
    return ",".join(out)


def shards_to_json(shards: tuple[tuple[str, str, tuple[tuple[int, ...], ...]], ...]) -> list[list[Any]]:
    """A node's tensor-parallel shards as JSON holds them: ``[[name, style, [[rows, columns], ...]], ...]``."""
    return [[name, style, [list(shape) for shape in shapes]] for name, style, shapes in shards]


def shards_from_json(items: list[list[Any]]) -> tuple[tuple[str, str, tuple[tuple[int, ...], ...]], ...]:
    """Read what :func:`shards_to_json` wrote."""
    return tuple(
        (str(name), str(style), tuple(tuple(int(size) for size in shape) for shape in shapes))
        for name, style, shapes in items
    )


@dataclass(frozen=True, slots=True)
class PlacementSummary(PlainJson):
    """What a placement view found (see :mod:`sphinx_modelvis.placement`), in bytes, each tensor once.

    For a device map: ``source`` says where the map came from (``auto``, ``balanced``, ``balanced_low_0``,
    ``sequential``: accelerate's ``infer_auto_device_map``; ``dict``: given; ``hf_device_map``: the model's own),
    ``limits`` the memory per device the map was made for (after balancing, as accelerate used it), ``given``
    the ``max_memory`` as given, ``by_device`` the bytes each device holds, ``no_split`` the classes the model
    says must not be split, ``split`` how many modules are split across devices.
    For a tensor-parallel plan: ``ranks`` (0: none), ``by_rank`` the bytes each rank holds (sharded tensors'
    shards and every replicated tensor), ``planned`` how many modules and parameters the plan names, ``styles``
    the styles used, each with how many parameters it shards, and ``unknown`` the styles whose shards are not
    known (shown, not sized).
    """

    source: str = ""
    limits: tuple[tuple[str, int], ...] = ()
    given: tuple[tuple[str, int], ...] = ()
    by_device: tuple[tuple[str, int], ...] = ()
    no_split: tuple[str, ...] = ()
    split: int = 0
    ranks: int = 0
    by_rank: tuple[int, ...] = ()
    planned: int = 0
    styles: tuple[tuple[str, int], ...] = ()
    unknown: tuple[str, ...] = ()
