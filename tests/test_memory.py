"""The memory view: each module's bytes of parameters and buffers (tied and shared tensors once), by dtype when
mixed; what training adds (gradients, optimizer state, fp32 master weights), checked against real optimizers'
state; folding that compares sizes; comparisons; the JSON; BERT with LoRA and Llama on the meta device."""

from __future__ import annotations

import pytest
import torch
from test_models import LLAMA_70B
from torch import nn

from sphinx_modelvis import Visualization
from sphinx_modelvis.memory import (
    OPTIMIZERS,
    TensorRecord,
    annotate_memory,
    format_bytes,
    memory_mode,
    node_bytes,
    state_bytes,
)
from sphinx_modelvis.precision import tensor_places
from sphinx_modelvis.tree import ModelTree, ModuleNode

transformers = pytest.importorskip("transformers")


class Rotary(nn.Module):
    """A module with a buffer and no parameter: the tree leaves it out, its bytes still count above it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("inv_freq", torch.ones(2))


class Tiny(nn.Module):
    """Bytes worked out by hand: embed 40 f32 (160 B), two Linear(4, 4) of 20 f32 (80 B each), a bf16 LayerNorm
    of 8 (16 B), a head tied to the embedding (0 B), a buffer of 8 int64 (64 B), a buffer-only module of 2 f32 (8 B)
    and the first block met again through a second parent (0 B)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.norm = nn.LayerNorm(4).to(torch.bfloat16)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight
        self.rotary = Rotary()
        self.again = self.blocks[0]
        self.register_buffer("positions", torch.arange(8))


def graph(model: nn.Module, **options: object) -> ModelTree:
    return Visualization(model).structure_graph(printTree=False, **options).tree  # type: ignore[arg-type]


def text(model: nn.Module, **options: object) -> list[str]:
    figure = Visualization(model).structure_graph(printTree=False, **options)  # type: ignore[arg-type]
    return str(figure.render("text", width=120)).splitlines()


def child(node: ModuleNode, name: str) -> ModuleNode:
    return next(item for item in node.children if item.name == name)


def test_bytes_by_hand_tied_and_shared_once_buffers_counted_when_not_shown() -> None:
    tree = graph(Tiny(), memory=True)
    root = tree.root
    assert root.memory == (("float32", 328), ("int64", 64), ("bfloat16", 16))
    assert child(root, "embed").memory == (("float32", 160),)
    assert child(root, "blocks").memory == (("float32", 160),)
    assert child(root, "norm").memory == (("bfloat16", 16),)
    assert child(root, "head").memory == (), "a tied weight costs nothing where it is met again"
    assert child(root, "again").memory == (), "a module met again costs nothing there"
    assert "rotary" not in [item.name for item in root.children], "a buffer-only module is not drawn"
    assert tree.memory is not None
    assert (tree.memory.weights, tree.memory.buffers, tree.memory.total) == (408, 72, 408)
    assert text(Tiny(), memory=True) == [
        "root 328 B f32 + 64 B i64 + 16 B bf16",
        "├── embed (Embedding) weight:[10, 4] 160 B",
        "├── blocks (ModuleList) 160 B",
        "│   └── 0-1 (Linear) weight:[4, 4] bias:[4] 80 B each",
        "├── norm (LayerNorm) weight:[4] bf16 bias:[4] bf16 16 B bf16",
        "├── head (Linear) weight:[10, 4] (tied to embed.weight)",
        "└── again (Linear) shared with blocks.0",
        "parameters: 88 total, 88 tunable (100.00%), 0 frozen, 0 delta",
        "memory: 328 B f32 + 64 B i64 + 16 B bf16 = 408 B (72 B in buffers)",
    ]


def test_every_module_agrees_with_accelerate() -> None:
    from accelerate.utils import compute_module_sizes

    model = Tiny()
    sizes = compute_module_sizes(model)
    for path, node in graph(model, memory=True).root.places():
        if node.shared_with is None and node.memory:
            assert sum(size for _dtype, size in node.memory) == sizes[path], path


def test_training_adds_gradients_adam_states_and_master_weights_of_tunable_tensors_only() -> None:
    model = Tiny()
    model.embed.requires_grad_(False)  # and so the tied head
    tree = graph(model, memory="training")
    # Tunable: the blocks (40 f32) and the bf16 norm (8): gradients 160 + 16; Adam 8 bytes a parameter, 384;
    # an fp32 master copy of the 8 bf16 weights, 32.
    assert tree.memory is not None
    assert (tree.memory.gradients, tree.memory.states, tree.memory.master) == (176, 384, 32)
    assert tree.memory.total == 408 + 176 + 384 + 32
    root = tree.root
    assert child(root, "embed").training == (0, 0, 0), "frozen: its weights only"
    assert child(root, "norm").training == (16, 64, 32)
    lines = text(model, memory="training")
    assert "├── embed (Embedding) weight:[10, 4] 160 B" in lines
    assert "│   └── 0-1 (Linear) weight:[4, 4] bias:[4] 80 B + 80 B grads + 160 B states = 320 B each" in lines
    assert lines[-4:-2] == [
        "memory: 328 B f32 + 64 B i64 + 16 B bf16 = 408 B (72 B in buffers)",
        "training: 408 B weights + 176 B gradients + 384 B Adam states + 32 B fp32 master weights = 1000 B",
    ]
    assert lines[-2].startswith("assumed: Adam: 2 fp32 states per tunable parameter;")


