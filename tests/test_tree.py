"""The tree data and folding, on trees built by hand (no torch)."""

from __future__ import annotations

import sys
from dataclasses import fields, replace

import pytest

from sphinx_modelvis.folding import (
    LABEL_LIMIT,
    drop_parameter_free,
    fold_siblings,
    format_count,
    format_names,
    summarize,
)
from sphinx_modelvis.rendering import render
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo


def linear(name: str, out: int = 4, inp: int = 4, *, requires_grad: bool = True, dtype: str = "float32") -> ModuleNode:
    return ModuleNode(
        name,
        "Linear",
        [
            ParamInfo("weight", (out, inp), dtype=dtype, requires_grad=requires_grad),
            ParamInfo("bias", (out,), dtype=dtype, requires_grad=requires_grad),
        ],
    )


def block(name: str, **kwargs: object) -> ModuleNode:
    return ModuleNode(name, "Block", children=[linear("fc1", **kwargs), linear("fc2", **kwargs)])  # type: ignore[arg-type]


def text(tree: ModelTree | ModuleNode, **kwargs: object) -> str:
    if isinstance(tree, ModuleNode):
        tree = ModelTree(tree)
    return str(render(tree, format="text", **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([str(i) for i in range(12)], "0-11"),
        (["0", "2", "4", "5"], "0,2,4-5"),
        (["3"], "3"),
        (["0", "1"], "0-1"),
        (["query", "key", "value"], "query,key,value"),
        (["5", "1", "2"], "1-2,5"),
        (["007"], "007"),
        (["1", "01"], "1,01"),
        # Six or more indices with one step are a stride range: from 0 to 10 by 2; five stay listed.
        ([str(i) for i in range(0, 12, 2)], "0,2,…,10"),
        ([str(i) for i in range(0, 10, 2)], "0,2,4,6,8"),
        ([str(i) for i in range(1, 120000, 2)], "1,3,…,119999"),
        ([*map(str, range(12)), *map(str, range(20, 100, 3))], "0-11,20,23,…,98"),
        # Past LABEL_LIMIT characters: the first names, how many are left out, the last name.
        ([str(i * i) for i in range(3000)], "0-1,4,9,16,25,36,49,64,81,100,121,144,…(2986 more),8994001"),
        ([f"n{i}" for i in range(100)], "n0,n1,n2,n3,n4,n5,n6,n7,n8,n9,n10,n11,n12,…(86 more),n99"),
    ],
)
def test_format_names(names: list[str], expected: str) -> None:
    assert format_names(names) == expected
    assert len(expected) <= LABEL_LIMIT


def test_alternating_siblings_make_short_lines_and_a_small_svg() -> None:
    # 120,000 modules of two kinds in turn: two folded lines, each a stride range, not every index.
    layers = [
        ModuleNode(str(i), "Linear" if i % 2 == 0 else "Conv", [ParamInfo("weight", (4, 4))]) for i in range(120_000)
    ]
    tree = ModelTree(ModuleNode("root", "Net", children=[ModuleNode("layers", "ModuleList", children=layers)]))
    lines = text(tree).splitlines()
    assert lines[2:4] == ["    ├── 0,2,…,119998 (Linear) weight:[4, 4]", "    └── 1,3,…,119999 (Conv) weight:[4, 4]"]
    assert max(map(len, lines)) <= 100
    assert len(str(render(tree, format="svg"))) < 10_000  # the figure of four short lines (it was 731 KB)


def test_a_long_group_of_any_names_shows_a_bounded_label() -> None:
    squares = {i * i for i in range(400)}  # no step to write them with: the label leaves most out
    children = [linear(str(i), out=3 if i in squares else 4) for i in range(160_000)]
    names = [f"name{i}" for i in range(500)]
    children += [ModuleNode(name, "Dropout", [ParamInfo("p", (1,))]) for name in names]
    lines = text(ModuleNode("root", "Net", children=children)).splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[1].startswith("├── 0-1,4,9,16,25,36,49,64,81,100,121,144,169,…(385 more),159201 (Linear)")
    assert lines[3].startswith("└── name0,name1,name2,name3,name4,name5,…(493 more),name499 (Dropout)")


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0"), (999, "999"), (1_500, "1.5K"), (109_514_298, "109.5M"), (70_553_706_496, "70.6B"), (2 * 10**12, "2.0T")],
)
def test_format_count(count: int, expected: str) -> None:
    assert format_count(count) == expected


