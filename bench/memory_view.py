"""The memory view (issue 20 §1) against accelerate's ``estimate-memory`` logic on the same meta models, in one run.

accelerate's ``accelerate estimate-memory MODEL`` needs the model hub; its numbers come from two functions this
script calls on the very models the figures draw (built from their configs on the meta device, as the command
builds them): ``calculate_maximum_sizes(model)`` (the total it prints, and the largest layer) and
``compute_module_sizes(model)`` (bytes per module path). For each model the table gives both totals and whether
they agree, and how many of the figure's module lines carry exactly accelerate's bytes for their path (the
lines of modules met a second time, which carry nothing, left out).

Training is set beside accelerate's ``estimate_training_usage`` for the model's dtype, called as the command
calls it (on the model's size in fp32): for float32 it counts the model, gradients of the same size and Adam's
two states for *every* parameter (16 bytes a parameter); for a half dtype the model in fp32, gradients at 1.5x
(fp32 and half: "weight gradient + computation") and two fp32 states (18 bytes a parameter). Ours counts
gradients and states for the tunable parameters only (which is why a LoRA model differs), and fp32 master
weights for half-precision tunable weights. Run with the dev environment: ``.venv/bin/python bench/memory_view.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from machine import describe

CASES: dict[str, tuple[str, Callable[[], Any]]] = {}


def case(name: str, label: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(build: Callable[[], Any]) -> Callable[[], Any]:
        CASES[name] = (label, build)
        return build

    return register


@case("bert", "BERT-base (BertForMaskedLM), fp32")
def _bert() -> Any:
    from transformers import BertConfig, BertForMaskedLM

    return BertForMaskedLM(BertConfig())


@case("bert-lora", "BERT-base + LoRA r=8 on query, value, fp32")
def _bert_lora() -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(_bert(), LoraConfig(r=8, target_modules=["query", "value"]))


@case("gpt2", "GPT-2 (tied embedding), fp32")
def _gpt2() -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config())


@case("t5", "T5-base, fp32")
def _t5() -> Any:
    from transformers import T5Config, T5ForConditionalGeneration

    return T5ForConditionalGeneration(T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12))


@case("llama-70b", "Llama 2 70B config, bf16")
def _llama() -> Any:
    from models import llama_70b_config
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM._from_config(llama_70b_config(vocab_size=32000), dtype=torch.bfloat16)


def gib(size: float) -> str:
    return f"{size / 1024**3:.3f} GiB"


def main() -> int:
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes, compute_module_sizes

    from sphinx_modelvis import Visualization

    print("# The memory view against accelerate's estimate-memory\n")
    for line in describe(("sphinx-modelvis", "torch", "transformers", "peft", "accelerate")):
        print(line)
    print()
    print(
        "| model | ours: total | accelerate: total | agree | module lines equal to accelerate's | ours: training "
        "(Adam) | accelerate: training (Adam) | our figure |"
    )
    print("|---|---|---|---|---|---|---|---|")
    status = 0
    for _name, (label, build) in CASES.items():
        with torch.device("meta"):
            model = build()
        start = time.perf_counter()
        figure = Visualization(model).structure_graph(printTree=False, memory="training")
        str(figure)
        elapsed = time.perf_counter() - start
        summary = figure.tree.memory
        assert summary is not None
        total, _largest = calculate_maximum_sizes(model)
        sizes = compute_module_sizes(model)
        lines = [(path, node) for path, node in figure.tree.root.places() if node.shared_with is None and node.memory]
        equal = sum(1 for path, node in lines if sum(size for _d, size in node.memory) == sizes[path])
        dtype = next(iter(model.parameters())).dtype
        # As the command does: the model's size in fp32 (it loads every model so), then the dtype's estimate.
        count = sum(param.numel() for param in model.parameters())
        fp32_total = total + count * (4 - dtype.itemsize)
        theirs = estimate_training_usage(fp32_total, str(dtype).removeprefix("torch."))
        accelerate_training = sum(theirs[key] for key in ("model", "gradients", "optimizer"))
        agree = summary.weights == total
        status |= not agree or equal != len(lines)
        print(
            f"| {label} | {summary.weights:,} B ({gib(summary.weights)}) | {total:,} B ({gib(total)}) | "
            f"{'yes' if agree else 'NO'} | {equal} of {len(lines)} | {gib(summary.total)} | "
            f"{gib(accelerate_training)} | {elapsed:.2f} s |"
        )
    print(
        "\naccelerate's training column is its `estimate_training_usage` (model + gradients + optimizer, the "
        "columns `estimate-memory` adds up) for the model's dtype; ours is `:memory: training` with Adam."
    )
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