def test_blocks_of_unequal_size_do_not_fold() -> None:
    class Cached(nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.proj = nn.Linear(2, 2)
            self.register_buffer("cache", torch.zeros(size))

    model = nn.ModuleList([Cached(3), Cached(5), Cached(5)])
    assert text(model)[1] == "└── 0-2 (Cached)", "alike without the memory view: the buffers are not shown"
    assert text(model, memory=True)[1:3] == ["├── 0 (Cached) 36 B", "│   └── proj (Linear) weight:[2, 2] bias:[2] 24 B"]
    assert "└── 1-2 (Cached) 44 B each" in text(model, memory=True)


def test_real_optimizers_keep_the_state_counted() -> None:
    """Each optimizer's count equals the bytes of the state the real optimizer keeps after a step (its 0-d step
    counters and Adafactor's RMS scalar left out, as the figures say)."""
    from transformers.optimization import Adafactor

    makers = {
        "adam": lambda params: torch.optim.Adam(params),
        "adamw": lambda params: torch.optim.AdamW(params),
        "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
        "sgd-momentum": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
        "adafactor": lambda params: Adafactor(params),
    }
    for name, make in makers.items():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Embedding(50, 6), nn.Linear(6, 3), nn.LayerNorm(3))
        model[0].requires_grad_(False)
        optimizer = make([param for param in model.parameters() if param.requires_grad])
        model(torch.tensor([[1, 2, 3]])).sum().backward()
        optimizer.step()
        kept = sum(
            value.numel() * value.element_size()
            for state in optimizer.state.values()
            for value in state.values()
            if isinstance(value, torch.Tensor) and value.dim() > 0
        )
        tree = graph(model, memory="training", optimizer=name)
        assert tree.memory is not None and tree.memory.states == kept, name
    assert set(makers) | {"8bit-adam"} == set(OPTIMIZERS), "every optimizer is checked (8-bit Adam: below)"


def test_8bit_adam_by_bitsandbytes_rules() -> None:
    # bitsandbytes keeps 32-bit states under 4,096 elements; from there two uint8 states and one fp32 absmax
    # per block of 256 elements for each.
    small = TensorRecord("float32", 400, 100, (100,), True)
    big = TensorRecord("float32", 4 * 4097, 4097, (4097,), True)
    assert state_bytes("8bit-adam", small) == 800
    assert state_bytes("8bit-adam", big) == 2 * 4097 + 2 * 4 * 17
    matrix = TensorRecord("float32", 4 * 6 * 10, 60, (2, 3, 10), True)
    assert state_bytes("adafactor", matrix) == 4 * (6 + 2 * 10), "rows of the leading dims, columns per leading dim"
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        state_bytes("lion", small)


def test_memory_values_and_byte_units() -> None:
    assert [memory_mode(value) for value in (True, None, "", "weights", " Training ", False, "off")] == [
        "weights",
        "weights",
        "weights",
        "weights",
        "training",
        "",
        "",
    ]
    with pytest.raises(ValueError, match="expected no value, weights or training"):
        memory_mode("activations")
    assert [format_bytes(size) for size in (0, 1023, 1024, 1536 * 1024, 5 * 2**40, 3 * 2**50)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "5.0 TiB",
        "3072.0 TiB",
    ]


def test_a_comparison_says_what_each_changed_module_took_before() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    before = Visualization(model).structure_graph(printTree=False, memory=True)
    model[1] = nn.Linear(8, 16)
    lines = text(model, memory=True, compare=before)
    assert lines[0] == "  root 864 B (was 576 B, +288 B)"
    assert lines[1] == "  ├── 0 (Linear) weight:[8, 8] bias:[8] 288 B", "unchanged: no note"
    assert lines[2].endswith("bias:[16] (was [8]) 576 B (was 288 B, +288 B)")
    assert lines[-1] == "memory: 864 B f32 (was 576 B, +288 B)"
    again = graph(model, memory=True, compare=before)
    assert ModelTree.from_json(again.to_json()) == again, "the JSON keeps sizes, differences and totals"
    assert again.memory is not None and again.memory.before == 576


