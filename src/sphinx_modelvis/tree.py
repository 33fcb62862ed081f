"""The model tree as plain data: modules, their parameters, and a JSON round trip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .fields import LAYOUTS, JsonField, field_values, layout, list_or_none, read_fields, tuple_or_none, write_fields
from .flop_summary import FlopSummary
from .placement_summary import PlacementSummary, shards_from_json, shards_to_json
from .sizes import MemorySummary, ints_from_json, pairs_from_json, pairs_to_json
from .target_summary import TargetSummary

__all__ = [
    "CHANGES",
    "DTYPE_NAMES",
    "TARGETS",
    "TREE_FORMAT_VERSION",
    "ChangeSummary",
    "JsonField",
    "ModelTree",
    "ModuleNode",
    "ParamInfo",
    "TargetSummary",
    "TreeFacts",
    "format_dtype",
    "format_shape",
]

#: Bumped whenever the JSON layout changes, so cached trees of an older layout are rebuilt.
TREE_FORMAT_VERSION = 4

#: The change marks of a compared tree (see :mod:`sphinx_modelvis.compare`), on modules and parameters.
CHANGES = ("added", "removed", "changed", "moved")

#: The marks of an adapter preview (see :mod:`sphinx_modelvis.targets`): a module the config would adapt, one
#: it would keep a trainable copy of (``modules_to_save``), one its ``exclude_modules`` leaves out.
TARGETS = ("adapted", "saved", "excluded")

#: Short names of dtypes, wherever a figure shows one (a parameter's or an output's that is not the model's usual one).
DTYPE_NAMES = {
    "float32": "f32",
    "float16": "f16",
    "bfloat16": "bf16",
    "float64": "f64",
    "complex64": "c64",
    "complex128": "c128",
    "int64": "i64",
}


def format_shape(shape: tuple[int, ...] | None) -> str:
    """A shape as figures write it: ``[768, 768]``, ``[]`` for a scalar, ``[?]`` when not known yet."""
    return "[?]" if shape is None else "[" + ", ".join([str(size) for size in shape]) + "]"


def format_dtype(dtype: str) -> str:
    """A dtype as figures write it: its short name (``bf16``, ``i64``) when it has one, else as torch names it."""
    return DTYPE_NAMES.get(dtype, dtype)


@dataclass(slots=True)
class ParamInfo:
    """One parameter (or buffer) owned directly by a module.

    ``shape`` is ``None`` for a parameter whose shape is not known yet
    (``torch.nn.LazyLinear`` before its first call).
    ``tied_to`` names the first place the same tensor was met, for a tied weight;
    a tied parameter is shown but not counted again.

    In a compared tree, ``change`` says how the parameter differs from the earlier tree (one of
    :data:`CHANGES`, or empty) and ``was`` what it was there: ``tunable``, ``[4, 768]``, ``float32``, and for a
    moved parameter first where it was, from where it is: ``../weight`` (the weight of the module one up).
    """

    name: str
    shape: tuple[int, ...] | None = field(metadata={"json": JsonField(write=list_or_none, read=tuple_or_none)})
    dtype: str = "float32"
    requires_grad: bool = True
    delta: bool = False
    buffer: bool = False
    tied_to: str | None = None
    change: str = ""
    was: str = ""
    #: A quantized tensor's scheme (``int8, torchao``); ``shape`` and ``dtype`` are then its logical ones.
    scheme: str = ""

    @property
    def numel(self) -> int:
        """Number of elements; 0 when the shape is unknown."""
        if self.shape is None:
            return 0
        count = 1
        for size in self.shape:
            count *= size
        return count

    @property
    def state(self) -> str:
        """The color role of the parameter: ``delta``, ``tunable``, ``frozen`` or ``buffer``."""
        if self.buffer:
            return "buffer"
        if self.delta:
            return "delta"
        return "tunable" if self.requires_grad else "frozen"

    def signature(self) -> tuple[Any, ...]:
        """What must match for two parameters to be shown as one: every field."""
        return field_values(self, "")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the name and shape, and every other field that differs from its default."""
        return write_fields(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParamInfo:
        """Read what :meth:`to_json` wrote."""
        return cls(**read_fields(cls, data))


LAYOUTS[ParamInfo] = layout(ParamInfo)


def _write_params(params: list[ParamInfo]) -> list[dict[str, Any]]:
    return [param.to_json() for param in params]


def _read_params(items: list[dict[str, Any]]) -> list[ParamInfo]:
    return [ParamInfo.from_json(item) for item in items]


_PAIRS = JsonField(write=pairs_to_json, read=pairs_from_json)
_INTS = JsonField(write=list, read=ints_from_json)
_SUMMARY = JsonField(write=MemorySummary.to_json, read=MemorySummary.from_json)


@dataclass(slots=True, eq=False)
class ModuleNode:
    """One module: its attribute name, class name, own parameters and children.

    ``shared_with`` is set on a module met a second time (reachable from two parents);
    it then names the path where it is shown, and carries no parameters or children.
    ``type_path`` is the class's module and qualified name (``torch.nn.modules.linear.Linear``),
    so that two classes of the same name are told apart; empty when unknown (trees made by hand).
    ``type_label`` is how the class is shown when its name alone would not tell it from another class
    of the figure (``lora.Linear`` beside ``Linear``); empty means ``type_name``.
    In a compared tree, ``change`` is ``added`` or ``removed`` for a module only one of the trees has, and
    ``was_type`` the class the other tree had in its place, when it differs (``Linear`` for ``lora.Linear``).

    A tree made by :func:`~sphinx_modelvis.build_tree` shares identical subtrees: the same node object
    stands in every place whose name and whole subtree are alike (the layers of a 12-layer stack share
    their children). Treat built trees as read-only; :meth:`distinct` visits each node object once.

    Every field is data: copies are made with :func:`dataclasses.replace`, and equality, the JSON and what
    folds (:meth:`signature`) take every field, so a new field travels through every stage by default. The
    fields are declared in the order the JSON writes them; all but the first four are keyword-only.
    """

    name: str
    type_name: str = field(metadata={"json": JsonField(key="type")})
    type_path: str = field(default="", kw_only=True)
    type_label: str = field(default="", kw_only=True)
    params: list[ParamInfo] = field(
        default_factory=list, metadata={"json": JsonField(write=_write_params, read=_read_params)}
    )
    #: Written as ``c``, by the children's places in the list :meth:`to_json` makes.
    children: list[ModuleNode] = field(default_factory=list)
    shared_with: str | None = field(default=None, kw_only=True)
    change: str = field(default="", kw_only=True)
    was_type: str = field(default="", kw_only=True)
    #: In a forward view: how many times the module ran in the traced pass (0: never; -1: not traced) and
    #: its output, summarized (``[1, 16, 768]``, ``([1, 16, 768], [1, 12, 16, 16])``).
    calls: int = field(default=-1, kw_only=True)
    output: str = field(default="", kw_only=True)
    #: In a memory view (:mod:`~sphinx_modelvis.memory`): the subtree's bytes by dtype, most first; under training
    #: its gradients', optimizer state's and master weights'; compared, its earlier total where it differs (or -1).
    memory: tuple[tuple[str, int], ...] = field(default=(), kw_only=True, metadata={"json": _PAIRS})
    training: tuple[int, ...] = field(default=(), kw_only=True, metadata={"json": _INTS})
    memory_was: int = field(default=-1, kw_only=True)
    #: In a forward view with FLOPs (:mod:`~sphinx_modelvis.flops`): the subtree's FLOPs in the pass, all its calls
    #: summed (-1: not counted); compared, the earlier count where it differs (or -1).
    flops: int = field(default=-1, kw_only=True)
    flops_was: int = field(default=-1, kw_only=True)
    #: In a common structure (``structure_graph(common_structure=True, mapping=...)``): ``False`` for a module
    #: the mapping names no common name for (its own name kept, drawn faint, as bigmodelvis draws it grey).
    common: bool = field(default=True, kw_only=True)
    #: In an adapter preview: what the config would do to this module (one of :data:`TARGETS`, or empty).
    target: str = field(default="", kw_only=True)
    #: In a placement view (:mod:`~sphinx_modelvis.placement`): the devices its subtree's tensors are on
    #: (``"0"``, ``"0,1,cpu"``), why it is flagged as split across devices (``parameters``, ``no-split``), its
    #: tensor-parallel style and its parameters' shards: ``(name, style, shape on each rank)``.
    device: str = field(default="", kw_only=True)
    split: str = field(default="", kw_only=True)
    tp_style: str = field(default="", kw_only=True)
    shards: tuple[tuple[str, str, tuple[tuple[int, ...], ...]], ...] = field(
        default=(), kw_only=True, metadata={"json": JsonField(write=shards_to_json, read=shards_from_json)}
    )

    @property
    def shown_type(self) -> str:
        """The class as figures show it: ``type_label`` when set, else ``type_name``."""
        return self.type_label or self.type_name

    def signature(self) -> tuple[Any, ...]:
        """What must match, besides the subtrees below, for two sibling modules to fold into one line: every
        field but the name and the children, the parameters by their :meth:`ParamInfo.signature`."""
        own = [getattr(self, name) for name in _NODE_OWN]
        own[_NODE_OWN.index("params")] = tuple([param.signature() for param in self.params])
        return tuple(own)

    def walk(self) -> Iterator[ModuleNode]:
        """Every place of the subtree, parents before children, without recursion.

        A node object shared by several places is yielded once per place, as in the model.
        """
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def places(self, *, leaves_first: bool = False) -> list[tuple[str, ModuleNode]]:
        """Every place of the subtree with its dotted path (this node's: ``""``), without recursion: in model
        order, parents before children; with ``leaves_first``, children before their parents (and an earlier
        sibling's subtree before a later sibling's, so a shared module's first place comes before the places
        that point to it)."""
        order: list[tuple[str, ModuleNode]] = []
        stack: list[tuple[str, ModuleNode]] = [("", self)]
        while stack:
            path, node = stack.pop()
            order.append((path, node))
            children = node.children if leaves_first else reversed(node.children)
            stack.extend((f"{path}.{child.name}" if path else child.name, child) for child in children)
        if leaves_first:  # pre-order visiting the last child first, reversed: the earliest leaves first
            order.reverse()
        return order

    def distinct(self) -> list[ModuleNode]:
        """Every node object of the subtree once, children before their parents, without recursion.

        What a computation over a shared tree walks: work per node object, not per place.
        """
        seen: set[int] = set()
        order: list[ModuleNode] = []
        # Each entry: a node, or None before a node whose children are all listed (it comes next).
        stack: list[ModuleNode | None] = [self]
        while stack:
            node = stack.pop()
            if node is None:
                order.append(stack.pop())  # type: ignore[arg-type]
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            if not node.children:
                order.append(node)
                continue
            stack.append(node)
            stack.append(None)
            stack.extend([child for child in reversed(node.children) if id(child) not in seen])
        return order

    def __eq__(self, other: object) -> bool:
        """Structural equality of every field, compared without recursion (shared nodes are compared once)."""
        if not isinstance(other, ModuleNode):
            return NotImplemented
        pairs = [(self, other)]
        compared: set[tuple[int, int]] = set()
        while pairs:
            left, right = pairs.pop()
            if left is right or (id(left), id(right)) in compared:
                continue
            compared.add((id(left), id(right)))
            if len(left.children) != len(right.children):
                return False
            if field_values(left, "children") != field_values(right, "children"):
                return False
            pairs.extend(zip(left.children, right.children, strict=True))
        return True

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> list[dict[str, Any]]:
        """The subtree as a flat, JSON-ready list of its node objects, children before parents.

        ``c`` lists a node's children by their index in the list, so a node object shared by many
        places is written once, and neither writing nor reading recurses, however deep the model.
        The last item is this node.
        """
        order = self.distinct()
        index = {id(node): number for number, node in enumerate(order)}
        out: list[dict[str, Any]] = []
        for node in order:
            item = write_fields(node, skip="children")
            if node.children:
                item["c"] = [index[id(child)] for child in node.children]
            out.append(item)
        return out

    @classmethod
    def from_json(cls, items: list[dict[str, Any]]) -> ModuleNode:
        """Read what :meth:`to_json` wrote; nodes written once and used in several places stay shared."""
        nodes: list[ModuleNode] = []
        for item in items:
            children = item.get("c", ())
            if any(not 0 <= number < len(nodes) for number in children):
                raise ValueError("model tree JSON names a child before it is given")
            kids = [nodes[number] for number in children]
            nodes.append(cls(**read_fields(cls, item, skip="children"), children=kids))
        if not nodes:
            raise ValueError("model tree JSON has no node")
        return nodes[-1]


LAYOUTS[ModuleNode] = layout(ModuleNode)
#: The fields of a module that are its own, not its place's (its name) nor its subtree's (its children).
_NODE_OWN = tuple(name for name, _key, _default, _how in LAYOUTS[ModuleNode] if name not in ("name", "children"))


@dataclass(frozen=True, slots=True)
class TreeFacts:
    """Facts a builder knows about the tree it made.

    ``subtrees`` numbers every node object by its subtree, its own name left out (equal numbers: siblings
    that fold together); ``totals`` are the parameter counts (total, tunable, delta), each tensor once.
    """

    subtrees: dict[int, int]
    totals: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """What a comparison found, in parameters (each tensor once, buffers not counted): ``added`` (new
    tensors), ``removed``, ``frozen`` (tunable before, frozen now), ``unfrozen`` (the other way),
    ``unchanged`` and ``total`` (the later tree's); ``modules_unchanged`` counts the modules without any change
    (under ``changes_only``: the modules left out)."""

    added: int = 0
    removed: int = 0
    frozen: int = 0
    unfrozen: int = 0
    unchanged: int = 0
    total: int = 0
    #: The later tree's tunable and delta parameters (its totals, also when the figure leaves parts out).
    tunable: int = 0
    delta: int = 0
    modules_unchanged: int = 0
    #: Whether the figure leaves unchanged subtrees out (``:changes-only:``).
    changes_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the counts are read back by name, so all are written)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChangeSummary:
        """Read what :meth:`to_json` wrote (fields it lacks keep their defaults)."""
        return cls(**{item.name: data[item.name] for item in fields(cls) if item.name in data})


