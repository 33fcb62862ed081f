"""Real transformers and PEFT models built from their configs (no weights downloaded), as exact-text snapshots.

Regenerate the snapshots with `make snapshots` after an intended change, and review the diff.
"""

from __future__ import annotations

import pytest
import torch
from snapshot import assert_snapshot
from sphinx_html import colors_of

from sphinx_modelvis import build_tree
from sphinx_modelvis.folding import summarize
from sphinx_modelvis.rendering import render

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

LLAMA_70B = dict(
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    vocab_size=128256,
    max_position_embeddings=131072,
    tie_word_embeddings=False,
)


def text(model: torch.nn.Module, **kwargs: object) -> str:
    return str(render(build_tree(model, **kwargs), format="text"))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bert() -> torch.nn.Module:
    return transformers.BertForMaskedLM(transformers.BertConfig())


def test_bert_snapshot(bert: torch.nn.Module) -> None:
    out = text(bert)
    assert_snapshot("bert.txt", out)
    assert "│           └── 0-11 (BertLayer)" in out
    assert "query,key,value (Linear) weight:[768, 768] bias:[768]" in out
    assert "(tied to bert.embeddings.word_embeddings.weight)" in out
    unique = sum(p.numel() for p in bert.parameters())
    assert summarize(build_tree(bert)).total == unique
    assert out.splitlines()[-1].startswith("parameters: 109.5M total, 109.5M tunable (100.00%)")


def test_bert_keep_non_params_snapshot(bert: torch.nn.Module) -> None:
    out = text(bert, keep_non_params=True)
    assert_snapshot("bert_keep_non_params.txt", out)
    assert "intermediate_act_fn (GELUActivation)" in out and "dropout (Dropout)" in out


def test_peft_lora_bert_snapshot() -> None:
    with torch.device("meta"):
        base = transformers.BertForMaskedLM(transformers.BertConfig())
        model = peft.get_peft_model(base, peft.LoraConfig(r=8, target_modules=["query", "value"]))
    tree = build_tree(model)
    out = str(render(tree, format="text"))
    assert_snapshot("bert_lora.txt", out)
    assert "query,value (lora.Linear)" in out and "lora_A (ModuleDict)" in out
    assert "key (Linear)" in out, "PEFT's Linear is told from torch's, which keeps its bare name"
    summary = summarize(tree)
    assert summary.delta == summary.tunable == 12 * 2 * (8 * 768 * 2)
    # LoRA matrices are purple (delta), the frozen base weights grey.
    svg = render(tree, format="svg")
    assert isinstance(svg, str)
    from sphinx_modelvis.theme import DARK

    assert colors_of(svg, "weight:[8, 768]") == {DARK.delta.color}  # lora_A
    assert colors_of(svg, "weight:[768, 8]") == {DARK.delta.color}  # lora_B
    assert colors_of(svg, "weight:[768, 768]") == {DARK.frozen.color}  # query, key, value, ...


SMALL_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


@pytest.mark.parametrize(
    ("head", "config"),
    [
        (
            "BertModel",
            lambda: peft.IA3Config(
                target_modules=["key", "value", "output.dense"], feedforward_modules=["output.dense"]
            ),
        ),
        ("BertModel", lambda: peft.LoHaConfig(r=4, target_modules=["query"])),
        ("BertForSequenceClassification", lambda: peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)),
        ("BertForSequenceClassification", lambda: peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)),
    ],
    ids=["ia3", "loha", "prompt", "prefix"],
)
def test_other_peft_adapters_are_delta(head: str, config: object) -> None:
    model = peft.get_peft_model(getattr(transformers, head)(transformers.BertConfig(**SMALL_BERT)), config())  # type: ignore[operator]
    tree = build_tree(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert summarize(tree).delta == trainable > 0


def test_modules_to_save_copy_and_prompt_encoder_are_delta_the_original_frozen() -> None:
    base = transformers.BertForSequenceClassification(transformers.BertConfig(**SMALL_BERT))
    tree = build_tree(peft.get_peft_model(base, peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)))
    states: dict[str, set[str]] = {}
    for node in tree.root.walk():
        for child in node.children:
            for below in child.walk():
                states.setdefault(child.name, set()).update(param.state for param in below.params)
    assert states["original_module"] == {"frozen"}
    assert states["modules_to_save"] == states["prompt_encoder"] == {"delta"}


def test_gpt2_snapshot() -> None:
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    out = text(model)
    assert_snapshot("gpt2.txt", out)
    assert "0-11 (GPT2Block)" in out and "124.4M total" in out


def test_t5_snapshot() -> None:
    with torch.device("meta"):
        model = transformers.T5ForConditionalGeneration(transformers.T5Config())
    out = text(model)
    assert_snapshot("t5.txt", out)
    assert "embed_tokens (Embedding) weight:[32128, 512] (tied to shared.weight)" in out
    assert summarize(build_tree(model)).total == sum(p.numel() for p in model.parameters())


def test_llama_70b_on_the_meta_device_snapshot() -> None:
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA_70B))
    out = text(model)
    assert_snapshot("llama70b.txt", out)
    assert "0-79 (LlamaDecoderLayer)" in out
    assert "70.6B total" in out
