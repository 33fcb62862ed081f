"""Comparing two model trees: what an adaptation added, removed, froze, moved or retyped, marked on the later tree.

Both trees are plain data (:class:`~sphinx_modelvis.tree.ModelTree`), so the earlier one can come from a cache
or from a figure drawn before the model was changed in place; comparing needs neither torch nor the model.

Wrappers are seen through. PEFT puts the original model under ``base_model.model``: the later tree is
aligned with the earlier one at the module path that makes most of the earlier paths meet, without being
told. PEFT's LoRA layer keeps the original weight as ``base_layer.weight`` (``modules_to_save`` as
``original_module.weight``): a parameter gone from its module and found, with its shape, one or two levels
further down is *moved* (and shows what else changed), not removed and added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from .capture import Capture, TreeBlock
from .errors import ModelvisError
from .folding import summarize
from .memory import node_bytes
from .tree import ChangeSummary, ModelTree, ModuleNode, ParamInfo, format_shape

__all__ = ["compare_captures", "compare_named", "compare_trees", "figure_key", "last_tree"]

#: Names of the modules wrappers keep an original layer under, searched first for a parameter that moved.
WRAPPED = ("base_layer", "original_module")
#: How far below its module a moved parameter is looked for.
MOVE_DEPTH = 2


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _alignment(before: dict[str, ModuleNode], after: dict[str, ModuleNode]) -> str:
    """The path in the later tree where the earlier tree's root now stands: where most earlier paths meet.

    Candidates are the later tree's modules down to depth 3 (a wrapper seldom nests deeper); on a tie, the
    shallowest wins, so an unwrapped model aligns at its root.
    """
    earlier = {path for path in before if path}
    if not earlier:
        return ""
    scores = dict.fromkeys((path for path in after if path.count(".") < 3), 0)
    # A candidate's score: the later paths made of it, a dot and an earlier path. One pass over the later tree,
    # each path looked at where its first three dots cut it (not once per candidate: big trees have thousands).
    for path in after:
        if path in earlier:
            scores[""] += 1
        cut = -1
        for _ in range(3):
            cut = path.find(".", cut + 1)
            if cut < 0:
                break
            if path[:cut] in scores and path[cut + 1 :] in earlier:
                scores[path[:cut]] += 1
    return min(scores, key=lambda candidate: (-scores[candidate], len(candidate), candidate))


def _state(param: ParamInfo) -> str:
    return "delta" if param.delta and not param.buffer else param.state


def _counted(param: ParamInfo) -> bool:
    return not param.buffer and param.tied_to is None


@dataclass
class _Counts:
    """What :class:`~sphinx_modelvis.tree.ChangeSummary` counts of the parameters, as they are met."""

    added: int = 0
    removed: int = 0
    frozen: int = 0
    unfrozen: int = 0
    unchanged: int = 0


def _differences(old: ParamInfo, new: ParamInfo, counts: _Counts) -> list[str]:
    """What ``new`` no longer shares with ``old``: the earlier state, shape or dtype, as the figure says it."""
    was = []
    if _state(old) != _state(new):
        was.append(_state(old))
        if _counted(new):
            if old.requires_grad and not new.requires_grad:
                counts.frozen += new.numel
            elif not old.requires_grad and new.requires_grad:
                counts.unfrozen += new.numel
    if old.shape != new.shape:
        was.append(format_shape(old.shape))
    if old.dtype != new.dtype:
        was.append(old.dtype)
    return was


def _moved_from(old_module: str, new_module: str, name: str) -> str:
    """Where a moved parameter was, from where it is now: ``../weight``, the weight of the module one level
    up. Relative, so the twelve layers whose weight moved alike still fold into one line."""
    up = new_module.count(".") - old_module.count(".") if old_module else new_module.count(".") + 1
    return "../" * up + name


def _find_moved(
    node: ModuleNode, path: str, old: ParamInfo, taken: set[tuple[str, str]]
) -> tuple[ParamInfo, str] | None:
    """A parameter named like ``old``, with its shape, at most :data:`MOVE_DEPTH` levels below ``node``
    (under a wrapper's usual names first), not taken yet; with the path of the module that holds it.

    Places, not objects: a built tree shares one parameter object between the places of identical layers.
    """
    found: list[tuple[int, int, ParamInfo, str]] = []
    stack: list[tuple[ModuleNode, str, int]] = [(child, _join(path, child.name), 1) for child in node.children]
    while stack:
        module, where, depth = stack.pop()
        for param in module.params:
            if param.name == old.name and param.shape == old.shape and (where, param.name) not in taken:
                preference = 0 if module.name in WRAPPED else 1
                found.append((preference, depth, param, where))
        if depth < MOVE_DEPTH:
            stack.extend((child, _join(where, child.name), depth + 1) for child in module.children)
    if not found:
        return None
    found.sort(key=lambda item: (item[0], item[1]))
    _, _, param, where = found[0]
    return param, where


def _ghost(top: ModuleNode) -> ModuleNode:
    """A copy of an earlier subtree that the later tree no longer has: every module and parameter removed.

    Made from the leaves up, without recursion, as everything on a tree is (a model may be thousands deep).
    """
    copies: dict[str, ModuleNode] = {}
    for path, node in top.places(leaves_first=True):
        # Marked against the later tree, which has no such module: no class of its own there to compare
        # with, and the later tree's traced pass (a forward view's) never ran it.
        copies[path] = replace(
            node,
            params=[replace(param, change="removed") for param in node.params],
            children=[copies[_join(path, child.name)] for child in node.children],
            change="removed",
            was_type="",
            calls=-1,
            output="",
        )
    return copies[""]


def _retyped(old: ModuleNode, new: ModuleNode) -> bool:
    """Whether the class changed. Trees know a class's full path only where two classes share a name, so
    the names decide, then the labels that tell like-named classes apart (``lora.Linear``), then the paths."""
    if old.type_name != new.type_name or old.shown_type != new.shown_type:
        return True
    return bool(old.type_path and new.type_path and old.type_path != new.type_path)


def _has_change(node: ModuleNode) -> bool:
    return bool(node.change or node.was_type or any(param.change for param in node.params))


def compare_trees(before: ModelTree, after: ModelTree, *, changes_only: bool = False) -> ModelTree:
    """The later tree with each module and parameter marked against the earlier one.

    Marks (:data:`~sphinx_modelvis.tree.CHANGES`): ``added`` and ``removed`` modules and parameters,
    ``changed`` parameters (state: tunable, frozen, delta; shape; dtype; ``was`` says what they were),
    ``moved`` parameters (an original weight kept by a wrapper), and ``was_type`` on a module whose class
    changed. Removed modules come back as ghosts under their parent, so the figure shows them. With
    ``changes_only``, subtrees without a change are left out (the summary counts them).
    """
    earlier = dict(before.root.places())  # every module place by its dotted path, parents first
    later = dict(after.root.places())
    prefix = _alignment(earlier, later)
    counts = _Counts()
    # The later parameters an earlier one moved to, by their module's path and their name.
    taken: set[tuple[str, str]] = set()
    # For each later parameter an earlier one moved to (its module's path, its name): what it was.
    moved: dict[tuple[str, str], list[str]] = {}
    # For each later module place: its earlier counterpart.
    matched: dict[str, str] = {}
    for old_path in earlier:
        new_path = _join(prefix, old_path) if old_path else prefix
        if new_path in later:
            matched[new_path] = old_path
    removed_params: dict[str, list[ParamInfo]] = {}
    for new_path, old_path in matched.items():
        old_node, new_node = earlier[old_path], later[new_path]
        names = {param.name for param in new_node.params}
        for param in old_node.params:
            if param.name in names:
                continue
            target = _find_moved(new_node, new_path, param, taken)
            if target is None:
                removed_params.setdefault(new_path, []).append(replace(param, change="removed"))
                if _counted(param):
                    counts.removed += param.numel
                continue
            new_param, where = target
            taken.add((where, param.name))
            was = [_moved_from(new_path, where, param.name)]
            was.extend(_differences(param, new_param, counts))
            moved[(where, param.name)] = was

    def mark(path: str, node: ModuleNode, children: list[ModuleNode]) -> ModuleNode:
        """The marked copy of the later module at ``path``, whose children are marked already."""
        old_path = matched.get(path)
        old = earlier[old_path] if old_path is not None else None
        old_params = {param.name: param for param in old.params} if old is not None else {}
        params: list[ParamInfo] = []
        for param in node.params:
            earlier_param = old_params.get(param.name)
            moved_from = moved.get((path, param.name))
            if moved_from is not None:
                params.append(replace(param, change="moved", was=", ".join(moved_from)))
            elif earlier_param is not None:
                was = _differences(earlier_param, param, counts)
                params.append(replace(param, change="changed", was=", ".join(was)) if was else param)
                if not was and _counted(param):
                    counts.unchanged += param.numel
            else:
                params.append(replace(param, change="added"))
                if _counted(param):
                    counts.added += param.numel
        params.extend(removed_params.get(path, ()))
        if old is not None:
            names = {child.name for child in node.children}
            children.extend(_ghost(child) for child in old.children if child.name not in names)
            for child in old.children:
                if child.name not in names and _join(path, child.name) not in matched:
                    counts.removed += sum(p.numel for c in child.walk() for p in c.params if _counted(p))
        wrapper = old is None and (prefix == path or prefix.startswith(path + ".") or path == "")
        change = "" if old is not None or wrapper or any(p.change == "moved" for p in params) else "added"
        was_type = ""
        if old is not None and _retyped(old, node):
            was_type = old.shown_type
        return replace(node, params=params, children=children, change=change, was_type=was_type)

    marked: dict[str, ModuleNode] = {}
    for path, node in reversed(list(later.items())):  # children before their parents, without recursion
        marked[path] = mark(path, node, [marked[_join(path, child.name)] for child in node.children])
    root = marked[""]
    if changes_only:
        places = len(marked)
        root = _changes_only(root)
        modules_unchanged = places - sum(1 for _ in root.walk())  # those left out, not those shown as context
    else:
        modules_unchanged = sum(1 for node in marked.values() if not _has_change(node))
    totals = summarize(after)
    summary = ChangeSummary(
        **asdict(counts),
        total=totals.total,
        tunable=totals.tunable,
        delta=totals.delta,
        modules_unchanged=modules_unchanged,
        changes_only=changes_only,
    )
    counted: dict[str, Any] = {}
    # Both counted: each changed module says its earlier count, and the summary the earlier total.
    if before.flops is not None and after.flops is not None:
        root = _with_earlier(before, root, matched, lambda node: node.flops, "flops_was")
        counted["flops"] = replace(after.flops, before=before.flops.total)
    if before.memory is not None and after.memory is not None:
        root = _with_earlier(before, root, matched, node_bytes, "memory_was")
        counted["memory"] = replace(after.memory, before=before.memory.total)
    return after.with_root(root, changes=summary, **counted)


def _with_earlier(
    before: ModelTree,
    root: ModuleNode,
    matched: Mapping[str, str],
    measure: Callable[[ModuleNode], int],
    field: str,
) -> ModuleNode:
    """``root`` (the marked copy of a later tree's root) with each module whose ``measure`` changed keeping what it
    was in ``field`` (``flops_was``, ``memory_was``; -1: unchanged, new, or not measured), by ``matched``: each
    later module's path and its earlier counterpart's."""
    earlier = {path: measure(node) for path, node in before.root.places()}
    copies: dict[str, ModuleNode] = {}
    for path, node in root.places(leaves_first=True):
        children = [copies[f"{path}.{child.name}" if path else child.name] for child in node.children]
        old_path = matched.get(path)
        was = earlier.get(old_path, -1) if old_path is not None and node.change != "removed" else -1
        now = measure(node)
        if was == now or now < 0:
            was = -1
        if was == getattr(node, field) and all(new is old for new, old in zip(children, node.children, strict=True)):
            copies[path] = node
        else:
            marked: dict[str, Any] = {field: was}
            copies[path] = replace(node, children=children, **marked)
    return copies[""]


def _changes_only(root: ModuleNode) -> ModuleNode:
    """The tree without the subtrees in which nothing changed (the root stays)."""
    kept: dict[int, ModuleNode] = {}
    order = list(root.walk())
    for node in reversed(order):  # children before parents
        children = [kept[id(child)] for child in node.children if id(child) in kept]
        if children or _has_change(node) or node is root:
            kept[id(node)] = replace(node, children=children)
    return kept[id(root)]


def figure_key(name: str) -> str:
    """A figure's ``:name:`` as names are matched: case and runs of spaces do not matter (as in docutils)."""
    return " ".join(name.lower().split())


def last_tree(capture: Capture) -> TreeBlock | None:
    """The last tree a figure shows (a figure of printed text only has none)."""
    trees = [block for block in capture.blocks if isinstance(block, TreeBlock)]
    return trees[-1] if trees else None


def compare_captures(before: Capture, after: Capture, *, name: str, changes_only: bool = False) -> Capture:
    """``after`` with its last tree marked against the last tree of ``before`` (the figure called ``name``).

    Raises :class:`~sphinx_modelvis.errors.ModelvisError` when either figure shows no tree.
    """
    earlier, later = last_tree(before), last_tree(after)
    if earlier is None:
        raise ModelvisError(f"the figure {name!r} shows no model tree to compare with")
    if later is None:
        raise ModelvisError(f"this figure shows no model tree to compare with {name!r}")
    compared = compare_trees(earlier.tree, later.tree, changes_only=changes_only)
    marked = TreeBlock(compared, rootname=later.rootname, max_depth=later.max_depth, summary=later.summary)
    return Capture([marked if block is later else block for block in after.blocks])


def compare_named(capture: Capture, named: dict[str, Capture], name: str, *, changes_only: bool = False) -> Capture:
    """``capture`` marked against the page's earlier figure called ``name`` (``named`` holds them by
    :func:`figure_key`): what a host does for ``:compare: NAME``. Raises
    :class:`~sphinx_modelvis.errors.ModelvisError` saying what is wrong when there is no such figure or tree.
    """
    before = named.get(figure_key(name))
    if before is None:
        known = ", ".join(sorted(named)) or "none has a :name: yet"
        raise ModelvisError(
            f"{name}: no earlier figure of this page has that :name: (the figures named above: {known})"
        )
    return compare_captures(before, capture, name=name, changes_only=changes_only)
