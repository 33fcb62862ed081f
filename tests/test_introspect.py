"""Building the tree of real torch modules: parameters, sharing, ties, deltas, dtypes, odd parameters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from sphinx_modelvis import build_tree
from sphinx_modelvis.delta import is_delta_module
from sphinx_modelvis.errors import NotAModule
from sphinx_modelvis.folding import fold_siblings, summarize
from sphinx_modelvis.rendering import render
from sphinx_modelvis.tree import ModelTree


def text(model: nn.Module, **kwargs: object) -> str:
    return str(render(build_tree(model, **kwargs), format="text"))  # type: ignore[arg-type]


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.1)


def test_registration_order_parameters_and_pruning() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Dropout(), nn.GELU()), nn.LayerNorm(4))
    assert text(model) == (
        "root\n"
        "├── 0 (Linear) weight:[4, 3] bias:[4]\n"
        "└── 3 (LayerNorm) weight:[4] bias:[4]\n"
        "parameters: 24 total, 24 tunable (100.00%), 0 frozen, 0 delta\n"
    )
    kept = text(model, keep_non_params=True)
    assert "├── 1 (ReLU)\n├── 2 (Sequential)\n│   ├── 0 (Dropout)\n│   └── 1 (GELU)\n" in kept


def test_expand_params_does_not_keep_non_params() -> None:
    out = text(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), expand_params=True)
    assert out.startswith("root\n└── 0 (Linear)\n    ├── weight:[2, 2]\n    └── bias:[2]\n")
    assert "ReLU" not in out


def test_frozen_parameters_split_a_stack() -> None:
    model = nn.Sequential(*(Block() for _ in range(6)))
    for block in list(model)[:4]:
        block.requires_grad_(False)
    out = text(model)
    assert "0-3 (Block)" in out and "4-5 (Block)" in out
    assert "parameters: 120 total, 40 tunable (33.33%), 80 frozen, 0 delta" in out


def test_shared_module_and_tied_weight_are_shown_once() -> None:
    class TiedLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 8)
            self.block = Block()
            self.head = nn.Linear(8, 50, bias=False)
            self.head.weight = self.embed.weight
            self.again = self.block

    model = TiedLM()
    out = text(model)
    assert "head (Linear) weight:[50, 8] (tied to embed.weight)" in out
    assert "again (Block) shared with block" in out
    assert summarize(build_tree(model)).total == sum(p.numel() for p in model.parameters())


def test_root_parameters_and_buffers() -> None:
    model = nn.BatchNorm1d(4)
    assert text(model).splitlines()[0] == "root weight:[4] bias:[4]"
    with_buffers = text(model, show_buffers=True).splitlines()[0]
    assert "running_mean:[4]" in with_buffers and "num_batches_tracked:[] i64" in with_buffers


def test_open_delta_marks_and_delta_predicate() -> None:
    model = nn.Sequential(nn.Linear(4, 4), Block())
    adapter = nn.Linear(4, 2)
    adapter._is_delta = True  # type: ignore[assignment]  # OpenDelta marks inserted modules so
    model[1].add_module("adapter", adapter)
    model[0].weight._is_delta = True  # type: ignore[attr-defined]  # ... and parameters
    tree = build_tree(model)
    summary = summarize(tree)
    assert summary.delta == 4 * 2 + 2 + 16
    by_name = build_tree(model, delta=lambda name, param: name == "1.fc.bias")
    assert summarize(by_name).delta == summary.delta + 4


def test_open_delta_s_mark_is_read_wherever_nn_module_keeps_the_attribute() -> None:
    # ``is_delta_module`` stands for ``getattr(module, "_is_delta", False)``; its shortcut must not miss a mark that
    # nn.Module keeps in its parameters, buffers or children rather than in the instance's dict.
    by_parameter, by_buffer, by_child, empty_child, unmarked = (nn.Linear(2, 2) for _ in range(5))
    by_parameter.register_parameter("_is_delta", nn.Parameter(torch.ones(1)))
    by_buffer.register_buffer("_is_delta", torch.ones(1))
    by_child.add_module("_is_delta", nn.Linear(1, 1))
    empty_child.add_module("_is_delta", nn.Sequential())  # an empty Sequential is falsy, as ``getattr`` says
    plain_types: dict[type, bool] = {}
    answers = [is_delta_module(module, plain_types) for module in (by_parameter, by_buffer, by_child, empty_child)]
    assert answers == [True, True, True, False]
    assert not is_delta_module(unmarked, plain_types)
    # A class with its own mark is never taken for plain; both answers are remembered per class for the next module.
    assert is_delta_module(MarkedByClass(2, 2), plain_types)
    assert plain_types == {nn.Linear: True, MarkedByClass: False}


def test_a_child_marked_in_its_buffers_is_delta_in_the_tree_as_at_the_root() -> None:
    # The tree builder asks each child what the root is asked: a mark nn.Module keeps as a buffer counts there too.
    adapter = nn.Linear(2, 2)
    adapter.register_buffer("_is_delta", torch.ones(1))
    tree = build_tree(nn.Sequential(nn.Linear(2, 2), adapter))
    states = {node.name: {param.name: param.state for param in node.params} for node in tree.root.children}
    assert states == {"0": {"weight": "tunable", "bias": "tunable"}, "1": {"weight": "delta", "bias": "delta"}}


class MarkedByClass(nn.Linear):
    """An adapter class marked delta for all its instances."""

    _is_delta = True


class Forwarding(nn.Module):
    """A wrapper that answers for the module it wraps, as PEFT's wrappers do (``__getattr__`` of its own)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.scale = nn.Parameter(torch.ones(2))

    def __getattr__(self, name: str) -> object:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)


