"""Before and after: a tree marked against an earlier one (added, removed, changed, moved, retyped), on real models
(BERT with PEFT's LoRA, the tutorial's flow) and on small hand-made ones; the API, the JSON, the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from snapshot import assert_snapshot
from torch import nn

from sphinx_modelvis import Visualization, build_tree
from sphinx_modelvis.compare import compare_trees
from sphinx_modelvis.folding import summarize
from sphinx_modelvis.rendering import render
from sphinx_modelvis.tree import ModelTree

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


def text(tree: ModelTree) -> str:
    return str(render(tree, format="text"))


def tutorial_flow() -> tuple[ModelTree, ModelTree]:
    """The tutorial's BERT, before and after LoRA on query and value with cls, intermediate and LayerNorm
    made tunable again (on the meta device: the structure is the same)."""
    with torch.device("meta"):
        model = transformers.BertForMaskedLM(transformers.BertConfig())
    before = build_tree(model)
    adapted = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules=["query", "value"]))
    for name, parameter in adapted.named_parameters():
        if any(part in name for part in ("cls", "intermediate", "LayerNorm")):
            parameter.requires_grad = True
    return before, build_tree(adapted)


def test_the_tutorial_flow_snapshot() -> None:
    before, after = tutorial_flow()
    compared = compare_trees(before, after)
    out = text(compared)
    assert_snapshot("bert_lora_compared.txt", out)
    lines = out.splitlines()
    # PEFT's wrappers are seen through: the original model is aligned under base_model.model, no prefix given.
    assert "  └── base_model (LoraModel)" in lines
    assert not any(line.startswith("-") for line in lines), "nothing of BERT was removed"
    # The original weight is moved into base_layer and now frozen, not removed and added.
    assert any(line.startswith("~") and "base_layer (Linear) weight:[768, 768] bias:[768]" in line for line in lines), (
        out
    )
    assert any(line.endswith("  (moved from the parent, was tunable)") for line in lines), out
    # query and value were adapted alike: they fold, as in the plain figure of the adapted model.
    assert any("query,value (lora.Linear, was Linear)" in line for line in lines)
    assert any(line.startswith("+") and "lora_A (ModuleDict)" in line for line in lines)
    # The twelve identically adapted layers still fold.
    assert any(line.endswith("0-11 (BertLayer)") for line in lines)
    # What stayed tunable (intermediate, LayerNorm, cls) is unchanged; the rest is newly frozen.
    intermediate = next(line for line in lines if "intermediate (BertIntermediate)" in line)
    assert intermediate.startswith(" ")
    assert any(
        line.startswith("~") and "key (Linear) weight:[768, 768] bias:[768] (was tunable)" in line for line in lines
    )
    changes = compared.changes
    assert changes is not None
    assert changes.added == 12 * 2 * 2 * 8 * 768 == summarize(after).delta
    assert changes.removed == 0 and changes.unfrozen == 0
    assert changes.frozen + changes.unchanged + changes.added == summarize(after).total
    assert " ".join(line.strip() for line in lines[-2:]) == (
        "changes: +294.9K added (0.27%), 80.5M newly frozen (73.31%), 0 newly tunable, 29.0M unchanged (26.42%)"
    )


def test_the_compared_tree_is_data() -> None:
    before, after = tutorial_flow()
    compared = compare_trees(before, after)
    again = ModelTree.from_json(compared.to_json())
    assert again == compared and again.changes == compared.changes
    assert text(again) == text(compared)
    # A cached (JSON) before does as well as a fresh one.
    assert compare_trees(ModelTree.from_json(before.to_json()), after) == compared


def test_changes_only_leaves_out_what_did_not_change() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), nn.Linear(4, 2))
    before = build_tree(model)
    model[2].weight.requires_grad = False
    out = text(compare_trees(before, build_tree(model), changes_only=True))
    assert out.splitlines()[:2] == ["  root", "~ └── 2 (Linear) weight:[2, 4] (was tunable) bias:[2]"]
    assert out.splitlines()[-1] == "⋯ 4 unchanged modules not shown (:changes-only:)"
    # The totals are the whole model's, not those of the part shown.
    assert out.splitlines()[-3] == "parameters: 58 total, 50 tunable (86.21%), 8 frozen, 0 delta"


class Adapter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Linear(8, 2)
        self.up = nn.Linear(2, 8)


def opendelta_style(layers: int, adapted: range) -> nn.Module:
    """OpenDelta's way: adapters added in place to chosen layers, marked ``_is_delta``, the backbone frozen."""
    model = nn.Sequential(*(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(layers)))
    for parameter in model.parameters():
        parameter.requires_grad = False
    for index in adapted:
        adapter = Adapter()
        adapter._is_delta = True  # type: ignore[assignment]
        model[index].add_module("adapter", adapter)
    return model


