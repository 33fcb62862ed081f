"""The memory view: a tree annotated with the bytes each subtree's tensors take, and what training would add.

Reading the tensors needs torch and lives in :mod:`sphinx_modelvis.precision`; this module turns its plain
records (:class:`TensorRecord`) into annotations on the tree, so that a measured tree is data like any other: it
folds (blocks of unequal size do not), caches and compares without torch. Sizes are what the tensors *store*
(shape × element size for a plain tensor, so a model on the meta device is measured without any storage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from .sizes import MemorySummary
from .tree import ModelTree, ModuleNode

__all__ = [
    "HALF_PRECISION",
    "MEMORY_MODES",
    "OPTIMIZERS",
    "TensorRecord",
    "annotate_memory",
    "format_bytes",
    "memory_mode",
    "optimizer_name",
    "state_bytes",
]

#: What ``:memory:`` takes: ``weights`` (the default when it has no value) or ``training``.
MEMORY_MODES = ("weights", "training")

#: The optimizers ``:optimizer:`` takes, each with the state it is assumed to keep (what a figure's summary says).
OPTIMIZERS = {
    "adam": "Adam: 2 fp32 states per tunable parameter",
    "adamw": "AdamW: 2 fp32 states per tunable parameter",
    "sgd": "SGD without momentum: no state",
    "sgd-momentum": "SGD with momentum: 1 fp32 state per tunable parameter",
    "adafactor": "Adafactor without first moment: fp32 row and column second moments per matrix, a full one per vector",
    "8bit-adam": "8-bit Adam (bitsandbytes): 2 uint8 states and 2 fp32 scales per 256 parameters, "
    "2 fp32 states for tensors under 4096 parameters",
}

#: Short names of the optimizers, as a figure's lines name their state.
OPTIMIZER_NAMES = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "sgd-momentum": "momentum",
    "adafactor": "Adafactor",
    "8bit-adam": "8-bit Adam",
}

#: Dtypes whose tunable weights mixed-precision training keeps an fp32 master copy of.
HALF_PRECISION = ("float16", "bfloat16")

#: bitsandbytes' 8-bit optimizers keep 32-bit states for tensors smaller than this (their ``min_8bit_size``), and
#: one fp32 scale (``absmax``) per block of this many elements per state.
BNB_MIN_8BIT_SIZE = 4096
BNB_BLOCK = 256


class TensorRecord(NamedTuple):
    """One tensor a module holds, as the memory view counts it: its dtype, the bytes it stores, its logical
    element count and shape, whether training updates it (a parameter that requires grad) and whether it is
    a buffer."""

    dtype: str
    nbytes: int
    numel: int
    shape: tuple[int, ...]
    tunable: bool
    buffer: bool = False


def memory_mode(value: bool | str | None) -> str:
    """What ``memory=`` or ``:memory:`` asks for: ``weights`` (``True``, no value) or ``training``; ``""`` for none.

    Raises ``ValueError`` naming the choices for anything else.
    """
    if value is None or value is True:
        return "weights"
    if value is False:
        return ""
    text = str(value).strip().lower()
    if text in ("", "true", "yes", "on", "1"):
        return "weights"
    if text in ("false", "no", "off", "0"):
        return ""
    if text not in MEMORY_MODES:
        raise ValueError(f"expected no value, weights or training, got {value!r}")
    return text


def optimizer_name(value: str | None) -> str:
    """An ``:optimizer:`` value, checked: a key of :data:`OPTIMIZERS` (any case). Raises ``ValueError``."""
    text = (value or "").strip().lower()
    if text not in OPTIMIZERS:
        raise ValueError(f"expected one of {', '.join(OPTIMIZERS)}, got {value!r}")
    return text


def state_bytes(optimizer: str, record: TensorRecord) -> int:
    """The optimizer state ``optimizer`` (a key of :data:`OPTIMIZERS`) keeps for one tunable tensor."""
    numel = record.numel
    if optimizer in ("adam", "adamw"):
        return 8 * numel
    if optimizer == "sgd":
        return 0
    if optimizer == "sgd-momentum":
        return 4 * numel
    if optimizer == "adafactor":
        shape = record.shape
        if len(shape) < 2:
            return 4 * numel
        rows = columns = 1
        for size in shape[:-1]:
            rows *= size
        for size in shape[:-2]:
            columns *= size
        return 4 * (rows + columns * shape[-1])
    if optimizer == "8bit-adam":
        if numel < BNB_MIN_8BIT_SIZE:
            return 8 * numel
        blocks = -(-numel // BNB_BLOCK)
        return 2 * numel + 2 * 4 * blocks
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")


def format_bytes(size: int) -> str:
    """A byte count in binary units: ``512 B``, ``4.0 KiB``, ``417.7 MiB``, ``131.4 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _tensor_cost(record: TensorRecord, training: bool, optimizer: str) -> tuple[str, int, int, int, int, int]:
    """What one tensor costs: its dtype and bytes, of them a buffer's, and its gradient, optimizer state and fp32
    master copy under training."""
    if record.buffer:
        return (record.dtype, record.nbytes, record.nbytes, 0, 0, 0)
    if not (training and record.tunable):
        return (record.dtype, record.nbytes, 0, 0, 0, 0)
    master = 4 * record.numel if record.dtype in HALF_PRECISION else 0
    return (record.dtype, record.nbytes, 0, record.nbytes, state_bytes(optimizer, record), master)