def test_a_wrapper_that_forwards_attributes_to_a_marked_module_is_delta() -> None:
    inner = nn.Linear(2, 2)
    inner._is_delta = True  # type: ignore[assignment]
    # Its own ``scale`` is delta too: the wrapper answers ``_is_delta`` with the inner module's mark.
    assert summarize(build_tree(nn.Sequential(nn.Linear(2, 2), Forwarding(inner)))).delta == 6 + 2
    assert summarize(build_tree(Forwarding(inner))).delta == 6 + 2


def test_peft_s_prompt_encoder_is_delta_and_a_child_named_so_elsewhere_is_not() -> None:
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    config = transformers.BertConfig(
        vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    prompted = peft.get_peft_model(
        transformers.BertModel(config), peft.PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=2)
    )
    tree = build_tree(prompted)
    encoder = next(child for child in tree.root.children if child.name == "prompt_encoder")
    assert {param.state for node in encoder.walk() for param in node.params} == {"delta"}
    assert summarize(tree).delta == sum(p.numel() for p in prompted.parameters() if p.requires_grad) == 2 * 8
    # Only PEFT's model holds an adapter under that name (PEFT is imported here, so its finder is asked).
    own = nn.Module()
    own.prompt_encoder = nn.Linear(2, 2)
    assert summarize(build_tree(own)).delta == 0


def test_dominant_dtype_and_odd_dtypes() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(2, 2).to(torch.bfloat16))
    tree = build_tree(model)
    assert tree.dominant_dtype == "float32"
    assert "1 (Linear) weight:[2, 2] bf16 bias:[2] bf16" in text(model)
    assert build_tree(model.to(torch.float16)).dominant_dtype == "float16"


TIED_DTYPES = """
import torch
from torch import nn
from sphinx_modelvis import build_tree
for first in (torch.float32, torch.bfloat16):
    other = torch.bfloat16 if first is torch.float32 else torch.float32
    model = nn.Sequential(nn.Embedding(10, 4).to(first), nn.Linear(4, 4).to(other), nn.Linear(4, 4).to(other))
    print(build_tree(model).dominant_dtype)
"""


