"""How the forward view says what a module returned: summaries of outputs of any kind, and their text.
Written for what the mutation run (``make mutation``) found no test of."""

from __future__ import annotations

import torch

from sphinx_modelvis.forward import LIMIT, annotate_forward, format_output
from sphinx_modelvis.introspect import ForwardRecord, summarize_output
from sphinx_modelvis.tree import ModelTree, ModuleNode


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