def test_bert_with_lora_under_training_costs_the_adapters_four_times_their_weights() -> None:
    peft = pytest.importorskip("peft")
    with torch.device("meta"):
        base = transformers.BertForMaskedLM(transformers.BertConfig())
    model = peft.get_peft_model(base, peft.LoraConfig(r=8, target_modules=["query", "value"]))
    tree = graph(model, memory="training")
    adapters = sum(param.numel() for param in model.parameters() if param.requires_grad)
    assert adapters == 12 * 2 * (8 * 768 + 768 * 8)
    weights = 4 * sum(param.numel() for param in model.parameters()) + 8 * 2 * 512  # two int64 buffers of 512
    assert tree.memory is not None
    assert tree.memory.weights == weights
    # fp32 adapters: gradients as big as their weights, Adam's two states twice that: 3x their weights more.
    assert (tree.memory.gradients, tree.memory.states, tree.memory.master) == (4 * adapters, 8 * adapters, 0)
    assert tree.memory.total == weights + 3 * 4 * adapters
    query = "base_model.model.bert.encoder.layer.0.attention.self.query"
    nodes = dict(tree.root.places())
    assert nodes[f"{query}.base_layer"].training == (0, 0, 0), "the frozen base costs its weights only"
    assert nodes[f"{query}.base_layer"].memory == (("float32", 4 * (768 * 768 + 768)),)
    lora_a = nodes[f"{query}.lora_A"]
    assert lora_a.memory == (("float32", 4 * 8 * 768),)
    assert node_bytes(lora_a) == 4 * sum(size for _dtype, size in lora_a.memory)


def test_llama_70b_on_the_meta_device() -> None:
    config = transformers.LlamaConfig(**LLAMA_70B)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    count = sum(param.numel() for param in model.parameters())
    buffers = sum(buffer.numel() * buffer.element_size() for buffer in model.buffers())
    tree = graph(model, memory=True)
    assert tree.memory is not None
    assert tree.memory.by_dtype == (("bfloat16", 2 * count), ("float32", buffers))
    lines = text(model, memory=True)
    assert "│   │   └── 0-79 (LlamaDecoderLayer) 1.6 GiB each" in lines
    assert "└── lm_head (Linear) weight:[128256, 8192] 2.0 GiB" in lines
    assert lines[-1] == f"memory: {format_bytes(2 * count)} bf16 + 512 B f32 = {format_bytes(2 * count + 512)} " + (
        "(512 B in buffers)"
    )


def test_records_come_from_torch_each_tensor_once() -> None:
    places = tensor_places(Tiny())
    assert places["head"] == [], "the tied weight counts at embed"
    assert places["again"] == [], "the shared module counts at blocks.0"
    assert places["rotary"] == [TensorRecord("float32", 8, 2, (2,), False, True)]
    assert places[""] == [TensorRecord("int64", 64, 8, (8,), False, True)]
    lazy = tensor_places(nn.LazyLinear(3))
    assert lazy[""][0].nbytes == 0, "an uninitialized parameter stores nothing yet"


def test_a_tree_without_records_measures_nothing_and_keeps_its_shared_nodes() -> None:
    leaf = ModuleNode("a", "Linear")
    tree = ModelTree(ModuleNode("root", "Net", children=[ModuleNode("x", "Block", children=[leaf])] * 2))
    annotated = annotate_memory(tree, {})
    assert annotated.root.children[0] is annotated.root.children[1], "alike places stay one node object"
    with pytest.raises(ValueError, match="unknown optimizer"):
        annotate_memory(tree, {}, training=True, optimizer="lion")


def test_the_memory_view_combines_with_the_forward_view() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(2, 2))
    assert text(model, memory=True, inputs=torch.ones(3, 4)) == [
        "root 256 B → [3, 2]",
        "├── 0 (Linear) weight:[8, 4] bias:[8] 160 B → [3, 8]",
        "├── 1 (Linear) weight:[2, 8] bias:[2] 72 B → [3, 2]",
        "└── 2 (Linear) weight:[2, 2] bias:[2] 24 B → [3, 2]",
        "parameters: 64 total, 64 tunable (100.00%), 0 frozen, 0 delta",
        "forward: [3, 4] -> [3, 2]",
        "memory: 256 B f32",
    ]


def test_the_will_it_fit_figures_snapshot() -> None:
    """BERT with LoRA under training and Llama 70B in bf16, as text: the figures the tutorial draws."""
    from snapshot import assert_snapshot

    peft = pytest.importorskip("peft")
    with torch.device("meta"):
        base = transformers.BertForMaskedLM(transformers.BertConfig())
        llama = transformers.LlamaForCausalLM._from_config(transformers.LlamaConfig(**LLAMA_70B), dtype=torch.bfloat16)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=8, target_modules=["query", "value"]))
    assert_snapshot("bert_lora_training.txt", "\n".join(text(lora, memory="training")) + "\n")
    assert_snapshot("llama70b_memory.txt", "\n".join(text(llama, memory=True)) + "\n")
