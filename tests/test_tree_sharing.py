"""Equality of built trees, whose identical subtrees are one shared node object, does work per node object, not per
place (found missing by the mutation run: no test saw the shortcuts)."""

from __future__ import annotations

from typing import Any

from sphinx_modelvis.tree import ModuleNode, ParamInfo


class CountedParams(list[ParamInfo]):
    """A parameter list that counts how often equality compares it: one count per pair of nodes compared."""

    compared = 0

    def __eq__(self, other: Any) -> bool:
        CountedParams.compared += 1
        return list.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


def ladder(depth: int) -> ModuleNode:
    """``depth`` levels, each holding the next level twice: 2**depth places, ``depth + 1`` node objects."""
    node = ModuleNode("leaf", "Leaf", CountedParams([ParamInfo("w", (1,))]))
    for level in range(depth):
        node = ModuleNode(f"l{level}", "Level", CountedParams([ParamInfo("w", (level + 2,))]), children=[node, node])
    return node


def test_shared_nodes_are_compared_once_not_once_per_place() -> None:
    left, right = ladder(16), ladder(16)
    assert left is not right
    CountedParams.compared = 0
    assert left == right
    assert CountedParams.compared == 17, "one comparison per pair of node objects, not one per place (65,535)"


def test_a_tree_equals_itself_without_comparing_its_fields() -> None:
    tree = ladder(16)
    CountedParams.compared = 0
    # The shortcut for a node compared with itself is what is tested.
    assert tree == tree
    assert CountedParams.compared == 0


def test_a_difference_deep_under_shared_nodes_is_found() -> None:
    left, right = ladder(8), ladder(8)
    node = right
    while node.children:
        node = node.children[0]
    node.params[0] = ParamInfo("w", (9,))
    assert left != right


def test_a_difference_beside_a_shared_subtree_is_found() -> None:
    # The pair of one shared node is skipped; the pairs after it must still be compared.
    shared = ModuleNode("fc", "Linear", [ParamInfo("w", (2,))])
    left = ModuleNode("root", "Net", children=[ModuleNode("a", "Linear", [ParamInfo("w", (3,))]), shared])
    right = ModuleNode("root", "Net", children=[ModuleNode("a", "Linear", [ParamInfo("w", (4,))]), shared])
    assert left != right


def test_places_lists_every_place_in_model_order_with_its_path() -> None:
    fc = ModuleNode("fc", "Linear", [ParamInfo("w", (2,))])
    root = ModuleNode(
        "root",
        "Net",
        children=[
            ModuleNode("a", "Block", children=[fc, ModuleNode("act", "ReLU")]),
            ModuleNode("b", "Block", children=[fc]),
        ],
    )
    assert [path for path, _node in root.places()] == ["", "a", "a.fc", "a.act", "b", "b.fc"]
    assert [path for path, _node in root.places(leaves_first=True)] == ["a.fc", "a.act", "a", "b.fc", "b", ""]
    assert dict(root.places())["b.fc"] is fc, "a shared node stands in each of its places"


def test_distinct_lists_each_node_object_once_children_first() -> None:
    fc = ModuleNode("fc", "Linear", [ParamInfo("w", (2,))])
    act = ModuleNode("act", "ReLU")
    block = ModuleNode("block", "Block", children=[fc, act, fc])
    root = ModuleNode("root", "Net", children=[block, fc, block])
    assert [node.name for node in root.distinct()] == ["fc", "act", "block", "root"]
    assert [node.name for node in ladder(3).distinct()] == ["leaf", "l0", "l1", "l2"]
