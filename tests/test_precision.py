"""Precision and quantization: every dtype torch has is shown where it is not the figure's usual one and measured
at its element size; quantized weights (torchao's tensor subclasses, bitsandbytes' ``Params4bit`` and
``Int8Params``, quantized here on the CPU) show their scheme and logical shape, count as many parameters as the
unquantized model and measure what they store."""

from __future__ import annotations

import copy

import pytest
import torch
from optional import optional_module
from torch import nn

from sphinx_modelvis import Visualization
from sphinx_modelvis.folding import summarize
from sphinx_modelvis.precision import quantized_form, stored_bytes
from sphinx_modelvis.tree import ModelTree, format_dtype

#: Every dtype torch has (46 in torch 2.13: the float8 and float4 kinds, the bit and sub-byte integer shells, the
#: quantized ones, complex32), each once.
DTYPES = sorted({value for value in vars(torch).values() if isinstance(value, torch.dtype)}, key=str)


def lines(model: nn.Module, **options: object) -> list[str]:
    figure = Visualization(model).structure_graph(printTree=False, **options)  # type: ignore[arg-type]
    return str(figure.render("text", width=140)).splitlines()


def graph(model: nn.Module, **options: object) -> ModelTree:
    return Visualization(model).structure_graph(printTree=False, **options).tree  # type: ignore[arg-type]


def test_torch_has_the_dtypes_this_test_names() -> None:
    names = {str(dtype).removeprefix("torch.") for dtype in DTYPES}
    expected = {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "bfloat16"}
    assert expected | {"float4_e2m1fn_x2", "int4", "uint1", "qint8", "complex32", "bits8"} <= names
    assert len(DTYPES) >= 40


@pytest.mark.parametrize("dtype", [dtype for dtype in DTYPES if dtype != torch.float32], ids=str)
def test_every_dtype_is_shown_beside_the_usual_one_and_measured(dtype: torch.dtype) -> None:
    model = nn.Linear(4, 4)  # 20 float32 parameters: the figure's usual dtype
    model.extra = nn.Parameter(torch.empty(2, 3, dtype=dtype, device="meta"), requires_grad=False)
    name = str(dtype).removeprefix("torch.")
    first = lines(model, memory=True)[0]
    assert f"extra:[2, 3] {format_dtype(name)} " in first + " ", first
    tree = graph(model, memory=True)
    assert tree.memory is not None
    assert dict(tree.memory.by_dtype) == {"float32": 80, name: 6 * dtype.itemsize}
    assert summarize(tree).total == 26


def test_a_model_mostly_in_bf16_shows_its_fp32_exceptions() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)).to(torch.bfloat16)
    model[1].float()
    out = lines(model, memory=True)
    assert out[1] == "├── 0 (Linear) weight:[8, 8] bias:[8] 144 B"
    assert out[2] == "└── 1 (LayerNorm) weight:[8] f32 bias:[8] f32 64 B f32"


def _torchao() -> object:
    """torchao's quantization API, or a skip: the quantization libraries are optional (the ``quant`` extra)."""
    return optional_module("torchao.quantization")


def test_torchao_int8_weight_only_on_the_cpu() -> None:
    quantization = _torchao()
    model = nn.Sequential(nn.Linear(256, 128), nn.Linear(256, 128))
    plain = copy.deepcopy(model)
    quantization.quantize_(model[0], quantization.Int8WeightOnlyConfig())  # type: ignore[attr-defined]
    out = lines(model, memory=True)
    assert out[1].startswith("├── 0 (Linear) weight:[128, 256] (int8, torchao) bias:[128] ")
    weight = model[0].weight
    inner = [getattr(weight, name) for name in weight.__tensor_flatten__()[0]]
    stored = sum(t.numel() * t.element_size() for t in inner if t is not None)
    assert stored == 128 * 256 + 128 * 4 + 128, "int8 rows, one fp32 scale and one int8 zero point a row"
    tree = graph(model, memory=True)
    assert summarize(tree).total == sum(param.numel() for param in plain.parameters()), "the logical count"
    assert tree.memory is not None and dict(tree.memory.by_dtype)["int8"] == stored
    assert dict(tree.memory.by_dtype)["float32"] == 4 * (128 + 128 * 256 + 128)


def test_torchao_int4_weight_only_in_groups_on_the_cpu() -> None:
    quantization = _torchao()
    from torchao.quantization.granularity import PerGroup

    model = nn.Sequential(nn.Linear(256, 128, bias=False))
    config = quantization.IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))  # type: ignore[attr-defined]
    quantization.quantize_(model, config)  # type: ignore[attr-defined]
    assert lines(model, memory=True)[1] == (
        "└── 0 (Linear) weight:[128, 256] (int4, torchao, groups of 32) 37.0 KiB int4"
    )
    # torchao's CPU int4 keeps each value in an int8, with an fp32 scale and an int8 zero point per group of 32.
    tree = graph(model, memory=True)
    assert tree.memory is not None and tree.memory.by_dtype == (("int4", 128 * 256 + 128 * 8 * 4 + 128 * 8),)
    assert summarize(tree).total == 128 * 256