@dataclass(slots=True)
class ModelTree:
    """A whole model: the root module and the dtype most of its parameters have.

    Parameters whose dtype differs from ``dominant_dtype`` show it next to their shape.
    A tree with another root or other annotations is made by :meth:`with_root` (or :func:`dataclasses.replace`
    when the root stays); JSON and equality take every field but ``known``. The fields are declared in the order
    the JSON writes them, the root last; all but the root are keyword-only.
    """

    dominant_dtype: str = field(default="float32", kw_only=True, metadata={"json": JsonField(always=True)})
    #: Whether figures of this tree put each parameter on its own line.
    expand_params: bool = field(default=False, kw_only=True, metadata={"json": JsonField(always=True)})
    #: For a compared tree (:func:`~sphinx_modelvis.compare.compare_trees`): what changed, counted.
    changes: ChangeSummary | None = field(
        default=None,
        kw_only=True,
        metadata={"json": JsonField(write=ChangeSummary.to_json, read=ChangeSummary.from_json)},
    )
    #: For a forward view: the traced pass's input and output, summarized (``[1, 16] -> [1, 16, 768]``).
    forward: str = field(default="", kw_only=True)
    #: For a memory view (:func:`~sphinx_modelvis.memory.annotate_memory`): its totals.
    memory: MemorySummary | None = field(default=None, kw_only=True, metadata={"json": _SUMMARY})
    #: For a forward view with FLOPs (:func:`~sphinx_modelvis.flops.annotate_flops`): the pass's totals.
    flops: FlopSummary | None = field(
        default=None, kw_only=True, metadata={"json": JsonField(write=FlopSummary.to_json, read=FlopSummary.from_json)}
    )
    #: For an adapter preview (:func:`~sphinx_modelvis.targets.preview_targets`): what the config would touch.
    targets: TargetSummary | None = field(
        default=None,
        kw_only=True,
        metadata={"json": JsonField(write=TargetSummary.to_json, read=TargetSummary.from_json)},
    )
    #: For a placement view (:mod:`~sphinx_modelvis.placement`): the device map's or tensor-parallel plan's totals.
    placement: PlacementSummary | None = field(
        default=None,
        kw_only=True,
        metadata={"json": JsonField(write=PlacementSummary.to_json, read=PlacementSummary.from_json)},
    )
    #: What the tree's builder already worked out, so that figures need not work it out again on a big
    #: tree; not part of the data (not compared, not written to JSON). Valid while the tree is not changed.
    known: TreeFacts | None = field(default=None, kw_only=True, compare=False, repr=False)
    root: ModuleNode = field(metadata={"json": JsonField(write=ModuleNode.to_json, read=ModuleNode.from_json)})

    def with_root(self, root: ModuleNode, **changes: Any) -> ModelTree:
        """This tree's settings and annotations over another root (with ``changes`` to other fields): what a
        view made from this tree returns. The builder's facts describe the old root, so they are dropped."""
        return replace(self, root=root, known=None, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"version": TREE_FORMAT_VERSION, **write_fields(self)}

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> ModelTree:
        """Read what :meth:`to_json` or :meth:`to_dict` wrote."""
        data = json.loads(text) if isinstance(text, str) else text
        if data.get("version") != TREE_FORMAT_VERSION:
            raise ValueError(f"model tree JSON of format {data.get('version')!r}, expected {TREE_FORMAT_VERSION}")
        return cls(**read_fields(cls, data))


LAYOUTS[ModelTree] = layout(ModelTree)
