"""Building the tree of real torch modules: parameters, sharing, ties, deltas, dtypes, odd parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sphinx_modelvis import build_tree
from sphinx_modelvis.errors import NotAModule
from sphinx_modelvis.folding import fold_siblings, summarize
from sphinx_modelvis.rendering import render


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
    assert "running_mean:[4]" in with_buffers and "num_batches_tracked:[] int64" in with_buffers


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


def test_dominant_dtype_and_odd_dtypes() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(2, 2).to(torch.bfloat16))
    tree = build_tree(model)
    assert tree.dominant_dtype == "float32"
    assert "1 (Linear) weight:[2, 2] bf16 bias:[2] bf16" in text(model)
    assert build_tree(model.to(torch.float16)).dominant_dtype == "float16"


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


def test_classes_that_share_a_name_are_told_apart() -> None:
    namespace: dict[str, object] = {"nn": nn}
    exec("class Linear(nn.Linear):\n    pass\n", namespace)
    model = nn.Sequential(nn.Linear(2, 2), namespace["Linear"](2, 2), nn.Linear(2, 2))
    lines = text(model).splitlines()
    assert lines[1:3] == ["├── 0,2 (Linear) weight:[2, 2] bias:[2]", "└── 1 (Linear) weight:[2, 2] bias:[2]"]
    plain = build_tree(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    assert all(node.type_path == "" for node in plain.root.walk()), "only names shared by two classes carry a path"


def test_names_that_look_like_numbers_stay_as_written() -> None:
    model = nn.ModuleDict({"1": nn.Linear(2, 2), "01": nn.Linear(2, 2), "007": nn.Linear(3, 3)})
    assert text(model).splitlines()[1:3] == [
        "├── 1,01 (Linear) weight:[2, 2] bias:[2]",
        "└── 007 (Linear) weight:[3, 3] bias:[3]",
    ]
