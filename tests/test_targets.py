"""Previewing an adapter config (``:targets:``, ``structure_graph(targets=)``, ``--targets``): the modules marked are
exactly those ``get_peft_model`` then wraps, the parameters counted are exactly those it adds, on BERT, Llama, T5
and a hybrid (Jamba: Mamba and attention layers in one stack), all built small from their configs; the model is
only read; the marks fold, travel through the JSON, and are drawn in every format and host."""

from __future__ import annotations

import copy
import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import Build, build_mkdocs_page, build_sphinx
from sphinx_html import figure_by_name, figure_lines
from torch import nn

from sphinx_modelvis import Visualization, build_tree
from sphinx_modelvis.capture import Capture, TreeBlock
from sphinx_modelvis.rendering import build_figure, page_figure, render
from sphinx_modelvis.target_summary import TargetSummary
from sphinx_modelvis.targets import preview_targets, target_view, target_warnings
from sphinx_modelvis.tree import ModelTree

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

pytestmark = pytest.mark.slow


def bert() -> nn.Module:
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=24
    )
    return transformers.BertForMaskedLM(config)


def llama() -> nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return transformers.LlamaForCausalLM(config)


def t5() -> nn.Module:
    config = transformers.T5Config(
        vocab_size=100, d_model=16, d_kv=8, d_ff=24, num_layers=2, num_decoder_layers=2, num_heads=2
    )
    return transformers.T5ForConditionalGeneration(config)


def jamba() -> nn.Module:
    """Mamba layers (0, 2) and attention layers (1, 3) in one stack, mixture-of-experts feed-forwards in 1 and 3."""
    config = transformers.JambaConfig(
        vocab_size=100,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_experts=2,
        num_experts_per_tok=1,
        expert_layer_period=2,
        expert_layer_offset=1,
        attn_layer_period=2,
        attn_layer_offset=1,
        mamba_d_state=4,
        mamba_d_conv=2,
        mamba_expand=2,
        mamba_dt_rank=4,
    )
    return transformers.JambaForCausalLM(config)


def bert_classifier() -> nn.Module:
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24
    )
    return transformers.BertForSequenceClassification(config)


def bert_tagger() -> nn.Module:
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24
    )
    return transformers.BertForTokenClassification(config)


MODELS = {
    "bert": bert,
    "llama": llama,
    "t5": t5,
    "jamba": jamba,
    "bert-classifier": bert_classifier,
    "bert-tagger": bert_tagger,
}


def lora(**options: Any) -> Any:
    return peft.LoraConfig(**options)


#: Per model, configs whose preview must agree with what PEFT then does (each applied to a fresh copy).
CASES = [
    ("bert", lambda: lora(r=8, target_modules=["query", "value"])),
    ("bert", lambda: lora(r=4, target_modules=["query", "value"], layers_to_transform=[0, 1])),
    ("bert", lambda: lora(r=2, target_modules="all-linear", modules_to_save=["cls"])),
    ("bert", lambda: lora(r=2, target_modules=["dense"], exclude_modules=["output.dense"], use_dora=True)),
    ("bert", lambda: lora(r=2, target_modules=["word_embeddings", "key"])),
    ("bert", lambda: lora(r=2, target_modules=["key"], lora_bias=True)),
    ("llama", lambda: lora(r=4, target_modules="all-linear")),
    ("llama", lambda: lora(r=4, target_modules=["q_proj", "down_proj"], rank_pattern={"down_proj": 2})),
    (
        "llama",
        lambda: lora(r=4, target_modules=["q_proj", "v_proj"], layers_to_transform=[2, 3], layers_pattern="layers"),
    ),
    ("llama", lambda: lora(r=4, target_modules=r".*layers\.[01]\.mlp\.(up|gate)_proj")),
    ("llama", lambda: peft.LoHaConfig(r=4, target_modules=["q_proj", "o_proj"])),
    ("t5", lambda: lora(r=4, target_modules=["q", "v"])),
    ("t5", lambda: peft.IA3Config()),  # PEFT's defaults for T5: its target and feed-forward modules
    ("t5", lambda: peft.IA3Config(target_modules=["k", "v", "wo"], feedforward_modules=["wo"])),
    ("t5", lambda: peft.LoHaConfig(r=2, target_modules=["q", "k"], exclude_modules=r".*decoder.*")),
    ("jamba", lambda: lora(r=4, target_modules=["q_proj", "v_proj"])),
    ("jamba", lambda: lora(r=4, target_modules=["in_proj", "out_proj", "x_proj"])),
    ("jamba", lambda: lora(r=2, target_modules="all-linear")),
    # Task models: PEFT keeps a trainable copy of the classification head.
    ("bert-classifier", lambda: lora(r=4, target_modules="all-linear", task_type="SEQ_CLS")),
    ("bert-classifier", lambda: lora(r=4, target_modules=["query"], task_type="SEQ_CLS", modules_to_save=["pooler"])),
    ("bert-tagger", lambda: lora(r=4, target_modules=["query", "value"], task_type="TOKEN_CLS")),
]