def _bitsandbytes() -> object:
    """bitsandbytes, or a skip."""
    return optional_module("bitsandbytes")


def test_bitsandbytes_4bit_and_8bit_layers_quantized_on_the_cpu() -> None:
    bnb = _bitsandbytes()
    model = nn.Sequential(
        bnb.nn.Linear4bit(64, 32, quant_type="nf4"),  # type: ignore[attr-defined]
        bnb.nn.Linear8bitLt(64, 32, has_fp16_weights=False),  # type: ignore[attr-defined]
    )
    unquantized = sum(param.numel() for param in model.parameters())
    before = lines(model)
    assert before[1] == "├── 0 (Linear4bit) weight:[32, 64] (nf4, not quantized yet) bias:[32]"
    assert before[2] == "└── 1 (Linear8bitLt) weight:[32, 64] (LLM.int8(), not quantized yet) bias:[32]"
    model = model.to("cpu")  # bitsandbytes quantizes when a layer moves to a device: here the CPU
    packed = model[0].weight
    assert tuple(packed.shape) == (1024, 1) and packed.dtype == torch.uint8, "two 4-bit values a byte, in a column"
    out = lines(model, memory=True)
    assert out[1].startswith("├── 0 (Linear4bit) weight:[32, 64] (nf4, bitsandbytes, blocks of 64) bias:[32] ")
    assert out[2].startswith("└── 1 (Linear8bitLt) weight:[32, 64] int8 (LLM.int8(), bitsandbytes) bias:[32] ")
    tree = graph(model, memory=True)
    assert summarize(tree).total == unquantized, "the logical count, not the packed storage's"
    state = packed.quant_state
    statistics = [state.absmax, state.code, state.offset, state.state2.absmax, state.state2.code]
    nf4 = 1024 + sum(t.numel() * t.element_size() for t in statistics)
    assert tree.memory is not None
    assert dict(tree.memory.by_dtype) == {"nf4": nf4, "int8": 32 * 64 + 32 * 4, "float32": 2 * 32 * 4}
    assert stored_bytes(packed) == nf4


def test_forms_of_plain_tensors_and_of_16_bit_int8_layers() -> None:
    assert quantized_form(torch.ones(2)) is None
    assert quantized_form(nn.Parameter(torch.ones(2))) is None
    bnb = _bitsandbytes()
    kept = bnb.nn.Linear8bitLt(8, 4, has_fp16_weights=True).to("cpu")  # type: ignore[attr-defined]
    form = quantized_form(kept.weight)
    assert form is not None and form.scheme == "LLM.int8(), 16-bit weights kept" and form.shape == (4, 8)


def test_a_scheme_is_data_it_survives_the_json_and_keeps_unlike_siblings_apart() -> None:
    from sphinx_modelvis.folding import fold_siblings
    from sphinx_modelvis.tree import ModuleNode, ParamInfo

    quantized = ModuleNode("a", "Linear", [ParamInfo("weight", (4, 4), scheme="int8, torchao")])
    plain = ModuleNode("b", "Linear", [ParamInfo("weight", (4, 4))])
    tree = ModelTree(ModuleNode("root", "Net", children=[quantized, plain]))
    assert ModelTree.from_json(tree.to_json()) == tree
    assert ModelTree.from_json(tree.to_json()).root.children[0].params[0].scheme == "int8, torchao"
    assert [group.label for group in fold_siblings(tree).children] == ["a", "b"]


def test_8bit_adam_keeps_the_state_counted() -> None:
    """bitsandbytes' Adam8bit, stepped on the CPU: its states (uint8 for tensors of 4,096 elements or more, with
    fp32 absmax blocks; fp32 below) are what ``:optimizer: 8bit-adam`` counts. The two 256-entry quantization maps
    every tensor's state points to are one pair per optimizer, not counted."""
    bnb = _bitsandbytes()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(500, 16), nn.Linear(16, 300), nn.LayerNorm(300))
    optimizer = bnb.optim.Adam8bit(model.parameters())  # type: ignore[attr-defined]
    model(torch.tensor([[1, 2, 3]])).sum().backward()
    optimizer.step()
    kept = sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for key, value in state.items()
        if isinstance(value, torch.Tensor) and value.dim() > 0 and not key.startswith("qmap")
    )
    tree = graph(model, memory="training", optimizer="8bit-adam")
    assert tree.memory is not None and tree.memory.states == kept == 33208
