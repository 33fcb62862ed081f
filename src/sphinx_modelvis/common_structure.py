"""A model's tree under common names: bigmodelvis's (OpenDelta's) ``common_structure`` with a ``mapping``, so that
``structure_graph(common_structure=True, mapping=...)`` draws what it drew.

A mapping is a nested dict as OpenDelta's ``structure_mapping.py`` writes them. At each level, a key is a
module's dotted name relative to the last mapped module above it (``"bert.encoder"``, ``"self.query"``) and its
value a dict whose ``"__name__"`` is the common name, and whose other keys map the modules below. ``"$"`` stands
for any child (the layers of a stack: their own names kept). A common name with dots puts the module under
virtual modules (``"ff.w1"``); two modules given one common name become one (their parameters and children
together); a common name ``""`` means the module has none: it keeps its dotted name, drawn faint (bigmodelvis:
grey), or is left out with ``only_common``. A module no key names disappears and its children are looked up
with its name in front (``"self."`` then ``"self.query"``). Plain data: no torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .tree import ModelTree, ModuleNode

__all__ = ["VIRTUAL_TYPE", "common_tree", "mapping_dict"]

#: The class a virtual module (made for a dotted common name) is shown with, as bigmodelvis shows it.
VIRTUAL_TYPE = "Virtual"
#: A mapping key that matches any child.
ANY = "$"
NAME = "__name__"


def mapping_dict(mapping: Any) -> Mapping[str, Any]:
    """The nested dict of ``mapping``: a dict, or OpenDelta's ``CommonStructureMap`` (its ``.mapping``)."""
    inner = getattr(mapping, "mapping", mapping)
    if not isinstance(inner, Mapping):
        raise TypeError(
            f"mapping must be a dict (as OpenDelta's structure_mapping.py writes them), not {type(mapping).__name__}"
        )
    return inner


def _own(module: ModuleNode, name: str) -> ModuleNode:
    """A new node for ``module`` under ``name``: its class and its own parameters, no children yet (the input
    tree shares nodes between places, so it is never changed)."""
    return replace(module, name=name, params=list(module.params), children=[])


def _child(parent: ModuleNode, name: str) -> ModuleNode | None:
    return next((child for child in parent.children if child.name == name), None)


def _place(parent: ModuleNode, common: str, module: ModuleNode) -> ModuleNode:
    """Where ``module`` goes under ``parent`` with its common name: under virtual modules for a dotted name, into
    a module already there of the same name (its class then the module's), else a new one."""
    *above, last = common.split(".")
    for part in above:
        found = _child(parent, part)
        if found is None:
            found = ModuleNode(part, VIRTUAL_TYPE)
            parent.children.append(found)
        parent = found
    existing = _child(parent, last) if not above else None
    if existing is not None:  # two modules of one common name: one module (bigmodelvis keeps the later class)
        existing.type_name, existing.type_path, existing.type_label = (
            module.type_name,
            module.type_path,
            module.type_label,
        )
        existing.params.extend(module.params)
        return existing
    made = _own(module, last)
    parent.children.append(made)
    return made


def _build(top: ModuleNode, mapping: Mapping[str, Any], out: ModuleNode, only_common: bool) -> None:
    """Place the modules below ``top`` under ``out`` by ``mapping``, depth first and in order, as bigmodelvis
    does (a later module may join one an earlier module made: ``output`` into the ``ff`` of ``intermediate.dense``)."""
    # Each entry: a module, the mapping that applies to it, where it goes, and the dotted names of the unmapped
    # modules between it and the last mapped module above.
    top_out = out
    stack = [(child, mapping, out, "") for child in reversed(top.children)]
    missed: list[str] = []  # modules with parameters that no key reached: their parameters are not shown
    while stack:
        module, mapping, out, query = stack.pop()
        name = query + module.name
        if name in mapping:
            entry = mapping[name]
            common = entry[NAME]
            if common == "":
                if only_common:
                    continue
                placed = _own(module, name)
                placed.common = False
                out.children.append(placed)
            else:
                placed = _place(out, common, module)
            below = [(child, entry, placed, "") for child in module.children]
        elif ANY in mapping:
            placed = _own(module, module.name)
            out.children.append(placed)
            below = [(child, mapping[ANY], placed, "") for child in module.children]
        else:  # not mapped: it disappears, and its children are looked up with its name in front
            if not module.children and module.params:
                missed.append(f"{name} (under {'the root' if out is top_out else out.name})")
            below = [(child, mapping, out, name + ".") for child in module.children]
        stack.extend(reversed(below))
    if missed:  # bigmodelvis warns once per module ("Is your mapping correct?"): one warning here
        listed = ", ".join(missed[:5]) + (f" and {len(missed) - 5} more" if len(missed) > 5 else "")
        warnings.warn(
            f"the mapping reaches no common name for {len(missed)} parameter module(s): {listed}", stacklevel=4
        )


def _prune(root: ModuleNode) -> ModuleNode:
    """Leave out modules with neither parameters nor children left (a common structure holds parameters)."""
    order = root.places(leaves_first=True)
    for _, node in order:
        node.children = [child for child in node.children if child.params or child.children]
    return root


def common_tree(tree: ModelTree, mapping: Any, *, only_common: bool = False) -> ModelTree:
    """``tree`` under the common names of ``mapping`` (see the module's description); with ``only_common``, the
    modules without a common name are left out."""
    inner = mapping_dict(mapping)
    root = _own(tree.root, tree.root.name)
    _build(tree.root, inner, root, only_common)
    return tree.with_root(_prune(root))
