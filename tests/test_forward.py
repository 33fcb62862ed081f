"""The forward view: one traced pass (hooks removed after, also when it raises), children in call order, output
shapes, call counts and modules never called, on real transformers models built from their configs on the meta
device, in the API, in Sphinx (rST and MyST) and on the command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import Build, build_sphinx
from sphinx_html import figure_by_name, figure_lines
from test_models import LLAMA_70B
from torch import nn

from sphinx_modelvis import Visualization, build_tree
from sphinx_modelvis.errors import SnippetError
from sphinx_modelvis.execution.snippet import TreeSettings, module_block
from sphinx_modelvis.tree import ModelTree

transformers = pytest.importorskip("transformers")


def forward_text(model: nn.Module, inputs: Any, **options: Any) -> str:
    return str(Visualization(model).structure_graph(inputs=inputs, printTree=False, **options))


def ids(*shape: int) -> torch.Tensor:
    return torch.ones(*shape, dtype=torch.long, device="meta")


@pytest.fixture(scope="module")
def bert() -> nn.Module:
    with torch.device("meta"):
        return transformers.BertForMaskedLM(transformers.BertConfig())


def test_bert_in_the_order_data_flows(bert: nn.Module) -> None:
    lines = forward_text(bert, ids(1, 16)).splitlines()
    embeddings = [line.split("── ")[1].split(" (")[0] for line in lines[3:6]]
    # Registered word, position, token_type; called word, token_type, position.
    assert embeddings == ["word_embeddings", "token_type_embeddings", "position_embeddings"]
    assert "│   │   ├── word_embeddings (Embedding) weight:[30522, 768] → [1, 16, 768]" in lines
    assert "│           └── 0-11 (BertLayer) → [1, 16, 768]" in lines, "twelve alike layers still fold"
    assert "│       └── layer (ModuleList)" in lines, "a container is not called, its layers are"
    assert lines[-1] == "forward: [1, 16] i64 -> MaskedLMOutput(logits=[1, 16, 30522])"
    # Registration order without inputs, as before.
    plain = str(Visualization(bert).structure_graph(printTree=False)).splitlines()
    assert "position_embeddings" in plain[4] and "→" not in "".join(plain)


def test_the_hooks_are_gone_and_the_model_untouched(bert: nn.Module) -> None:
    before = build_tree(bert)
    forward_text(bert, ids(1, 8))
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in bert.modules())
    assert build_tree(bert) == before


def test_a_pass_that_raises_leaves_no_hook_and_is_an_error_with_the_models_frames() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x.view(-1, 3))

    model = Broken()
    with pytest.raises(RuntimeError):
        Visualization(model).structure_graph(inputs=torch.ones(2, 4), printTree=False)
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())
    with pytest.raises(SnippetError) as caught:
        module_block(model, TreeSettings(inputs="torch.ones(2, 4)"), namespace={"torch": torch}, line=12)
    error = caught.value
    assert error.line == 12 and str(error).startswith("the forward pass raised RuntimeError")
    assert "return self.layer(x.view(-1, 3))" in error.traceback, "the model's own frame"
    assert "sphinx_modelvis" not in error.traceback, "ours left out"


def test_albert_shares_one_layer_twelve_times() -> None:
    with torch.device("meta"):
        model = transformers.AlbertModel(transformers.AlbertConfig())
    out = forward_text(model, ids(1, 8))
    assert re.search(r"albert_layers \(ModuleList\)\n.*└── 0 \(AlbertLayer\) → \[1, 8, 4096\] ×12", out), out


def test_t5_runs_its_encoder_and_decoder_from_a_dict_of_inputs() -> None:
    with torch.device("meta"):
        model = transformers.T5ForConditionalGeneration(transformers.T5Config())
    out = forward_text(model, {"input_ids": ids(1, 8), "decoder_input_ids": ids(1, 4)})
    lines = out.splitlines()
    encoder = next(index for index, line in enumerate(lines) if line.startswith("├── encoder (T5Stack)"))
    decoder = next(index for index, line in enumerate(lines) if line.startswith("├── decoder (T5Stack)"))
    assert encoder < decoder
    assert any("1-5 (T5Block) → ([1, 8, 512]" in line for line in lines[encoder:decoder])
    assert any("1-5 (T5Block) → ([1, 4, 512]" in line for line in lines[decoder:])
    assert lines[-2] == "forward: {input_ids=[1, 8] i64, decoder_input_ids=[1, 4] i64} ->"
    assert lines[-1].startswith("    Seq2SeqLMOutput(logits=[1, 4, 32128], ")


def test_a_module_never_called_and_tuple_inputs() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.Linear(2, 2)
            self.right = nn.Linear(3, 2)
            self.left = nn.Linear(4, 2)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.left(a), self.right(b).to(torch.float16)

    assert forward_text(Pair(), (torch.ones(1, 4), torch.ones(1, 3))).splitlines() == [
        "root → ([1, 2], [1, 2] f16)",
        "├── left (Linear) weight:[2, 4] bias:[2] → [1, 2]",
        "├── right (Linear) weight:[2, 3] bias:[2] → [1, 2]",
        "└── unused (Linear) weight:[2, 2] bias:[2] (never called)",
        "parameters: 24 total, 24 tunable (100.00%), 0 frozen, 0 delta",
        "forward: ([1, 4], [1, 3]) -> ([1, 2], [1, 2] f16)",
    ]


def test_the_forward_view_is_data() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    figure = Visualization(model).structure_graph(inputs=torch.ones(3, 4), printTree=False)
    again = ModelTree.from_json(figure.tree.to_json())
    assert again == figure.tree and again.forward == "[3, 4] -> [3, 2]"


def test_llama_70b_on_the_meta_device() -> None:
    config = transformers.LlamaConfig(**LLAMA_70B)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    out = forward_text(model, ids(1, 16))
    assert "0-79 (LlamaDecoderLayer) → [1, 16, 8192]" in out
    assert "lm_head (Linear) weight:[128256, 8192] → [1, 16, 128256]" in out
    assert "k_proj,v_proj (Linear) weight:[1024, 8192] → [1, 16, 1024]" in out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("forward", tmp_path_factory.mktemp("forward") / "src", "html")


def test_the_directive_in_rst(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "mlp"))
    assert lines[1:4] == [
        "    body (Linear) weight:[8, 4] bias:[8] → [2, 8]",
        "    head (Linear) weight:[2, 8] bias:[2] → [2, 2]",
        "    unused (Linear) weight:[8, 8] bias:[8] (never called)",
    ]
    assert lines[-1] == "forward: [2, 4] -> [2, 2]"


def test_a_failing_pass_is_a_warning_at_the_directive_with_the_models_traceback(built: Build) -> None:
    warnings = built.warnings
    assert re.search(r"index\.rst:29: WARNING: modelvis: the forward pass raised RuntimeError: mat1", warnings), (
        warnings
    )
    assert "[modelvis.forward]" in warnings
    trace = warnings[warnings.index("Traceback") :]
    assert "torch/nn/modules/linear.py" in trace and "_call_impl" not in trace and "sphinx_modelvis" not in trace
    assert "modelvis-error" in str(figure_by_name(built.soup("index"), "broken"))


def test_the_directive_in_myst_on_the_meta_device(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("page"), "bert"))
    assert any(line.strip() == "0-3 (BertLayer) → [1, 16, 64]" for line in lines)
    assert lines[-2] == "forward: {input_ids=[1, 16] i64} ->"
    assert lines[-1].strip().startswith("BaseModelOutputWithPooling")


def test_the_cli(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text("from torch import nn\nnet = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n")
    command = [sys.executable, "-m", "sphinx_modelvis", str(tmp_path / "net.py"), "--format", "txt"]
    done = subprocess.run(
        [*command, "--inputs", "torch.ones(5, 4)"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "NameError" in done.stderr, "the snippet did not import torch"
    done = subprocess.run(
        [*command, "--inputs", "__import__('torch').ones(5, 4)"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "├── 0 (Linear) weight:[8, 4] bias:[8] → [5, 8]" in done.stdout.splitlines()


def test_a_tree_thousands_deep_is_annotated_without_recursion() -> None:
    from sphinx_modelvis.forward import annotate_forward
    from sphinx_modelvis.tracing import ForwardRecord

    leaf = nn.Linear(2, 2)
    deep: nn.Module = leaf
    for _ in range(3000):
        deep = nn.Sequential(deep)
    tree = build_tree(deep)
    path = ".".join(["0"] * 3000)
    annotated = annotate_forward(tree, {path: ForwardRecord(0, 2, ("t", (1, 2), "float32"))})
    *_, last = annotated.root.walk()
    assert last.calls == 2 and last.output == "[1, 2]"
    assert annotated.root.calls == -1, "a container of what ran"