def test_opendelta_in_place_deltas_and_a_split_fold() -> None:
    model = nn.Sequential(*(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(12)))
    before = build_tree(model)
    after = build_tree(opendelta_style(12, range(6)))
    lines = text(compare_trees(before, after)).splitlines()
    # Adapting only layers 0-5 splits the stack: the adapted group and the untouched one.
    assert "~ ├── 0-5 (Sequential)" not in lines  # the layer's own line: its parameters did not change
    heads = [line for line in lines if "(Sequential)" in line]
    assert heads == ["  ├── 0-5 (Sequential)", "  └── 6-11 (Sequential)"], lines
    assert "+ │   └── adapter (Adapter)" in lines
    assert "+ │       ├── down (Linear) weight:[2, 8] bias:[2]" in lines
    assert "~ │   ├── 0 (Linear) weight:[8, 8] bias:[8] (was tunable)" in lines
    # Compared path by path: the same model with no change is all blank marks.
    same = text(compare_trees(before, build_tree(model)))
    assert all(line.startswith("  ") for line in same.splitlines()[:-2])


def test_a_removed_module_and_a_dtype_change() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 2), nn.LayerNorm(2)))
    before = build_tree(model)
    del model[2][1]  # the LayerNorm goes
    model[1].to(torch.bfloat16)
    after = build_tree(model)
    lines = text(compare_trees(before, after)).splitlines()
    assert "~ ├── 1 (Linear) weight:[4, 4] bf16 bias:[4] bf16 (was float32)" in lines
    assert "-     └── 1 (LayerNorm) weight:[2] bias:[2]" in lines
    compared = compare_trees(before, after)
    assert compared.changes is not None and compared.changes.removed == 4
    assert summarize(compared).total == summarize(after).total, "removed parameters are not counted"