class _Cost:
    """What one subtree costs: bytes by dtype, of them buffers', and what training adds."""

    __slots__ = ("buffers", "by_dtype", "gradients", "master", "states")

    def __init__(self) -> None:
        self.by_dtype: dict[str, int] = {}
        self.buffers = self.gradients = self.states = self.master = 0

    def add_record(self, cost: tuple[str, int, int, int, int, int]) -> None:
        """Add one tensor's :func:`_tensor_cost`."""
        dtype, size, buffers, gradients, states, master = cost
        self.by_dtype[dtype] = self.by_dtype.get(dtype, 0) + size
        self.buffers += buffers
        self.gradients += gradients
        self.states += states
        self.master += master

    def add(self, other: _Cost) -> None:
        for dtype, size in other.by_dtype.items():
            self.by_dtype[dtype] = self.by_dtype.get(dtype, 0) + size
        self.buffers += other.buffers
        self.gradients += other.gradients
        self.states += other.states
        self.master += other.master

    def pairs(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(self.by_dtype.items(), key=lambda item: (-item[1], item[0])))


def annotate_memory(
    tree: ModelTree,
    places: Mapping[str, Sequence[TensorRecord]],
    *,
    training: bool = False,
    optimizer: str = "adam",
) -> ModelTree:
    """``tree`` with each module's subtree bytes (:attr:`~sphinx_modelvis.tree.ModuleNode.memory`), and under
    ``training`` the gradients, optimizer state and master weights it adds (``training``), and the totals.

    ``places`` gives each module place's own tensors by dotted path (the root's: ``""``), each tensor once, at
    the place it is met first (see :func:`~sphinx_modelvis.precision.tensor_places`). Places the tree leaves
    out (a module with buffers only) count towards the modules above them.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    costs: dict[str, _Cost] = {}
    # Per record object: a big model's alike tensors share one (see tensor_places), costed once.
    known: dict[int, tuple[str, int, int, int, int, int]] = {}
    # Children before their parents: a place's path is longer than its parent's, and the parent is its prefix.
    for path in sorted(places, key=lambda item: -item.count(".") if item else 1):
        cost = costs.setdefault(path, _Cost())
        for record in places[path]:
            each = known.get(id(record))
            if each is None:
                each = known[id(record)] = _tensor_cost(record, training, optimizer)
            cost.add_record(each)
        if path:
            costs.setdefault(path.rpartition(".")[0], _Cost()).add(cost)
    empty = _Cost()
    copies: dict[str, ModuleNode] = {}
    made: dict[tuple[Any, ...], ModuleNode] = {}
    for path, node in tree.root.places(leaves_first=True):
        children = [copies[f"{path}.{child.name}" if path else child.name] for child in node.children]
        cost = costs.get(path, empty)
        memory = cost.pairs()
        spent = (cost.gradients, cost.states, cost.master) if training else ()
        # Identical places stay one node object, as the builder made them (a stack of layers costs one set).
        key = (id(node), memory, spent, tuple(map(id, children)))
        copy = made.get(key)
        if copy is None:
            copy = made[key] = replace(node, children=children, memory=memory, training=spent)
        copies[path] = copy
    top = costs.get("", empty)
    summary = MemorySummary(
        by_dtype=top.pairs(),
        buffers=top.buffers,
        training=training,
        optimizer=optimizer if training else "",
        gradients=top.gradients,
        states=top.states,
        master=top.master,
    )
    return tree.with_root(copies[""], memory=summary)


def node_bytes(node: ModuleNode) -> int:
    """All a measured module's subtree costs: its weights, and under training what training adds."""
    return sum(size for _dtype, size in node.memory) + sum(node.training)