def test_identical_blocks_fold_into_a_range() -> None:
    root = ModuleNode(
        "root", "Net", children=[ModuleNode("layer", "ModuleList", [], [block(str(i)) for i in range(12)])]
    )
    folded = fold_siblings(root)
    (layer,) = folded.children
    (group,) = layer.children
    assert group.label == "0-11" and group.folded
    assert [child.label for child in group.children] == ["fc1,fc2"]


def test_different_types_never_merge() -> None:
    other = linear("1")
    other.type_name = "LoRALinear"
    root = ModuleNode("root", "Seq", children=[linear("0"), other, linear("2")])
    labels = [(child.label, child.node.type_name) for child in fold_siblings(root).children]
    assert labels == [("0,2", "Linear"), ("1", "LoRALinear")]


def test_classes_of_the_same_name_never_merge() -> None:
    plain, adapted = linear("0"), linear("1")
    plain.type_path, adapted.type_path = "torch.nn.Linear", "peft.tuners.lora.Linear"
    root = ModuleNode("root", "Seq", children=[plain, adapted, linear("2")])
    root.children[2].type_path = "torch.nn.Linear"
    assert [child.label for child in fold_siblings(root).children] == ["0,2", "1"]
    assert ModelTree.from_json(ModelTree(root).to_json()).root == root


def test_weights_tied_to_different_places_stay_apart() -> None:
    heads = [
        ModuleNode(name, "Linear", [ParamInfo("weight", (2, 2), tied_to=target)])
        for name, target in (("a", "x.weight"), ("b", "z.weight"), ("c", "x.weight"))
    ]
    out = text(ModuleNode("root", "Heads", children=heads))
    assert "a,c (Linear) weight:[2, 2] (tied to x.weight)" in out
    assert "b (Linear) weight:[2, 2] (tied to z.weight)" in out


def test_partly_frozen_stack_splits_into_groups() -> None:
    layers = [block(str(i), requires_grad=i >= 8) for i in range(12)]
    root = ModuleNode("root", "Net", children=[ModuleNode("layer", "ModuleList", children=layers)])
    groups = fold_siblings(root).children[0].children
    assert [group.label for group in groups] == ["0-7", "8-11"]
    assert "0-7 (Block)" in text(root) and "8-11 (Block)" in text(root)


@pytest.mark.parametrize(
    "change",
    [
        lambda node: setattr(node.children[0].params[0], "shape", (5, 4)),
        lambda node: setattr(node.children[0].params[0], "dtype", "bfloat16"),
        lambda node: setattr(node.children[0].params[0], "delta", True),
        lambda node: setattr(node.children[0].params[0], "name", "w"),
        lambda node: setattr(node.children[0], "name", "fc0"),
        lambda node: setattr(node.children[1], "type_name", "Conv"),
        lambda node: node.children.append(ModuleNode("extra", "Dropout")),
    ],
    ids=["shape", "dtype", "delta", "param-name", "child-name", "child-type", "extra-child"],
)
def test_any_difference_below_keeps_siblings_apart(change: object) -> None:
    odd = block("1")
    change(odd)  # type: ignore[operator]
    root = ModuleNode("root", "Seq", children=[block("0"), odd, block("2")])
    assert [group.label for group in fold_siblings(root).children] == ["0,2", "1"]


def test_non_adjacent_repeats_fold_where_the_first_stands() -> None:
    root = ModuleNode(
        "root", "Net", children=[linear("a"), ModuleNode("norm", "LayerNorm", [ParamInfo("weight", (4,))]), linear("b")]
    )
    lines = text(root).splitlines()
    assert lines[1].endswith("a,b (Linear) weight:[4, 4] bias:[4]")
    assert "norm (LayerNorm)" in lines[2]


def test_root_parameters_are_shown() -> None:
    root = ModuleNode("root", "Net", [ParamInfo("scale", (1,))], [linear("fc")])
    assert text(root).splitlines()[0] == "root scale:[1]"


def test_parameter_free_leaves_and_emptied_containers_are_dropped() -> None:
    root = ModuleNode(
        "root",
        "Net",
        children=[
            linear("fc"),
            ModuleNode("act", "ReLU"),
            ModuleNode("box", "Sequential", children=[ModuleNode("drop", "Dropout"), ModuleNode("act", "GELU")]),
        ],
    )
    pruned = drop_parameter_free(root)
    assert [child.name for child in pruned.children] == ["fc"]
    assert [child.name for child in root.children] == ["fc", "act", "box"], "the input is not changed"