def test_a_tie_of_dtypes_goes_to_the_one_met_first_whatever_the_hash_seed() -> None:
    # 40 elements of each dtype: the figure must not depend on how this Python hashes strings (it did: a set).
    seen = set()
    for seed in range(8):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        done = subprocess.run([sys.executable, "-c", TIED_DTYPES], capture_output=True, text=True, env=env, check=True)
        seen.add(done.stdout)
    assert seen == {"float32\nbfloat16\n"}


def test_lazy_and_odd_parameters_are_shown() -> None:
    model = nn.Sequential(nn.LazyLinear(3), nn.Linear(2, 2))
    model[1].register_parameter("empty", nn.Parameter(torch.empty(0)))
    out = text(model)
    assert "0 (LazyLinear) weight:[?] (uninitialized) bias:[?] (uninitialized)" in out
    assert "empty:[0]" in out


def test_meta_device_counts_without_memory() -> None:
    with torch.device("meta"):
        model = nn.Sequential(*(nn.Linear(8192, 8192) for _ in range(40)))
    tree = build_tree(model)
    assert summarize(tree).total == 40 * (8192 * 8192 + 8192)
    assert fold_siblings(tree).children[0].label == "0-39"


def test_module_dict_keys_stay_literal() -> None:
    model = nn.ModuleDict({"[bold]x": nn.Linear(1, 1), "</text><script>": nn.Linear(2, 2)})
    out = text(model)
    assert "[bold]x (Linear)" in out and "</text><script> (Linear)" in out


def test_very_deep_chain_without_recursion() -> None:
    model: nn.Module = nn.Linear(2, 2)
    for _ in range(5000):
        model = nn.Sequential(model)
    tree = build_tree(model)
    assert summarize(tree).total == 6
    assert text(model).splitlines()[-2].endswith("0 (Linear) weight:[2, 2] bias:[2]")


def test_wide_model_of_120k_modules() -> None:
    with torch.device("meta"):
        model = nn.ModuleList(Block() for _ in range(30_000))
    assert sum(1 for _ in model.modules()) == 120_001
    assert text(model).splitlines()[1] == "└── 0-29999 (Block)"


def test_not_a_module_is_a_clear_error() -> None:
    with pytest.raises(NotAModule, match=r"expected a torch\.nn\.Module, got dict"):
        build_tree({})  # type: ignore[arg-type]


def _classes(module: str, source: str) -> dict[str, object]:
    """Run ``source`` as the body of a module called ``module``, registered in ``sys.modules`` meanwhile."""
    import sys
    import types

    namespace = types.ModuleType(module)
    namespace.nn = nn  # type: ignore[attr-defined]
    sys.modules[module] = namespace
    exec(source, namespace.__dict__)
    return namespace.__dict__


