"""Folding's helpers on hand-made trees: leaving out the modules that own no parameter (what stays, and that it
stays whole), the depth cut, the counts. Written for what the mutation run (``make mutation``) found no test of."""

from __future__ import annotations

from dataclasses import replace

from sphinx_modelvis.folding import drop_parameter_free, fold_siblings, format_count, summarize
from sphinx_modelvis.tree import ModuleNode, ParamInfo


def leaf(name: str) -> ModuleNode:
    return ModuleNode(name, "Linear", [ParamInfo("weight", (2, 2))])


def test_a_container_stays_for_what_it_holds_and_every_field_of_what_stays_is_kept() -> None:
    marked = ModuleNode(
        "q",
        "Linear",
        [ParamInfo("weight", (2, 2), change="changed", was="tunable")],
        type_path="peft.tuners.lora.Linear",
        type_label="lora.Linear",
        change="added",
        was_type="Linear",
        calls=2,
        output="[1, 2]",
    )
    box = ModuleNode("box", "Sequential", children=[marked, ModuleNode("drop", "Dropout")])
    root = ModuleNode("root", "Net", children=[box, ModuleNode("act", "ReLU")])
    assert drop_parameter_free(root) == replace(root, children=[replace(box, children=[marked])])


def test_a_parameter_free_module_shown_again_stays_where_its_first_place_stays() -> None:
    # Its first place is nested (``body.embed``), and the second place is met after it.
    body = ModuleNode("body", "Sequential", children=[ModuleNode("embed", "Block", children=[leaf("w")])])
    again = ModuleNode("again", "Block", shared_with="body.embed")
    gone = ModuleNode("gone", "Block", shared_with="lost")
    root = ModuleNode("root", "Net", children=[ModuleNode("lost", "Dropout"), body, again, gone])
    assert [child.name for child in drop_parameter_free(root).children] == ["body", "again"]


def test_a_module_shown_again_inside_itself_stays() -> None:
    # A cycle: ``outer.inner.back`` is ``outer`` again. Children are decided before their parents, so
    # ``outer`` is not decided yet when ``back`` is: it stays because it lies inside ``outer``.
    back = ModuleNode("back", "Outer", shared_with="outer")
    outer = ModuleNode("outer", "Outer", children=[leaf("w"), ModuleNode("inner", "Block", children=[back])])
    kept = drop_parameter_free(ModuleNode("root", "Net", children=[outer]))
    assert [node.name for node in kept.walk()] == ["root", "outer", "w", "inner", "back"]
    # The root again (its path is empty), from a module that owns nothing itself.
    loop = drop_parameter_free(
        ModuleNode("root", "Net", children=[leaf("w"), ModuleNode("loop", "Net", shared_with="")])
    )
    assert [node.name for node in loop.walk()] == ["root", "w", "loop"]
    # Not inside it: a module shown again whose first place is left out, later, goes too.
    late = ModuleNode("late", "Block", shared_with="outerx")
    other = drop_parameter_free(ModuleNode("root", "Net", children=[ModuleNode("x", "B", children=[late]), leaf("w")]))
    assert [node.name for node in other.walk()] == ["root", "w"]


def test_the_depth_cut_counts_what_each_cut_module_hides() -> None:
    chain = ModuleNode("a", "Block", children=[ModuleNode("b", "Block", children=[leaf("c")])])
    root = ModuleNode("root", "Net", children=[chain, ModuleNode("d", "Block", children=[leaf("e"), leaf("f")])])
    one = fold_siblings(root, max_depth=1)
    assert [(child.names, child.hidden) for child in one.children] == [(["a"], 2), (["d"], 2)]
    two = fold_siblings(root, max_depth=2)
    (a, d) = two.children
    assert a.hidden == 0 and [(child.names, child.hidden) for child in a.children] == [(["b"], 1)]
    assert d.hidden == 0 and [child.names for child in d.children] == [["e", "f"]]


def test_counts() -> None:
    both = ModuleNode("root", "Net", [ParamInfo("a", (2,), delta=True), ParamInfo("b", (3,), delta=True)])
    assert summarize(both).delta == 5
    assert (format_count(999), format_count(1000), format_count(1_000_000)) == ("999", "1.0K", "1.0M")


def test_the_summary_s_json_names_each_count() -> None:
    # summarize() is public (the API guide); its JSON is what a script writes down: each count under its own name.
    params = [
        ParamInfo("lora", (2, 3), delta=True),
        ParamInfo("head", (5,)),
        ParamInfo("base", (7,), requires_grad=False),
    ]
    assert summarize(ModuleNode("root", "Net", params)).to_json() == {
        "total": 18,
        "tunable": 11,
        "frozen": 7,
        "delta": 6,
    }