def test_expand_params_puts_each_parameter_on_its_own_line() -> None:
    root = ModuleNode("root", "Net", children=[linear("fc")])
    assert text(ModelTree(root, expand_params=True)) == (
        "root\n"
        "└── fc (Linear)\n"
        "    ├── weight:[4, 4]\n"
        "    └── bias:[4]\n"
        "parameters: 20 total, 20 tunable (100.00%), 0 frozen, 0 delta\n"
    )


def test_shared_module_and_tied_parameter_are_marked_and_counted_once() -> None:
    embed = ModuleNode("embed", "Embedding", [ParamInfo("weight", (100, 8))])
    head = ModuleNode(
        "head", "Linear", [ParamInfo("weight", (100, 8), tied_to="embed.weight"), ParamInfo("bias", (100,))]
    )
    again = ModuleNode("again", "Embedding", shared_with="embed")
    root = ModuleNode("root", "LM", children=[embed, head, again])
    out = text(root)
    assert "head (Linear) weight:[100, 8] (tied to embed.weight) bias:[100]" in out
    assert "again (Embedding) shared with embed" in out
    assert summarize(root).total == 100 * 8 + 100
    assert drop_parameter_free(root).children[-1].shared_with == "embed", "a shared module whose original stays, stays"


def test_summary_line_counts_tunable_frozen_and_delta() -> None:
    root = ModuleNode(
        "root",
        "Net",
        children=[
            linear("frozen", requires_grad=False),
            ModuleNode("adapter", "Linear", [ParamInfo("weight", (2, 4), delta=True)]),
        ],
    )
    summary = summarize(root)
    assert (summary.total, summary.tunable, summary.frozen, summary.delta) == (28, 8, 20, 8)
    assert text(root).splitlines()[-1] == "parameters: 28 total, 8 tunable (28.57%), 20 frozen, 8 delta"


def test_buffers_are_shown_but_not_counted() -> None:
    root = ModuleNode(
        "root", "BN", [ParamInfo("weight", (4,)), ParamInfo("running_mean", (4,), requires_grad=False, buffer=True)]
    )
    assert summarize(root).total == 4
    assert "running_mean:[4]" in text(root)


def test_other_dtypes_are_shown_on_the_parameter() -> None:
    root = ModuleNode("root", "Net", children=[linear("fc"), linear("half", dtype="bfloat16")])
    out = text(ModelTree(root, dominant_dtype="float32"))
    assert "half (Linear) weight:[4, 4] bf16 bias:[4] bf16" in out
    assert "fc (Linear) weight:[4, 4] bias:[4]\n" in out


def test_unknown_shape_is_shown() -> None:
    root = ModuleNode("root", "LazyLinear", [ParamInfo("weight", None), ParamInfo("bias", None)])
    assert text(root).splitlines()[0] == "root weight:[?] (uninitialized) bias:[?] (uninitialized)"


def test_max_depth_cuts_and_counts_what_is_hidden() -> None:
    root = ModuleNode(
        "root", "Net", children=[ModuleNode("layer", "ModuleList", children=[block(str(i)) for i in range(3)])]
    )
    out = text(ModelTree(root)).splitlines()
    assert len(out) > 3
    cut = fold_siblings(root, max_depth=1)
    assert cut.children[0].hidden == 9 and not cut.children[0].children


def test_long_lines_wrap_under_their_module() -> None:
    params = [ParamInfo(f"p{i}", (1024, 1024)) for i in range(8)]
    root = ModuleNode("root", "Net", children=[ModuleNode("wide", "Thing", params), linear("fc")])
    lines = text(root, width=60).splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert lines[1].startswith("├── wide (Thing) p0:[1024, 1024]")
    assert lines[2].startswith("│       p2:[1024, 1024]"), "continued four columns right of the name"


def test_json_round_trip() -> None:
    root = ModuleNode(
        "root",
        "Net",
        [ParamInfo("scale", (1,), dtype="bfloat16", requires_grad=False)],
        [
            linear("fc"),
            ModuleNode("lazy", "LazyLinear", [ParamInfo("weight", None, delta=True, tied_to="x.y")]),
            ModuleNode("again", "Linear", shared_with="fc"),
        ],
    )
    tree = ModelTree(root, dominant_dtype="float32", expand_params=True)
    assert ModelTree.from_json(tree.to_json()) == tree
    assert ModelTree.from_json(tree.to_json()) != ModelTree(root)


def chain(depth: int) -> ModuleNode:
    root = node = ModuleNode("root", "Chain")
    for i in range(depth):
        child = ModuleNode("inner", f"Level{i % 3}", [ParamInfo("weight", (i + 1,))])
        node.children.append(child)
        node = child
    return root


