"""FLOPs in the forward view, counted by PyTorch's flop counter: exact counts worked out by hand (a Linear, a
matmul, a module called twice), attention in tiny BERT and Llama (the per-module counts add up to the pass's total
as ``FlopCounterMode`` reports it), the meta device against the CPU, folding by count, comparisons, the memory view
beside it, the JSON, and Llama 3 70B on meta."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from test_models import LLAMA_70B
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sphinx_modelvis import Visualization
from sphinx_modelvis.flops import format_flops
from sphinx_modelvis.tree import ModelTree, ModuleNode

transformers = pytest.importorskip("transformers")


def counted(model: nn.Module, inputs: Any, **options: Any) -> ModelTree:
    return Visualization(model).structure_graph(inputs=inputs, flops=True, printTree=False, **options).tree


def lines(model: nn.Module, inputs: Any, **options: Any) -> list[str]:
    figure = Visualization(model).structure_graph(inputs=inputs, flops=True, printTree=False, **options)
    return str(figure.render("text", width=160)).splitlines()


def node(tree: ModelTree, path: str) -> ModuleNode:
    return dict(tree.root.places())[path]


class MatMul(nn.Module):
    """``x @ w`` for a [2, 5, 6] input and a [6, 3] weight: ten rows of 6 × 3, 2·10·6·3 = 360 FLOPs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class Twice(nn.Module):
    """One Linear(4, 4) called twice on one row: 2·4·4 = 32 FLOPs a call, 64 in the pass."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.lin(x))


def test_a_linear_costs_two_in_out_per_row() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    tree = counted(model, torch.ones(3, 4))
    # 3 rows: 2·4·8·3 = 192 and 2·8·2·3 = 96; the ReLU counts nothing.
    assert [child.flops for child in tree.root.children] == [192, 96]
    assert tree.root.flops == 288
    assert tree.flops is not None and tree.flops.total == 288 and tree.flops.by_operation == (("addmm", 288),)
    text = lines(model, torch.ones(3, 4))
    assert text[1] == "├── 0 (Linear) weight:[8, 4] bias:[8] → [3, 8] 192 FLOPs"
    assert text[-1] == "flops: 288 FLOPs in the pass"


def test_a_matmul() -> None:
    tree = counted(MatMul(), torch.ones(2, 5, 6))
    assert tree.root.flops == 360
    assert lines(MatMul(), torch.ones(2, 5, 6))[0] == "root w:[6, 3] → [2, 5, 3] 360 FLOPs"


def test_a_module_called_twice_sums_its_calls_and_says_so() -> None:
    tree = counted(Twice(), torch.ones(1, 4))
    assert node(tree, "lin").flops == 64 and node(tree, "lin").calls == 2
    expected = "└── lin (Linear) weight:[4, 4] bias:[4] → [1, 4] ×2 64 FLOPs over 2 calls"
    assert lines(Twice(), torch.ones(1, 4))[1] == expected


def test_folded_lines_say_each_and_unequal_counts_do_not_fold() -> None:
    alike = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4))
    assert lines(alike, torch.ones(2, 4))[1] == "└── 0-2 (Linear) weight:[4, 4] bias:[4] → [2, 4] 64 FLOPs each"
    # Widths 4 -> 8 -> 8 -> 4: the two middle-width layers differ, and so do their counts.
    widths = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 4))
    text = lines(widths, torch.ones(2, 4))
    assert [line.split(" → ")[1] for line in text[1:4]] == ["[2, 8] 128 FLOPs", "[2, 8] 256 FLOPs", "[2, 4] 128 FLOPs"]


def test_a_count_alone_keeps_siblings_apart() -> None:
    # Two alike layers called alike (once each, the same output) whose second calls see different lengths.
    class Uneven(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.blocks[0](x), self.blocks[1](x)
            return self.blocks[0](x[:1]) + self.blocks[1](x)

    text = lines(Uneven(), torch.ones(2, 4))
    assert [line.split("── ")[1].split(" (")[0] for line in text[2:4]] == ["0", "1"], "64 + 32 against 64 + 64"
    assert text[2].endswith("96 FLOPs over 2 calls") and text[3].endswith("128 FLOPs over 2 calls")
    plain = str(Visualization(Uneven()).structure_graph(inputs=torch.ones(2, 4), printTree=False)).splitlines()
    assert "0-1 (Linear)" in plain[2], "without the counts they fold"


def tiny_bert(**config: Any) -> nn.Module:
    settings = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return transformers.BertModel(transformers.BertConfig(**settings, **config)).eval()


def test_bert_attention_is_counted_and_the_lines_add_up_to_the_counter_total() -> None:
    with torch.device("meta"):
        model = tiny_bert()
        ids = torch.zeros(1, 8, dtype=torch.long)
    tree = counted(model, ids)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(ids)
    assert tree.root.flops == counter.get_total_flops() == 280_576
    # By hand, 8 tokens: query, key, value, output 2·8·32·32 = 16,384 each; intermediate and output 2·8·32·64;
    # attention: 2 heads of 16, Q·Kᵀ and A·V each 2·2·8·8·16 = 4,096; the pooler one row, 2·32·32.
    layer = node(tree, "encoder.layer.0")
    assert [node(tree, f"encoder.layer.0.attention.self.{name}").flops for name in ("query", "key", "value")] == [
        16_384
    ] * 3
    attention = node(tree, "encoder.layer.0.attention.self").flops - 3 * 16_384
    assert attention == 8_192
    assert layer.flops == 4 * 16_384 + 2 * 32_768 + attention == 139_264
    assert node(tree, "pooler").flops == 2_048
    leaves = sum(place.flops for _, place in tree.root.places() if not place.children and place.flops > 0)
    assert leaves + 2 * attention == tree.root.flops, "the leaves and the attention between them make the total"


def test_the_meta_device_counts_what_the_cpu_counts() -> None:
    torch.manual_seed(0)
    on_cpu = counted(tiny_bert(), torch.zeros(1, 8, dtype=torch.long))
    with torch.device("meta"):
        on_meta = counted(tiny_bert(), torch.zeros(1, 8, dtype=torch.long))
    assert [(path, place.flops) for path, place in on_cpu.root.places()] == [
        (path, place.flops) for path, place in on_meta.root.places()
    ]
    # The CPU's attention kernel, which torch's own table leaves out, counts as its matmuls under eager attention.
    eager = counted(tiny_bert(attn_implementation="eager"), torch.zeros(1, 8, dtype=torch.long))
    assert on_cpu.root.flops == eager.root.flops == 280_576
    assert on_cpu.flops is not None and on_cpu.flops.by_operation == (("addmm", 264_192), ("attention", 16_384))


def test_llama_with_grouped_query_attention() -> None:
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
        ids = torch.zeros(1, 8, dtype=torch.long)
    tree = counted(model, ids)
    # q and o 2·8·64·64; k and v 2·8·64·32 (two key-value heads of 16); gate, up, down 2·8·64·128; attention: four
    # query heads of 16, 2·(2·4·8·8·16); the head 2·8·64·100.
    layer = 2 * 65_536 + 2 * 32_768 + 3 * 131_072 + 16_384
    assert node(tree, "model.layers.0").flops == layer == 606_208
    assert tree.root.flops == 2 * layer + 102_400
    text = lines(model, ids)
    assert any(line.endswith("(LlamaDecoderLayer) → [1, 8, 64] 606 kFLOPs each") for line in text)


def test_llama_70b_on_the_meta_device() -> None:
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA_70B))
        ids = torch.zeros(1, 16, dtype=torch.long)
    tree = counted(model, ids)
    s, h, kv, i, v = 16, 8192, 1024, 28672, 128256
    layer = 2 * s * (2 * h * h + 2 * h * kv + 3 * h * i) + 4 * s * s * h
    assert node(tree, "model.layers.0").flops == layer
    assert tree.root.flops == 80 * layer + 2 * s * h * v
    text = "\n".join(lines(model, ids))
    assert f"0-79 (LlamaDecoderLayer) → [1, 16, 8192] {format_flops(layer)} each" in text
    assert f"flops: {format_flops(tree.root.flops)} in the pass (mm " in text


def test_compared_figures_show_the_difference() -> None:
    before = Visualization(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))).structure_graph(
        inputs=torch.ones(3, 4), flops=True, printTree=False
    )
    later = nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2))
    text = lines(later, torch.ones(3, 4), compare=before)
    assert "384 FLOPs (was 192 FLOPs, +192 FLOPs)" in text[1]
    assert "192 FLOPs (was 96 FLOPs, +96 FLOPs)" in text[2]
    assert text[-1] == "flops: 576 FLOPs in the pass (was 288 FLOPs, +288 FLOPs)"


def test_with_the_memory_view_and_through_the_json() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    text = lines(model, torch.ones(3, 4), memory=True)
    assert text[1] == "├── 0 (Linear) weight:[8, 4] bias:[8] 160 B → [3, 8] 192 FLOPs"
    assert text[-2:] == ["flops: 288 FLOPs in the pass", "memory: 232 B f32"]
    tree = counted(model, torch.ones(3, 4))
    assert ModelTree.from_json(tree.to_json()) == tree
    assert ModelTree.from_json(tree.to_json()).flops == tree.flops


def test_flops_need_inputs() -> None:
    with pytest.raises(ValueError, match="flops=True counts a forward pass: give inputs too"):
        Visualization(nn.Linear(2, 2)).structure_graph(flops=True, printTree=False)


def test_format_flops() -> None:
    assert [format_flops(count) for count in (0, 999, 1000, 24_576, 1_572_864, 453_000_000_000_000)] == [
        "0 FLOPs",
        "999 FLOPs",
        "1.00 kFLOPs",
        "24.6 kFLOPs",
        "1.57 MFLOPs",
        "453 TFLOPs",
    ]
