"""Folding repeated siblings into one line (``0-11``), depth cuts, pruning and parameter totals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .tree import ModelTree, ModuleNode, ParamInfo

__all__ = [
    "FoldedNode",
    "ParamSummary",
    "drop_parameter_free",
    "fold_siblings",
    "format_count",
    "format_names",
    "subtree_totals",
    "summarize",
]


@dataclass(slots=True, eq=False)
class FoldedNode:
    """One displayed line of the tree: one module, or several identical siblings.

    ``node`` is the first of the folded modules (they are all alike); ``names`` are all of their
    names in the order met. ``hidden`` counts the modules below that a depth cut left out.
    """

    names: list[str]
    node: ModuleNode
    children: list[FoldedNode] = field(default_factory=list)
    hidden: int = 0

    @property
    def label(self) -> str:
        """The names as shown: ``0-11``, ``0,2,4-5`` or ``query,key,value``."""
        return format_names(self.names)

    @property
    def folded(self) -> bool:
        """Whether this line stands for more than one module."""
        return len(self.names) > 1


@dataclass(slots=True, frozen=True)
class ParamSummary:
    """Parameter totals; tied parameters and shared modules count once, buffers not at all."""

    total: int
    tunable: int
    frozen: int
    delta: int

    @property
    def tunable_ratio(self) -> float:
        return self.tunable / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "tunable": self.tunable, "frozen": self.frozen, "delta": self.delta}


def format_names(names: list[str]) -> str:
    """Join sibling names: integer names become ranges (``0-11``, ``0,2,4-5``), others are joined by commas.

    Only names written as Python writes integers count as numbers: ``01`` or ``007`` stay as they are.
    """
    if len(names) == 1:  # most lines of a big tree: a module of its own
        return names[0]
    if names and all(_is_index(name) for name in names):
        numbers = sorted(int(name) for name in names)
        runs: list[str] = []
        start = previous = numbers[0]
        for number in [*numbers[1:], None]:
            if number is not None and number == previous + 1:
                previous = number
                continue
            runs.append(str(start) if start == previous else f"{start}-{previous}")
            if number is not None:
                start = previous = number
        return ",".join(runs)
    return ",".join(names)


def _is_index(name: str) -> bool:
    return name.isdecimal() and name.isascii() and (name == "0" or not name.startswith("0"))


def format_count(count: int) -> str:
    """A parameter count in human units: ``950``, ``12.3K``, ``109.5M``, ``70.6B``."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def drop_parameter_free(root: ModuleNode) -> ModuleNode:
    """A copy of the tree without modules that own no parameter and keep no child.

    The root always stays. A module met again through a second parent stays when the place
    it is shown stays.
    """
    copies: dict[int, ModuleNode] = {}
    kept_paths: set[str] = set()
    # Children before their parent, earlier siblings first: a shared module's first place is decided first.
    for path, node in root.places(leaves_first=True):
        kids = [copies[id(child)] for child in node.children if id(child) in copies]
        keep = bool(node.params) or bool(kids) or node is root
        if node.shared_with is not None:
            keep = keep or node.shared_with in kept_paths or _is_ancestor(node.shared_with, path)
        if keep:
            copies[id(node)] = replace(node, children=kids)
            kept_paths.add(path)
    return copies[id(root)]


def _is_ancestor(candidate: str, path: str) -> bool:
    return candidate == "" or path.startswith(candidate + ".")


def _signatures(root: ModuleNode) -> dict[int, int]:
    """A small integer per node such that equal integers mean identical subtrees (names of children included).

    Computed once per node object: a shared subtree (as built trees have) costs one entry.
    """
    table: dict[tuple[Any, ...], int] = {}
    ids: dict[int, int] = {}
    for node in root.distinct():
        key = (
            node.signature(),
            tuple([(child.name, ids[id(child)]) for child in node.children]) if node.children else (),
        )
        ids[id(node)] = table.setdefault(key, len(table))
    return ids


def _sizes(root: ModuleNode) -> dict[int, int]:
    """The number of places in each node's subtree (itself included), once per node object."""
    sizes: dict[int, int] = {}
    for node in root.distinct():
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in node.children)
    return sizes


def fold_siblings(tree: ModelTree | ModuleNode, *, max_depth: int | None = None) -> FoldedNode:
    """Fold siblings whose whole subtrees match into one :class:`FoldedNode`.

    Siblings fold when type, child names and types, parameter names, shapes, dtypes and
    tunable/frozen/delta state all match, wherever they stand among their siblings; the folded
    line stands where the first of them stood. ``max_depth`` cuts the tree below that depth
    (the root is depth 0) and records how many modules were left out.
    """
    root = tree.root if isinstance(tree, ModelTree) else tree
    known = tree.known if isinstance(tree, ModelTree) else None
    signature = known.subtrees if known is not None else _signatures(root)
    sizes: dict[int, int] | None = None
    top = FoldedNode([root.name], root)
    stack: list[tuple[FoldedNode, int]] = [(top, 0)]
    while stack:
        folded, depth = stack.pop()
        children = folded.node.children
        if not children:
            continue
        if max_depth is not None and depth >= max_depth:
            if sizes is None:
                sizes = _sizes(root)
            folded.hidden = sum(sizes[id(child)] for child in children)
            continue
        groups: dict[int, FoldedNode] = {}
        for child in children:
            key = signature[id(child)]
            group = groups.get(key)
            if group is None:
                group = groups[key] = FoldedNode([child.name], child)
                folded.children.append(group)
            else:
                group.names.append(child.name)
        stack.extend((child, depth + 1) for child in folded.children)
    return top


def summarize(tree: ModelTree | ModuleNode) -> ParamSummary:
    """Count parameters: total, tunable, frozen and delta, each tensor once."""
    if isinstance(tree, ModelTree) and tree.known is not None:
        total, tunable, delta = tree.known.totals
        return ParamSummary(total=total, tunable=tunable, frozen=total - tunable, delta=delta)
    root = tree.root if isinstance(tree, ModelTree) else tree
    # Totals per node object, children first: a subtree shared by many places is added up once.
    totals: dict[int, tuple[int, int, int]] = {}
    for node in root.distinct():
        totals[id(node)] = subtree_totals(node.params, [totals[id(child)] for child in node.children])
    total, tunable, delta = totals[id(root)]
    return ParamSummary(total=total, tunable=tunable, frozen=total - tunable, delta=delta)


def subtree_totals(params: Iterable[ParamInfo], below: Iterable[tuple[int, int, int]]) -> tuple[int, int, int]:
    """(total, tunable, delta) parameters of a subtree: its module's own ``params`` (tied weights, buffers and a
    comparison's removed parameters not counted: each tensor counts once, where it is), and the totals ``below``."""
    total = tunable = delta = 0
    for param in params:
        if param.buffer or param.tied_to is not None or param.change == "removed":
            continue
        count = param.numel
        total += count
        if param.requires_grad:
            tunable += count
        if param.delta:
            delta += count
    for child_total, child_tunable, child_delta in below:
        total += child_total
        tunable += child_tunable
        delta += child_delta
    return total, tunable, delta