def test_five_thousand_deep_chain_folds_renders_and_round_trips() -> None:
    assert sys.getrecursionlimit() < 5000
    tree = ModelTree(chain(5000))
    out = text(tree).splitlines()
    assert len(out) == 5002
    assert max(len(line) for line in out) < 120, "deep guides are clipped, lines stay bounded"
    assert out[-2].endswith("inner (Level1) weight:[5000]")
    assert ModelTree.from_json(tree.to_json()) == tree
    assert summarize(tree).total == 5000 * 5001 // 2


def test_wide_model_of_identical_blocks_folds_to_one_line() -> None:
    blocks = [block(str(i)) for i in range(40_000)]
    root = ModuleNode("root", "Wide", children=[ModuleNode("blocks", "ModuleList", children=blocks)])
    assert sum(1 for _ in root.walk()) == 120_002
    lines = text(root).splitlines()
    assert lines[2] == "    └── 0-39999 (Block)"
    assert summarize(root).total == 40_000 * 40


#: A value other than the default for every field of a module but its name and children. A field added to
#: ``ModuleNode`` fails the test below until it has one here, and then is checked like the others.
SAMPLES = {
    "type_name": "Other",
    "type_path": "pkg.Other",
    "type_label": "pkg.Other",
    "params": [ParamInfo("v", (3,))],
    "shared_with": "a",
    "change": "added",
    "was_type": "Linear",
    "calls": 3,
    "output": "[1, 3]",
    "memory": (("bfloat16", 64), ("float32", 8)),
    "training": (64, 256, 128),
    "memory_was": 512,
    "flops": 4096,
    "flops_was": 2048,
    "common": False,
    "target": "adapted",
    "device": "0,1",
    "split": "parameters",
    "tp_style": "colwise",
    "shards": (("w", "colwise", ((1,), (1,))),),
}
#: What each stage that copies a tree works out itself (the others it must carry over as they are).
MADE_BY = {
    "annotate_forward": {"calls", "output"},
    "compare_trees": {"change", "was_type"},
    "annotate_memory": {"memory", "training"},
    "annotate_flops": {"flops"},
    "annotate_targets": {"target"},
    "annotate_devices": {"device", "split"},
    "annotate_shards": {"tp_style", "shards"},
}


@pytest.mark.parametrize("name", [item.name for item in fields(ModuleNode) if item.name not in ("name", "children")])
def test_every_field_of_a_module_travels_through_every_stage(name: str) -> None:
    from sphinx_modelvis.compare import compare_trees
    from sphinx_modelvis.flops import FlopSummary, annotate_flops
    from sphinx_modelvis.forward import annotate_forward
    from sphinx_modelvis.memory import annotate_memory
    from sphinx_modelvis.placement import annotate_devices
    from sphinx_modelvis.placement_summary import PlacementSummary
    from sphinx_modelvis.target_summary import TargetSummary
    from sphinx_modelvis.targets import annotate_targets
    from sphinx_modelvis.tensor_plan import annotate_shards

    value = SAMPLES[name]
    plain = ModuleNode("a", "Linear", [ParamInfo("w", (2,))])
    odd = replace(plain, name="b", **{name: value})
    tree = ModelTree(ModuleNode("root", "Net", children=[plain, odd]))
    assert replace(odd, name="a") != plain, "equality compares it"
    assert [group.label for group in fold_siblings(tree).children] == ["a", "b"], "siblings that differ do not fold"
    again = ModelTree.from_json(tree.to_json())
    assert again == tree and getattr(again.root.children[1], name) == value, "the JSON keeps it"
    copies = {
        "drop_parameter_free": drop_parameter_free(tree.root),
        "annotate_forward": annotate_forward(tree, {}).root,
        "compare_trees": compare_trees(tree, tree).root,
        "annotate_memory": annotate_memory(tree, {}).root,
        "annotate_flops": annotate_flops(tree, {}, FlopSummary()).root,
        "annotate_targets": annotate_targets(tree, {"a": "saved"}, TargetSummary()).root,
        "annotate_devices": annotate_devices(tree, [], {"": 0}, summary=PlacementSummary()).root,
        "annotate_shards": annotate_shards(tree, {}, {}, PlacementSummary(ranks=2)).root,
    }
    for stage, root in copies.items():
        if name not in MADE_BY.get(stage, ()):
            (copied,) = [child for child in root.children if child.name == "b"]
            assert getattr(copied, name) == value, f"{stage} keeps it"