def test_classes_that_share_a_name_are_told_apart() -> None:
    mine = _classes("mymodels", "class Linear(nn.Linear):\n    pass\n")
    model = nn.Sequential(nn.Linear(2, 2), mine["Linear"](2, 2), nn.Linear(2, 2))
    lines = text(model).splitlines()
    assert lines[1:3] == ["├── 0,2 (Linear) weight:[2, 2] bias:[2]", "└── 1 (mymodels.Linear) weight:[2, 2] bias:[2]"]
    plain = build_tree(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    assert all(node.type_path == "" for node in plain.root.walk()), "only names shared by two classes carry a path"
    assert all(node.type_label == "" for node in plain.root.walk())


def test_labels_take_the_shortest_package_prefix_that_tells_classes_apart() -> None:
    one = _classes("zoo.vision.blocks", "class Block(nn.Linear):\n    pass\n")
    two = _classes("zoo.text.blocks", "class Block(nn.Linear):\n    pass\n")
    model = nn.Sequential(one["Block"](2, 2), two["Block"](2, 2))
    assert text(model).splitlines()[1:3] == [
        "├── 0 (vision.blocks.Block) weight:[2, 2] bias:[2]",
        "└── 1 (text.blocks.Block) weight:[2, 2] bias:[2]",
    ], "neither is PyTorch's: both are qualified, as far as needed"
    again = _classes("zoo.vision.blocks", "class Block(nn.Linear):\n    pass\n")  # the same module, run twice
    lines = text(nn.Sequential(one["Block"](2, 2), again["Block"](2, 2))).splitlines()
    assert [line.split(" ")[2] for line in lines[1:3]] == ["(blocks.Block)", "(blocks.Block#2)"]


def test_names_that_look_like_numbers_stay_as_written() -> None:
    model = nn.ModuleDict({"1": nn.Linear(2, 2), "01": nn.Linear(2, 2), "007": nn.Linear(3, 3)})
    assert text(model).splitlines()[1:3] == [
        "├── 1,01 (Linear) weight:[2, 2] bias:[2]",
        "└── 007 (Linear) weight:[3, 3] bias:[3]",
    ]


def test_identical_subtrees_are_one_node_object() -> None:
    """A stack of identical layers costs one set of nodes below the layers, in memory and in the JSON."""
    with torch.device("meta"):
        small = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 8)) for _ in range(300))
        large = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 8)) for _ in range(3000))
    tree = build_tree(large)
    places = sum(1 for _ in tree.root.walk())
    assert places == 12_001
    assert len(tree.root.distinct()) == 3_000 + 3 + 1, "the blocks differ by name only: their children are shared"
    blocks = tree.root.children
    assert blocks[0].children[0] is blocks[1].children[0] is blocks[2999].children[0]
    assert blocks[0] is not blocks[1], "places of different names are different nodes"
    # Each block adds a few bytes of JSON (its name and its children's numbers), not its subtree.
    growth = (len(tree.to_json()) - len(build_tree(small).to_json())) / 2700
    assert growth < 80, growth  # written out in full, a block and its three children take about 700
    again = ModelTree.from_json(tree.to_json())
    assert again == tree and len(again.root.distinct()) == len(tree.root.distinct())
    assert text(large) == str(render(again, format="text"))


def test_shared_modules_stay_where_their_first_place_stays() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.Sequential(nn.ReLU())  # no parameter: not shown
            self.fc = nn.Linear(2, 2)
            self.act_again = self.act  # shown where first met, which is not shown: not shown either
            self.fc_again = self.fc  # shown where first met, which is shown: shown as shared
            self.box = nn.Sequential()
            self.box.add_module("back", self)  # the model inside itself: shared with the root

    lines = text(Net()).splitlines()
    assert lines[1:4] == [
        "├── fc (Linear) weight:[2, 2] bias:[2]",
        "├── fc_again (Linear) shared with fc",
        "└── box (Sequential)",
    ]
    assert lines[4] == "    └── back (Net) shared with the root"
    assert not any("act" in line for line in lines)


def test_what_the_builder_knows_is_what_folding_and_counting_find() -> None:
    """Trees from ``build_tree`` carry their fold numbers and totals; the same tree without them agrees."""
    import dataclasses

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.blocks = nn.ModuleList(Block() for _ in range(4))
            self.blocks[2].fc.requires_grad_(False)
            self.head = nn.Linear(4, 10)
            self.head.weight = self.embed.weight
            self.again = self.blocks[1]
            self.half = nn.Linear(4, 4).to(torch.bfloat16)

    for keep in (False, True):
        tree = build_tree(Net(), keep_non_params=keep, show_buffers=keep)
        assert tree.known is not None
        plain = dataclasses.replace(tree, known=None)
        assert render(tree, format="text") == render(plain, format="text")
        assert summarize(tree) == summarize(plain)
        labels = [group.label for group in fold_siblings(tree).children[1].children]
        assert labels == ["0-1,3", "2"] == [group.label for group in fold_siblings(plain).children[1].children]
