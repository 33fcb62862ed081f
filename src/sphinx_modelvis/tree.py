"""The model tree as plain data: modules, their parameters, and a JSON round trip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHANGES", "TREE_FORMAT_VERSION", "ChangeSummary", "ModelTree", "ModuleNode", "ParamInfo", "TreeFacts"]

#: Bumped whenever the JSON layout changes, so cached trees of an older layout are rebuilt.
TREE_FORMAT_VERSION = 4

#: The change marks of a compared tree (see :mod:`sphinx_modelvis.compare`), on modules and parameters.
CHANGES = ("added", "removed", "changed", "moved")


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
    shape: tuple[int, ...] | None
    dtype: str = "float32"
    requires_grad: bool = True
    delta: bool = False
    buffer: bool = False
    tied_to: str | None = None
    change: str = ""
    was: str = ""

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
        """What must match for two parameters to be shown as one."""
        return (
            self.name,
            self.shape,
            self.dtype,
            self.requires_grad,
            self.delta,
            self.buffer,
            self.tied_to,
            self.change,
            self.was,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "shape": None if self.shape is None else list(self.shape)}
        if self.dtype != "float32":
            data["dtype"] = self.dtype
        if not self.requires_grad:
            data["requires_grad"] = False
        if self.delta:
            data["delta"] = True
        if self.buffer:
            data["buffer"] = True
        if self.tied_to is not None:
            data["tied_to"] = self.tied_to
        if self.change:
            data["change"] = self.change
        if self.was:
            data["was"] = self.was
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParamInfo:
        shape = data.get("shape")
        return cls(
            name=data["name"],
            shape=None if shape is None else tuple(shape),
            dtype=data.get("dtype", "float32"),
            requires_grad=data.get("requires_grad", True),
            delta=data.get("delta", False),
            buffer=data.get("buffer", False),
            tied_to=data.get("tied_to"),
            change=data.get("change", ""),
            was=data.get("was", ""),
        )


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
    """

    name: str
    type_name: str
    params: list[ParamInfo] = field(default_factory=list)
    children: list[ModuleNode] = field(default_factory=list)
    shared_with: str | None = None
    type_path: str = ""
    type_label: str = ""
    change: str = ""
    was_type: str = ""
    #: In a forward view: how many times the module ran in the traced pass (0: never; -1: not traced) and
    #: its output, summarized (``[1, 16, 768]``, ``([1, 16, 768], [1, 12, 16, 16])``).
    calls: int = -1
    output: str = ""

    @property
    def type_key(self) -> str:
        """What tells this module's class from others: its full path when known, else its name."""
        return self.type_path or self.type_name

    @property
    def shown_type(self) -> str:
        """The class as figures show it: ``type_label`` when set, else ``type_name``."""
        return self.type_label or self.type_name

    def walk(self) -> Iterator[ModuleNode]:
        """Every place of the subtree, parents before children, without recursion.

        A node object shared by several places is yielded once per place, as in the model.
        """
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

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
        """Structural equality, compared without recursion (shared nodes are compared once)."""
        if not isinstance(other, ModuleNode):
            return NotImplemented
        pairs = [(self, other)]
        compared: set[tuple[int, int]] = set()
        while pairs:
            left, right = pairs.pop()
            if left is right or (id(left), id(right)) in compared:
                continue
            compared.add((id(left), id(right)))
            if (
                left.name,
                left.type_key,
                left.type_label,
                left.params,
                left.shared_with,
                left.change,
                left.was_type,
                left.calls,
                left.output,
                len(left.children),
            ) != (
                right.name,
                right.type_key,
                right.type_label,
                right.params,
                right.shared_with,
                right.change,
                right.was_type,
                right.calls,
                right.output,
                len(right.children),
            ):
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
            item: dict[str, Any] = {"name": node.name, "type": node.type_name}
            if node.type_path:
                item["type_path"] = node.type_path
            if node.type_label:
                item["type_label"] = node.type_label
            if node.params:
                item["params"] = [param.to_json() for param in node.params]
            if node.shared_with is not None:
                item["shared_with"] = node.shared_with
            if node.change:
                item["change"] = node.change
            if node.was_type:
                item["was_type"] = node.was_type
            if node.calls >= 0:
                item["calls"] = node.calls
            if node.output:
                item["output"] = node.output
            if node.children:
                item["c"] = [index[id(child)] for child in node.children]
            out.append(item)
        return out

    @classmethod
    def from_json(cls, items: list[dict[str, Any]]) -> ModuleNode:
        """Read what :meth:`to_json` wrote; nodes written once and used in several places stay shared."""
        nodes: list[ModuleNode] = []
        for item in items:
            node = cls(
                name=item["name"],
                type_name=item["type"],
                params=[ParamInfo.from_json(param) for param in item.get("params", ())],
                shared_with=item.get("shared_with"),
                type_path=item.get("type_path", ""),
                type_label=item.get("type_label", ""),
                change=item.get("change", ""),
                was_type=item.get("was_type", ""),
                calls=item.get("calls", -1),
                output=item.get("output", ""),
            )
            children = item.get("c", ())
            if any(not 0 <= number < len(nodes) for number in children):
                raise ValueError("model tree JSON names a child before it is given")
            node.children = [nodes[number] for number in children]
            nodes.append(node)
        if not nodes:
            raise ValueError("model tree JSON has no node")
        return nodes[-1]


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
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChangeSummary:
        return cls(**{name: data[name] for name in cls.__slots__ if name in data})  # type: ignore[attr-defined]


@dataclass(slots=True)
class ModelTree:
    """A whole model: the root module and the dtype most of its parameters have.

    Parameters whose dtype differs from ``dominant_dtype`` show it next to their shape.
    """

    root: ModuleNode
    dominant_dtype: str = "float32"
    #: Whether figures of this tree put each parameter on its own line.
    expand_params: bool = False
    #: For a compared tree (:func:`~sphinx_modelvis.compare.compare_trees`): what changed, counted.
    changes: ChangeSummary | None = None
    #: For a forward view: the traced pass's input and output, summarized (``[1, 16] -> [1, 16, 768]``).
    forward: str = ""
    #: What the tree's builder already worked out, so that figures need not work it out again on a big
    #: tree; not part of the data (not compared, not written to JSON). Valid while the tree is not changed.
    known: TreeFacts | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "version": TREE_FORMAT_VERSION,
            "dominant_dtype": self.dominant_dtype,
            "expand_params": self.expand_params,
            **({"changes": self.changes.to_json()} if self.changes is not None else {}),
            **({"forward": self.forward} if self.forward else {}),
            "root": self.root.to_json(),
        }

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> ModelTree:
        """Read what :meth:`to_json` or :meth:`to_dict` wrote."""
        data = json.loads(text) if isinstance(text, str) else text
        if data.get("version") != TREE_FORMAT_VERSION:
            raise ValueError(f"model tree JSON of format {data.get('version')!r}, expected {TREE_FORMAT_VERSION}")
        return cls(
            root=ModuleNode.from_json(data["root"]),
            dominant_dtype=data.get("dominant_dtype", "float32"),
            expand_params=data.get("expand_params", False),
            changes=ChangeSummary.from_json(data["changes"]) if "changes" in data else None,
            forward=data.get("forward", ""),
        )