def test_a_shape_change_and_a_retyped_module() -> None:
    before = build_tree(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    after = build_tree(nn.Sequential(nn.Linear(4, 8), nn.Conv1d(4, 4, 1)))
    lines = text(compare_trees(before, after)).splitlines()
    assert "~ ├── 0 (Linear) weight:[8, 4] bias:[8] (was [4, 4], was [4])" not in lines
    assert "~ ├── 0 (Linear) weight:[8, 4] (was [4, 4]) bias:[8] (was [4])" in lines
    assert "~ └── 1 (Conv1d, was Linear) weight:[4, 4, 1] (was [4, 4]) bias:[4]" in lines


def test_the_api_compares_with_an_earlier_figure(capsys: pytest.CaptureFixture[str]) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    before = Visualization(model).structure_graph(printTree=False)
    model[0].weight.requires_grad = False  # changed in place: the earlier figure keeps what it saw
    assert before.tree.root.children[0].params[0].requires_grad, "the earlier figure keeps what it saw"
    Visualization(model).structure_graph(compare=before, width=100, theme="light")
    printed = capsys.readouterr().out
    assert "\x1b[" in printed  # colors when stdout is captured in memory
    plain = str(Visualization(model).structure_graph(compare=before, printTree=False))
    assert "~ ├── 0 (Linear) weight:[4, 4] (was tunable) bias:[4]" in plain.splitlines()
    assert plain.splitlines()[-1] == (
        "changes: +0 added, 16 newly frozen (53.33%), 0 newly tunable, 14 unchanged (46.67%)"
    )


class Traced(nn.Sequential):
    """A model whose forward view has a module run twice (``body``) and one run while the model has it (``skip``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(self.body(x))
        return self.out(self.skip(x) if hasattr(self, "skip") else x)


def test_a_comparison_keeps_the_forward_view() -> None:
    net = Traced(OrderedDict(body=nn.Linear(4, 4), skip=nn.Linear(4, 4), out=nn.Linear(4, 2)))
    inputs = torch.ones(3, 4)
    before = Visualization(net).structure_graph(printTree=False, inputs=inputs)
    net.body.requires_grad_(False)
    del net.skip
    net.extra = nn.Linear(2, 2)
    figure = Visualization(net).structure_graph(printTree=False, inputs=inputs, compare=before)
    lines = str(figure).splitlines()
    # Marks in the gutter and what each module did in the traced pass, on the same lines.
    assert lines[:5] == [
        "  root → [3, 2]",
        "~ ├── body (Linear) weight:[4, 4] bias:[4] (was tunable) → [3, 4] ×2",
        "  ├── out (Linear) weight:[2, 4] bias:[2] → [3, 2]",
        "+ ├── extra (Linear) weight:[2, 2] bias:[2] (never called)",
        # Removed: not in the later pass, so nothing said of it (not the earlier pass's output, not "never called").
        "- └── skip (Linear) weight:[4, 4] bias:[4]",
    ]
    assert lines[-1] == "forward: [3, 4] -> [3, 2]"
    assert lines[-3].startswith("changes: +6 added")
    # The compared forward view is data like the others: through JSON, calls and outputs included.
    again = ModelTree.from_json(figure.tree.to_json())
    assert again == figure.tree and again.forward == "[3, 4] -> [3, 2]"
    assert [(node.name, node.calls) for node in again.root.children] == [
        ("body", 2),
        ("out", 1),
        ("extra", 0),
        ("skip", -1),
    ]


def test_the_cli_compares_two_snippets(tmp_path: Path) -> None:
    (tmp_path / "before.py").write_text("from torch import nn\nnet = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))\n")
    (tmp_path / "after.py").write_text(
        "from torch import nn\nnet = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))\n"
        "net[0].requires_grad_(False)\nnet.add_module('head', nn.Linear(2, 2))\n"
    )
    command = [sys.executable, "-m", "sphinx_modelvis", str(tmp_path / "after.py")]
    compare = ["--compare", str(tmp_path / "before.py")]
    done = subprocess.run(
        [*command, *compare, "--format", "txt"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "~ ├── 0 (Linear) weight:[4, 4] bias:[4] (was tunable)" in lines
    assert "+ └── head (Linear) weight:[2, 2] bias:[2]" in lines
    only = subprocess.run(
        [*command, *compare, "--changes-only", "--format", "txt"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "1 (Linear)" not in only.stdout and "⋯ 1 unchanged module not shown (:changes-only:)" in only.stdout
    wrong = subprocess.run(
        [*command, "--changes-only"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "--compare BEFORE" in wrong.stderr


def test_a_model_thousands_deep_compares_without_recursion() -> None:
    leaf = nn.Linear(2, 2)
    deep: nn.Module = leaf
    for _ in range(3000):
        deep = nn.Sequential(deep)
    before = build_tree(deep)
    leaf.weight.requires_grad = False  # torch's own parameters() recurses: reached directly
    compared = compare_trees(before, build_tree(deep))
    assert compared.changes is not None and compared.changes.frozen == 4 and compared.changes.unchanged == 2
    gone = compare_trees(before, build_tree(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))))
    assert gone.changes is not None and gone.changes.removed == 6 and gone.changes.added == 12