def _parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _applied(model: nn.Module, config: Any) -> tuple[set[str], set[str], int]:
    """What ``get_peft_model`` does to a copy: the keys it wraps in an adapter layer, those it saves, and how many
    parameters its ``get_nb_trainable_parameters`` counts beyond the model's own."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import ModulesToSaveWrapper

    target = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapted = peft.get_peft_model(target, copy.deepcopy(config))
    prefix = "base_model.model."
    wrapped = {
        key.removeprefix(prefix) for key, module in adapted.named_modules() if isinstance(module, BaseTunerLayer)
    }
    saved = {
        key.removeprefix(prefix) for key, module in adapted.named_modules() if isinstance(module, ModulesToSaveWrapper)
    }
    _trainable, total = adapted.get_nb_trainable_parameters()
    return wrapped, saved, total - _parameters(model)


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {name: make() for name, make in MODELS.items()}


@pytest.mark.parametrize(("model_name", "make_config"), CASES, ids=[f"{name}-{n}" for n, (name, _) in enumerate(CASES)])
def test_the_preview_marks_exactly_what_peft_wraps_and_counts_what_it_adds(
    models: dict[str, nn.Module], model_name: str, make_config: Any
) -> None:
    model = models[model_name]
    config = make_config()
    written = copy.deepcopy(config)
    preview = preview_targets(model, config)
    wrapped, saved, added = _applied(model, config)
    assert wrapped, "every case adapts something"
    assert set(preview.adapted) == wrapped
    assert set(preview.saved) == saved
    assert preview.summary.counted
    assert preview.summary.added == added
    assert preview.summary.adapted == len(wrapped)
    assert config == written, (
        "the config given is not changed (all-linear and PEFT's defaults are worked out on a copy)"
    )


def test_a_config_that_matches_nothing_is_an_error_in_peft_and_a_warning_here(models: dict[str, nn.Module]) -> None:
    model = models["llama"]
    config = lora(r=4, target_modules=["query", "value"])
    preview = preview_targets(model, config)
    assert preview.adapted == {} and preview.summary.unmatched == ("query", "value")
    with pytest.raises(ValueError, match="not found in the base model"):
        _applied(model, config)
    tree = target_view(model, build_tree(model), config)
    (warning,) = target_warnings(Capture([TreeBlock(tree)]))
    assert "'query', 'value' matched no module" in warning


def test_entries_that_match_nothing_beside_others_that_match(models: dict[str, nn.Module]) -> None:
    summary = preview_targets(models["llama"], lora(target_modules=["q_proj", "query"])).summary
    assert summary.unmatched == ("query",) and summary.adapted == 4


def test_a_subset_of_layers_splits_the_folded_stack(models: dict[str, nn.Module]) -> None:
    model = models["bert"]
    config = lora(r=4, target_modules=["query", "value"], layers_to_transform=[0, 1])
    summary = preview_targets(model, config).summary
    assert summary.partial == (("query", 2, 4, "0-1"), ("value", 2, 4, "0-1"))
    text = Visualization(model).structure_graph(targets=config, printTree=False).render("text", width=100)
    lines = str(text).splitlines()
    assert "  │           ├── 0-1 (BertLayer)" in lines
    assert "◆ │           │   │   │   ├── query,value (Linear) weight:[16, 16] bias:[16] (adapted)" in lines
    assert "  │           └── 2-3 (BertLayer)" in lines
    assert "  │               │   │   └── query,key,value (Linear) weight:[16, 16] bias:[16]" in lines
    assert "targets: ◆ 4 adapted (LoRA r=4), +512 parameters (2.83%)" in lines
    assert "matched part of a stack: 'query' 2 of 4 (0-1), 'value' 2 of 4 (0-1)" in lines
    tree = target_view(model, build_tree(model), config)
    assert ModelTree.from_json(tree.to_json()) == tree, "the marks and the partial entries round-trip"


def test_a_hybrid_stack_matched_where_its_kind_of_layer_has_the_name_is_not_partial(
    models: dict[str, nn.Module],
) -> None:
    preview = preview_targets(models["jamba"], lora(target_modules=["q_proj", "in_proj"]))
    assert sorted(preview.adapted) == [
        "model.layers.0.mamba.in_proj",
        "model.layers.1.self_attn.q_proj",
        "model.layers.2.mamba.in_proj",
        "model.layers.3.self_attn.q_proj",
    ]
    assert preview.summary.partial == ()
    in_some_layers = lora(target_modules=["q_proj", "in_proj"], layers_to_transform=[0, 1])
    partial = preview_targets(models["jamba"], in_some_layers).summary.partial
    assert partial == (("in_proj", 1, 2, "0"), ("q_proj", 1, 2, "1")), "of the layers of its kind"
    lines = render(
        target_view(models["jamba"], build_tree(models["jamba"]), lora(target_modules=["q_proj"])), format="text"
    )
    assert "matched part" not in str(lines)


def test_all_linear_is_expanded_and_leaves_the_output_layer_out(models: dict[str, nn.Module]) -> None:
    model = models["llama"]
    preview = preview_targets(model, lora(target_modules="all-linear"))
    assert "lm_head" not in preview.adapted
    assert preview.summary.notes == ("all-linear: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",)
    text = str(render(target_view(model, build_tree(model), lora(target_modules="all-linear")), format="text"))
    assert "  └── lm_head (Linear) weight:[100, 16]" in text.splitlines()


def test_modules_to_save_and_exclude_modules_have_their_own_marks(models: dict[str, nn.Module]) -> None:
    model = models["bert"]
    config = lora(r=2, target_modules=["dense"], exclude_modules=["output.dense"], modules_to_save=["cls"])
    text = str(render(target_view(model, build_tree(model), config), format="text")).splitlines()
    assert "◆ │               ├── intermediate (BertIntermediate)" not in text
    assert "◆ │               │   └── dense (Linear) weight:[24, 16] bias:[24] (adapted)" in text
    assert "◇ │               │       ├── dense (Linear) weight:[16, 16] bias:[16] (excluded)" in text
    assert "■ └── cls (BertOnlyMLMHead) (saved)" in text
    assert any(
        line.startswith("targets: ◆ 4 adapted (LoRA r=2), +") and line.endswith("■ 1 saved, ◇ 8 excluded")
        for line in text
    )


def test_the_model_is_the_same_object_untouched_after_the_preview(models: dict[str, nn.Module]) -> None:
    model = models["llama"]
    before_keys = list(model.state_dict())
    before_modules = [(key, id(module)) for key, module in model.named_modules()]
    namespace: dict[str, Any] = {"model": model}
    same = namespace["model"]
    Visualization(model).structure_graph(
        targets=lora(target_modules="all-linear", modules_to_save=["lm_head"]), printTree=False
    )
    assert namespace["model"] is same and id(namespace["model"]) == id(model)
    assert list(model.state_dict()) == before_keys
    assert [(key, id(module)) for key, module in model.named_modules()] == before_modules
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_a_plain_list_of_names_as_opendelta_took_them(models: dict[str, nn.Module]) -> None:
    model = models["bert"]
    preview = preview_targets(model, ["attention.self.query", "[r]layer\\.[01]\\.output\\.dense", "nowhere"])
    assert sorted(preview.adapted) == sorted(
        [f"bert.encoder.layer.{i}.attention.self.query" for i in range(4)]
        + ["bert.encoder.layer.0.output.dense", "bert.encoder.layer.1.output.dense"]
    )
    assert preview.summary.unmatched == ("nowhere",) and not preview.summary.counted and not preview.summary.method
    assert preview_targets(model, "query").summary.adapted == 4
    with pytest.raises(Exception, match="give a PEFT config"):
        preview_targets(model, 3)


def test_a_family_whose_adapters_are_not_counted_says_so(models: dict[str, nn.Module]) -> None:
    summary = preview_targets(models["llama"], peft.LoKrConfig(r=4, target_modules=["q_proj"])).summary
    assert summary.adapted == 4 and summary.method == "LOKR r=4" and not summary.counted
    text = str(
        render(
            target_view(models["llama"], build_tree(models["llama"]), peft.LoKrConfig(r=4, target_modules=["q_proj"])),
            format="text",
        )
    )
    assert "targets: ◆ 4 adapted (LOKR r=4), added parameters not counted" in text


def test_the_summary_is_data_and_folds_with_the_marks(models: dict[str, nn.Module]) -> None:
    model = models["t5"]
    tree = target_view(model, build_tree(model), lora(r=4, target_modules=["q", "nope"]))
    again = ModelTree.from_json(tree.to_json())
    assert again == tree and again.targets == tree.targets
    assert tree.targets == TargetSummary(
        method="LoRA r=4", adapted=6, added=6 * 4 * 32, counted=True, unmatched=("nope",)
    )
    assert tree != build_tree(model), "the marks are part of what equality compares"


def test_every_format_draws_the_marks_and_compare_keeps_them(models: dict[str, nn.Module]) -> None:
    model = models["bert"]
    before = build_tree(model)
    tree = target_view(model, before, lora(r=2, target_modules=["query"], modules_to_save=["cls"]))
    from sphinx_modelvis.compare import compare_trees

    compared = compare_trees(before, tree)
    text = str(render(compared, format="text")).splitlines()
    assert "◆   │               │   │   ├── query (Linear) weight:[16, 16] bias:[16] (adapted)" in text, (
        "preview mark, then compare"
    )
    assert "■   └── cls (BertOnlyMLMHead) (saved)" in text
    for theme in ("light", "dark"):
        svg = str(render(tree, format="svg", theme=theme))
        assert "◆" in svg and "■" in svg
        from sphinx_modelvis.theme import THEMES

        assert THEMES[theme].delta.color in svg and THEMES[theme].tunable.color in svg
    png = render(tree, format="png")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    html = page_figure(TreeBlock(tree), format="interactive")
    assert '<span class="d">◆</span> <i class="P">' in html and '<span class="u">■</span> <i class="E">' in html
    figure = build_figure(tree)
    assert figure.rows is not None and {row.gutter for row in figure.rows if row is not None} == {2}


# Hosts -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("targets", tmp_path_factory.mktemp("targets") / "src", "html")


def test_the_directive_in_rst_marks_the_layers_it_would_adapt(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "bert"))
    assert "◆                         query,value (Linear) weight:[16, 16] bias:[16] (adapted)" in lines, (
        "guides read as spaces"
    )
    assert "              0-1 (BertLayer)" in lines and "              2-3 (BertLayer)" in lines
    assert lines[-2] == "targets: ◆ 4 adapted (LoRA r=4), +512 parameters (2.85%)"


def test_a_target_that_matches_nothing_warns_at_the_directive_line(built: Build) -> None:
    assert re.search(
        r"index\.rst:18: WARNING: modelvis: :targets: LoRA r=4: the target_modules entry 'q_proj' matched no module",
        built.warnings,
    ), built.warnings
    assert "[modelvis.targets]" in built.warnings
    assert built.warnings.count("matched no module") == 1


def test_myst_with_compare(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("page"), "preview"))
    marked = [line for line in lines if line.startswith("◆")]
    assert marked == [
        "◆ ~     0 (Linear) weight:[8, 4] bias:[8] (was tunable) (adapted)",
        "◆       2 (Linear) weight:[2, 8] bias:[2] (adapted)",
    ]


def test_warnings_fail_a_build_under_W(tmp_path: Path) -> None:
    strict = build_sphinx("targets", tmp_path / "src", "html", warningiserror=True)
    assert strict.app.statuscode == 1
    assert strict.warnings.count("WARNING") == 1 and "[modelvis.targets]" in strict.warnings


def test_mkdocs_warns_and_strict_fails(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    page = (
        "# Targets\n\n```{modelvis} net\n:targets: ['0', 'missing']\n\nfrom torch import nn\n"
        "net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))\n```\n"
    )
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logging.getLogger("mkdocs").addHandler(handler)
    try:
        soup = build_mkdocs_page(tmp_path, page)
        assert any("index.md:3: :targets: the name 'missing' matched no module" in message for message in records), (
            records
        )
        assert figure_lines(soup.select_one("div.modelvis-figure"))[1].startswith("◆     0 (Linear)")
        with pytest.raises(Abort, match="strict mode"):
            build(load_config(str(tmp_path / "mkdocs.yml"), strict=True))
    finally:
        logging.getLogger("mkdocs").removeHandler(handler)


def test_the_cli(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text("from torch import nn\nnet = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n")
    command = [sys.executable, "-m", "sphinx_modelvis", str(tmp_path / "net.py"), "--format", "txt"]
    targets = "__import__('peft').LoraConfig(r=2, target_modules=['0', 'gone'])"
    done = subprocess.run([*command, "--targets", targets], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "◆ ├── 0 (Linear) weight:[8, 4] bias:[8] (adapted)" in done.stdout.splitlines()
    assert "targets: ◆ 1 adapted (LoRA r=2), +24 parameters (41.38%)" in done.stdout.splitlines()
    assert "warning: :targets: LoRA r=2: the target_modules entry 'gone' matched no module" in done.stderr
    done = subprocess.run([*command, "--targets", "undefined_config"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "the targets `undefined_config` could not be evaluated" in done.stderr
    assert "NameError" in done.stderr
    done = subprocess.run([*command, "--targets", "3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "the targets `3`: the targets are an int: give a PEFT config" in done.stderr


def test_sphinx_build_W_fails_again_incrementally_and_the_subtype_silences_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    page = "Page\n====\n\n.. modelvis:: net\n   :targets: ['0', 'gone']\n\n   from torch import nn\n"
    (src / "index.rst").write_text(page + "   net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))\n")
    command = [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(src), str(tmp_path / "out")]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    message = "index.rst:4: WARNING: modelvis: :targets: the name 'gone' matched no module of the model"
    assert first.returncode != 0 and message in first.stderr, first.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)  # incremental: read again
    assert again.returncode != 0 and message in again.stderr, again.stderr
    silenced = subprocess.run(
        [*command, "-E", "-D", "suppress_warnings=modelvis.targets"], capture_output=True, text=True
    )
    assert silenced.returncode == 0, silenced.stderr
