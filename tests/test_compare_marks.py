"""Each mark of a comparison on small models, read from the compared tree's data: parameters added, removed, moved
(and where from), changed (state, shape, dtype), modules removed or retyped, the alignment of a wrapped model, and
the counts. Written for what the mutation run (``make mutation``) found no test of."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sphinx_modelvis import build_tree
from sphinx_modelvis.capture import Capture, TextBlock, TreeBlock
from sphinx_modelvis.compare import compare_captures, compare_named, compare_trees, figure_key, last_tree
from sphinx_modelvis.errors import ModelvisError
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo


def marks(node: ModuleNode) -> list[tuple[str, str, str]]:
    """Each parameter of ``node``: its name, its mark and what it was."""
    return [(param.name, param.change, param.was) for param in node.params]


def child(node: ModuleNode, path: str) -> ModuleNode:
    """The module at the dotted ``path`` below ``node``."""
    for name in path.split("."):
        (node,) = [found for found in node.children if found.name == name]
    return node


def holder(**modules: nn.Module) -> nn.Module:
    """A module holding ``modules`` under their names, in that order."""
    module = nn.Module()
    for name, value in modules.items():
        module.add_module(name, value)
    return module


def test_a_parameter_removed_or_added_in_a_module_that_stays_and_parameters_made_tunable_again() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    before = build_tree(model)
    model[0].requires_grad_(True)
    model[1].bias = None
    model[1].scale = nn.Parameter(torch.ones(2))
    compared = compare_trees(before, build_tree(model))
    assert marks(child(compared.root, "0")) == [("weight", "changed", "frozen"), ("bias", "changed", "frozen")]
    assert marks(child(compared.root, "1")) == [("weight", "", ""), ("scale", "added", ""), ("bias", "removed", "")]
    changes = compared.changes
    assert changes is not None
    assert (changes.added, changes.removed, changes.frozen, changes.unfrozen, changes.unchanged) == (2, 2, 0, 20, 8)
    assert changes.modules_unchanged == 1, "the root: its own line has no change"


def test_a_parameter_no_longer_delta_changes_its_state_but_not_whether_it_is_trained() -> None:
    class Adapter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Linear(4, 2)

    def model(delta: bool) -> nn.Module:
        adapter = Adapter()
        if delta:
            adapter._is_delta = True  # type: ignore[assignment]
        return holder(base=nn.Linear(4, 4), adapter=adapter)

    merged = compare_trees(build_tree(model(True)), build_tree(model(False)))
    assert marks(child(merged.root, "adapter.down")) == [("weight", "changed", "delta"), ("bias", "changed", "delta")]
    assert merged.changes is not None
    assert (merged.changes.frozen, merged.changes.unfrozen, merged.changes.delta) == (0, 0, 0)
    adapted = compare_trees(build_tree(model(False)), build_tree(model(True)))
    assert marks(child(adapted.root, "adapter.down"))[0] == ("weight", "changed", "tunable")
    assert adapted.changes is not None and adapted.changes.delta == 10


def test_a_shape_not_known_before_and_a_retyped_module() -> None:
    model = nn.Sequential(nn.LazyLinear(2))
    before = build_tree(model)
    model(torch.ones(1, 3))  # LazyLinear becomes a Linear of known shape
    compared = compare_trees(before, build_tree(model))
    assert marks(child(compared.root, "0")) == [("weight", "changed", "[?]"), ("bias", "changed", "[?]")]
    assert child(compared.root, "0").was_type == "LazyLinear"


def test_a_model_of_one_module_is_compared_at_its_root() -> None:
    model = nn.Linear(4, 4)
    before = build_tree(model)
    model.weight.requires_grad = False
    compared = compare_trees(before, build_tree(model))
    assert marks(compared.root) == [("weight", "changed", "tunable"), ("bias", "", "")]


def test_a_wrapped_model_is_aligned_where_it_stands_even_when_one_path_meets() -> None:
    before = build_tree(nn.Sequential(nn.Linear(4, 4)))
    compared = compare_trees(before, build_tree(holder(model=nn.Sequential(nn.Linear(4, 4)))))
    assert child(compared.root, "model").change == "", "the wrapper's place is not marked added"
    assert child(compared.root, "model.0").change == ""
    assert compared.changes is not None and compared.changes.added == 0


def test_two_equally_good_alignments_take_the_shallower() -> None:
    before = build_tree(nn.Sequential(nn.Linear(4, 4)))
    after = holder(a=holder(c=nn.Sequential(nn.Linear(4, 4))), b=nn.Sequential(nn.Linear(4, 4)))
    compared = compare_trees(before, build_tree(after))
    assert child(compared.root, "b.0").change == ""
    assert child(compared.root, "a.c.0").change == "added"


def test_the_root_of_a_wrapped_model_keeps_its_own_parameters() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(4))
            self.linear = nn.Linear(4, 4)

    compared = compare_trees(build_tree(Scaled()), build_tree(holder(model=Scaled())))
    assert marks(child(compared.root, "model")) == [("scale", "", "")]


class LoraLike(nn.Module):
    """A wrapper keeping the original layer as ``base_layer`` beside an adapter of the same shape."""

    def __init__(self) -> None:
        super().__init__()
        self.base_layer = nn.Linear(4, 4)
        self.adapter = nn.Linear(4, 4)


def test_a_weight_of_the_root_moved_into_a_wrapper_says_it_came_from_the_parent() -> None:
    compared = compare_trees(build_tree(nn.Linear(4, 4)), build_tree(LoraLike()))
    assert marks(compared.root) == [], "moved, not removed"
    assert marks(child(compared.root, "base_layer")) == [("weight", "moved", "../weight"), ("bias", "moved", "../bias")]
    assert marks(child(compared.root, "adapter")) == [("weight", "added", ""), ("bias", "added", "")]
    deeper = compare_trees(build_tree(nn.Linear(4, 4)), build_tree(holder(inner=LoraLike())))
    assert marks(child(deeper.root, "inner.base_layer"))[0] == ("weight", "moved", "../../weight")


def test_a_moved_weight_is_looked_for_under_a_wrapper_first_then_nearest() -> None:
    before = build_tree(holder(head=nn.Linear(4, 4)))
    compared = compare_trees(before, build_tree(holder(head=LoraLike())))
    assert marks(child(compared.root, "head.base_layer"))[0] == ("weight", "moved", "../weight")
    assert marks(child(compared.root, "head.adapter"))[0] == ("weight", "added", "")
    # Neither under a wrapper, at the same depth: one of them, chosen without comparing the parameters themselves.
    plain = compare_trees(before, build_tree(holder(head=holder(x=nn.Linear(4, 4), y=nn.Linear(4, 4)))))
    assert sorted(marks(child(plain.root, f"head.{name}"))[0][1] for name in "xy") == ["added", "moved"]


def test_a_weight_moves_at_most_two_levels_down_and_only_with_its_name_and_shape() -> None:
    before = build_tree(holder(head=nn.Linear(4, 4)))
    two = compare_trees(before, build_tree(holder(head=holder(inner=holder(base_layer=nn.Linear(4, 4))))))
    assert marks(child(two.root, "head.inner.base_layer"))[0] == ("weight", "moved", "../../weight")
    three = compare_trees(before, build_tree(holder(head=holder(a=holder(b=holder(c=nn.Linear(4, 4)))))))
    assert marks(child(three.root, "head.a.b.c"))[0] == ("weight", "added", "")
    assert marks(child(three.root, "head"))[0] == ("weight", "removed", "")
    reshaped = compare_trees(before, build_tree(holder(head=holder(base_layer=nn.Linear(4, 2)))))
    assert marks(child(reshaped.root, "head.base_layer"))[0] == ("weight", "added", "")
    assert marks(child(reshaped.root, "head"))[0] == ("weight", "removed", "")


def test_every_difference_of_a_parameter_is_said() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    before = build_tree(model)
    model[0].requires_grad_(False)
    model[0].to(torch.bfloat16)
    compared = compare_trees(before, build_tree(model))
    assert marks(child(compared.root, "0"))[0] == ("weight", "changed", "tunable, float32")


def test_every_parameter_removed_from_a_module_is_marked_and_counted() -> None:
    def tree(*params: ParamInfo) -> ModelTree:
        return ModelTree(ModuleNode("root", "Net", [], [ModuleNode("0", "Block", list(params))]))

    compared = compare_trees(tree(ParamInfo("w", (4, 4)), ParamInfo("b", (4,))), tree())
    assert marks(child(compared.root, "0")) == [("w", "removed", ""), ("b", "removed", "")]
    assert compared.changes is not None and compared.changes.removed == 20


def test_a_parameter_moves_to_one_place_only() -> None:
    # Both ``p`` and ``p.c`` lost their weight; the one place it is found now takes the first of them (parents
    # first), and the other is removed.
    weight = ParamInfo("weight", (4, 4))
    c_before = ModuleNode("c", "Linear", [weight])
    before = ModelTree(ModuleNode("root", "Net", [], [ModuleNode("p", "Block", [weight], [c_before])]))
    base = ModuleNode("base_layer", "Linear", [weight])
    after = ModelTree(
        ModuleNode("root", "Net", [], [ModuleNode("p", "Block", [], [ModuleNode("c", "LoraLinear", [], [base])])])
    )
    compared = compare_trees(before, after)
    assert marks(child(compared.root, "p.c.base_layer")) == [("weight", "moved", "../../weight")]
    assert marks(child(compared.root, "p.c")) == [("weight", "removed", "")]


def test_what_is_removed_is_counted_once_whether_a_parameter_or_a_module() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    before = build_tree(model)
    model[0].bias = None
    del model[1]
    compared = compare_trees(before, build_tree(model))
    assert compared.changes is not None and compared.changes.removed == 4 + 10


def test_a_removed_module_comes_back_whole_with_its_labels() -> None:
    weight = ParamInfo("weight", (4, 4))
    removed = ModuleNode(
        "q", "Linear", [weight], [], shared_with="k", type_path="peft.tuners.lora.Linear", type_label="lora.Linear"
    )
    before = ModelTree(ModuleNode("root", "Block", [], [ModuleNode("k", "Linear", [weight]), removed]))
    after = ModelTree(ModuleNode("root", "Block", [], [ModuleNode("k", "Linear", [weight])]))
    ghost = child(compare_trees(before, after).root, "q")
    assert (ghost.change, ghost.shared_with, ghost.type_path, ghost.type_label) == (
        "removed",
        "k",
        "peft.tuners.lora.Linear",
        "lora.Linear",
    )
    assert marks(ghost) == [("weight", "removed", "")]
    # A removed container is marked itself, not only through its parameters (it has none).
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 2), nn.LayerNorm(2)))
    container = child(compare_trees(build_tree(model), build_tree(model[:1])).root, "1")
    assert (container.change, [part.change for part in container.children]) == ("removed", ["removed", "removed"])


def test_a_module_kept_keeps_its_sharing_and_its_class_path() -> None:
    def tree() -> ModelTree:
        shared = ModuleNode("b", "Linear", [ParamInfo("weight", (2, 2))], shared_with="a", type_path="x.Linear")
        return ModelTree(
            ModuleNode("root", "Block", [], [ModuleNode("a", "Linear", [ParamInfo("weight", (2, 2))]), shared])
        )

    kept = child(compare_trees(tree(), tree()).root, "b")
    assert (kept.change, kept.shared_with, kept.type_path) == ("", "a", "x.Linear")


def test_a_class_told_apart_only_by_its_path_is_a_retyped_module() -> None:
    def tree(path: str) -> ModelTree:
        return ModelTree(
            ModuleNode("root", "Block", [], [ModuleNode("0", "Linear", [ParamInfo("w", (2,))], type_path=path)])
        )

    assert child(compare_trees(tree("a.Linear"), tree("b.Linear")).root, "0").was_type == "Linear"
    assert child(compare_trees(tree("a.Linear"), tree("a.Linear")).root, "0").was_type == ""


def test_changes_only_keeps_a_module_whose_class_alone_changed() -> None:
    class MyLinear(nn.Linear):
        pass

    before = build_tree(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    compared = compare_trees(before, build_tree(nn.Sequential(MyLinear(4, 4), nn.Linear(4, 2))), changes_only=True)
    assert [(node.name, node.was_type) for node in compared.root.children] == [("0", "Linear"), ("1", "")]


@pytest.mark.parametrize("expand_params", [False, True])
def test_the_compared_tree_keeps_how_the_later_one_is_drawn(expand_params: bool) -> None:
    model = nn.Sequential(nn.Linear(4, 4)).to(torch.bfloat16)
    before = build_tree(model, expand_params=expand_params)
    after = build_tree(model, expand_params=expand_params)
    compared = compare_trees(before, after)
    assert (compared.dominant_dtype, compared.expand_params) == (after.dominant_dtype, expand_params)
    assert compared.dominant_dtype == "bfloat16"


# -- what a host does for ``:compare: NAME`` ----------------------------------------------------------------------


def figure(*blocks: TextBlock | TreeBlock) -> Capture:
    return Capture(list(blocks))


def test_a_figure_is_marked_against_the_last_tree_of_the_named_one_and_keeps_its_other_blocks() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    first, last = build_tree(nn.Sequential(nn.Linear(4, 2))), build_tree(model)
    named = {"the base": figure(TreeBlock(first), TextBlock("between\n"), TreeBlock(last))}
    model[0].requires_grad_(False)
    later = TreeBlock(build_tree(model), rootname="net", max_depth=3, summary=False)
    compared = compare_named(figure(TextBlock("printed\n"), later), named, "The   Base", changes_only=True)
    text, tree = compared.blocks
    assert text == TextBlock("printed\n")
    assert isinstance(tree, TreeBlock)
    assert (tree.rootname, tree.max_depth, tree.summary) == ("net", 3, False)
    assert marks(child(tree.tree.root, "0")) == [("weight", "changed", "tunable"), ("bias", "changed", "tunable")]
    assert tree.tree.changes is not None and tree.tree.changes.changes_only
    whole = compare_named(figure(later), named, "the base").blocks[0]
    assert isinstance(whole, TreeBlock) and whole.tree.changes is not None
    assert not whole.tree.changes.changes_only, "every module shown unless asked otherwise"
    direct = compare_captures(named["the base"], figure(later), name="the base").blocks[0]
    assert isinstance(direct, TreeBlock) and direct.tree.changes is not None and not direct.tree.changes.changes_only


def test_compare_says_what_is_missing() -> None:
    tree = figure(TreeBlock(build_tree(nn.Linear(2, 2))))
    printed = figure(TextBlock("no tree here\n"))
    with pytest.raises(ModelvisError, match=r"^later: no earlier figure of this page has that :name: \(the figures "):
        compare_named(tree, {"a": tree, "b": tree}, "later")
    with pytest.raises(ModelvisError, match=r"\(the figures named above: a, b\)$"):
        compare_named(tree, {"b": tree, "a": tree}, "later")
    with pytest.raises(ModelvisError, match=r"\(the figures named above: none has a :name: yet\)$"):
        compare_named(tree, {}, "x")
    with pytest.raises(ModelvisError, match=r"^the figure 'text' shows no model tree to compare with$"):
        compare_named(tree, {"text": printed}, "text")
    with pytest.raises(ModelvisError, match=r"^this figure shows no model tree to compare with 'base'$"):
        compare_named(printed, {"base": tree}, "base")


def test_names_match_as_docutils_matches_them() -> None:
    assert figure_key("  The\tBASE  model ") == "the base model"
    assert last_tree(figure(TextBlock("x"))) is None
