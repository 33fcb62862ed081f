"""How the forward view says what a module returned: summaries of outputs of any kind, and their text.
Written for what the mutation run (``make mutation``) found no test of."""

from __future__ import annotations

import torch

from sphinx_modelvis.forward import LIMIT, annotate_forward, format_output
from sphinx_modelvis.tracing import ForwardRecord, summarize_output
from sphinx_modelvis.tree import ChangeSummary, ModelTree, ModuleNode


def test_outputs_that_are_not_tensors_and_nesting_deeper_than_three_levels() -> None:
    assert summarize_output(None) == ("x", "None")
    assert summarize_output(3) == ("x", "int")
    t = torch.ones(2)
    assert summarize_output({"a": t, "b": None}) == ("o", "", [("a", ("t", (2,), "float32"))])
    # A tensor is summarized at any depth; a container below the fourth level only by its type.
    deep = (((((t,),),),),)
    assert summarize_output(deep) == ("s", [("s", [("s", [("s", [("x", "tuple")])])])])
    assert summarize_output([{"k": [[[t]]]}]) == ("s", [("o", "", [("k", ("s", [("s", [("x", "list")])]))])])
    assert summarize_output([[[[t]]]]) == ("s", [("s", [("s", [("s", [("t", (2,), "float32")])])])])
    assert format_output(summarize_output((None, 3))) == "(None, int)"


def test_the_text_of_an_output() -> None:
    assert format_output(None) == "?", "a module whose output was not recorded"
    assert format_output(("t", (2,), "float32")) == "[2]", "float32 is the usual dtype unless told otherwise"
    assert format_output(("t", (2,), "uint8")) == "[2] uint8", "a dtype without a short name keeps its own"
    assert format_output(("s", [("t", (2,), "float32")])) == "([2],)", "a tuple of one, as Python writes it"
    assert format_output(("o", "", [("a", ("t", (2,), "float16"))])) == "{a=[2] f16}"


def test_a_long_output_keeps_its_start_and_says_it_goes_on() -> None:
    exactly = ("x", "y" * LIMIT)
    assert format_output(exactly) == "y" * LIMIT
    longer = format_output(("x", "y" * (LIMIT + 5)))
    assert longer == "y" * (LIMIT - 1) + "…" and len(longer) == LIMIT


def test_children_follow_the_order_of_their_first_call_and_a_module_shown_again_has_no_calls() -> None:
    tree = ModelTree(
        ModuleNode(
            "root",
            "Net",
            children=[ModuleNode("b", "Linear"), ModuleNode("a", "Linear"), ModuleNode("c", "Linear", shared_with="a")],
        )
    )
    output = ("t", (1,), "float32")
    records = {"a": ForwardRecord(0, 1, output), "b": ForwardRecord(1, 2, output)}
    annotated = annotate_forward(tree, records).root
    assert [(child.name, child.calls) for child in annotated.children] == [("a", 1), ("b", 2), ("c", -1)]


def test_annotating_keeps_what_the_tree_said_and_shows_outputs_in_the_tree_s_dtype() -> None:
    leaf = ModuleNode(
        "q",
        "Linear",
        shared_with=None,
        type_path="peft.tuners.lora.Linear",
        type_label="lora.Linear",
        change="added",
        was_type="Linear",
    )
    again = ModuleNode("k", "Linear", shared_with="q", type_path="x.Linear")
    idle = ModuleNode("v", "Linear")
    changes = ChangeSummary(added=4)
    tree = ModelTree(
        ModuleNode("root", "Net", children=[leaf, again, idle]),
        dominant_dtype="bfloat16",
        expand_params=True,
        changes=changes,
    )
    records = {"": ForwardRecord(0, 1, ("t", (1,), "bfloat16")), "q": ForwardRecord(1, 1, ("t", (1, 2), "bfloat16"))}
    annotated = annotate_forward(tree, records, inputs=("t", (1,), "bfloat16"), output=("t", (1,), "float32"))
    q, k, v = annotated.root.children
    assert (q.type_path, q.type_label, q.change, q.was_type, q.output) == (
        "peft.tuners.lora.Linear",
        "lora.Linear",
        "added",
        "Linear",
        "[1, 2]",
    )
    assert (k.shared_with, k.type_path, k.calls, k.output) == ("q", "x.Linear", -1, "")
    assert (v.calls, v.output) == (0, ""), "never called: no output"
    assert annotated.forward == "[1] -> [1] f32"
    assert (annotated.dominant_dtype, annotated.expand_params, annotated.changes) == ("bfloat16", True, changes)


def test_the_line_of_the_pass_says_what_it_knows() -> None:
    tree = ModelTree(ModuleNode("root", "Linear"))
    assert annotate_forward(tree, {}).forward == ""
    assert annotate_forward(tree, {}, inputs=("t", (1,), "float32")).forward == "[1] -> ?"
    assert annotate_forward(tree, {}, output=("t", (2,), "float32")).forward == "? -> [2]"
    # The model's output may take two figure lines' worth before it is cut.
    assert annotate_forward(tree, {}, output=("x", "y" * 100)).forward == "? -> " + "y" * 100
    cut = annotate_forward(tree, {}, output=("x", "y" * 200)).forward
    assert cut == "? -> " + "y" * (2 * LIMIT - 1) + "…"
