"""The tree's JSON refuses what it cannot read with a message that says why (found missing by the mutation run)."""

from __future__ import annotations

import pytest

from sphinx_modelvis.tree import TREE_FORMAT_VERSION, ModelTree, ModuleNode, ParamInfo


@pytest.mark.parametrize(
    "items",
    [
        # A node that is its own child: the index equal to its place is out of range too, and must be refused as
        # bad JSON, not end in an IndexError.
        [{"name": "root", "type": "Net", "c": [0]}],
        [{"name": "a", "type": "A"}, {"name": "root", "type": "Net", "c": [2]}],
        [{"name": "a", "type": "A"}, {"name": "root", "type": "Net", "c": [-1]}],
    ],
)
def test_a_node_naming_a_child_not_given_before_it_is_refused(items: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError) as error:
        ModuleNode.from_json(items)
    assert str(error.value) == "model tree JSON names a child before it is given"


def test_a_node_list_without_nodes_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        ModuleNode.from_json([])
    assert str(error.value) == "model tree JSON has no node"
    with pytest.raises(ValueError) as error:
        ModelTree.from_json({"version": TREE_FORMAT_VERSION, "dominant_dtype": "float32", "root": []})
    assert str(error.value) == "model tree JSON has no node"


def test_children_are_read_from_their_places_in_the_list() -> None:
    items = [{"name": "fc", "type": "Linear"}, {"name": "root", "type": "Net", "c": [0, 0]}]
    root = ModuleNode.from_json(items)
    assert [child.name for child in root.children] == ["fc", "fc"]
    assert root.children[0] is root.children[1], "a node written once and used twice stays shared"
    assert root.to_json() == items


def test_the_json_is_compact_and_keeps_names_as_written() -> None:
    # Trees go into the cache and into every page that shows one: no spaces, and a name that is not ASCII
    # stays as written (not a six-character escape per letter).
    tree = ModelTree(ModuleNode("层", "Net", [ParamInfo("w", (2, 3))]))
    assert tree.to_json() == (
        f'{{"version":{TREE_FORMAT_VERSION},"dominant_dtype":"float32","expand_params":false,'
        '"root":[{"name":"层","type":"Net","params":[{"name":"w","shape":[2,3]}]}]}'
    )


def test_a_tree_is_read_from_its_dict_as_well_as_its_text() -> None:
    tree = ModelTree(ModuleNode("root", "Net", [ParamInfo("w", (2, 3))]), expand_params=True)
    assert ModelTree.from_json(tree.to_dict()) == tree
    assert ModelTree.from_json(tree.to_json()) == tree


@pytest.mark.parametrize(
    ("version", "shown"), [(TREE_FORMAT_VERSION - 1, str(TREE_FORMAT_VERSION - 1)), (None, "None")]
)
def test_json_of_another_format_is_refused_naming_both_formats(version: int | None, shown: str) -> None:
    data = ModelTree(ModuleNode("root", "Net")).to_dict()
    if version is None:
        del data["version"]
    else:
        data["version"] = version
    with pytest.raises(ValueError) as error:
        ModelTree.from_json(data)
    assert str(error.value) == f"model tree JSON of format {shown}, expected {TREE_FORMAT_VERSION}"
