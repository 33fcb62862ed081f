"""The models the benchmarks draw: two real architectures and four synthetic shapes, built without weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["MODELS", "BenchModel", "Block", "Link", "NoFold", "Wide", "chain", "sequential_blocks"]


class Block(nn.Module):
    """One block of the wide model: a ``Linear(8, 8)`` and a ``LayerNorm(8)`` (three modules)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)


class Wide(nn.Module):
    """``blocks``: a ``ModuleList`` of identical :class:`Block` s; ``3 * n + 2`` modules, all fold into one line."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(n))


def sequential_blocks(n: int) -> nn.Module:
    """A ``ModuleList`` of ``n`` ``Sequential(Linear(8, 8), LayerNorm(8), Linear(8, 8))``: ``4 * n + 1`` modules.

    The shape the hardening issue measured (30,000 blocks: 120,001 modules).
    """
    return nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 8)) for _ in range(n))


class NoFold(nn.Module):
    """``layers``: ``Linear(i + 1, 1)`` for ``i < n``: each weight of its own shape, no fold; ``n + 2`` modules."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(i + 1, 1, bias=False) for i in range(n))


class Link(nn.Module):
    """One level of a chain: its own ``weight`` of shape ``[4]`` and the rest of the chain as ``next``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4))
        self.next = inner


def chain(depth: int) -> nn.Module:
    """``depth`` modules, each the only child of the one above: ``depth - 1`` :class:`Link` s around a ``Linear(4, 4)``.

    The innermost module is a ``Linear`` rather than another ``Link``: bigmodelvis 0.0.1 folds a module
    whose only content is a ``weight:[4]`` with a sibling parameter node of the same label, and then
    fails (``TypeError`` in ``neat_expr``); the chain is about depth, not about that bug.
    """
    module: nn.Module = nn.Linear(4, 4)
    for _ in range(depth - 1):  # built from the inside out, so nothing recurses
        module = Link(module)
    return module


def bert_base() -> nn.Module:
    """``BertForMaskedLM(BertConfig())``: BERT-base, 110M parameters, randomly initialized on the CPU."""
    from transformers import BertConfig, BertForMaskedLM

    return BertForMaskedLM(BertConfig())


def llama_70b_config(vocab_size: int = 128256) -> Any:
    """Llama 3 70B's configuration (80 layers, hidden size 8192); ``vocab_size=32000``: Llama 2 70B's."""
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=vocab_size,
    )


def llama_70b() -> nn.Module:
    """Llama 3 70B's shape on the meta device: shapes only, no memory."""
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(llama_70b_config())


def _on_meta(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def on_meta() -> nn.Module:
        with torch.device("meta"):
            return build()

    return on_meta


@dataclass(frozen=True)
class BenchModel:
    """A model to draw: its name in tables, how to build it, and whether it is one of the synthetic shapes."""

    name: str
    build: Callable[[], nn.Module]
    synthetic: bool
    description: str


MODELS: list[BenchModel] = [
    BenchModel("bert-base", bert_base, False, "BertForMaskedLM(BertConfig()), CPU"),
    BenchModel("llama-70b", llama_70b, False, "LlamaForCausalLM, 70B config, meta device"),
    BenchModel("wide-120k", _on_meta(lambda: Wide(40_000)), True, "40,000 identical blocks, 120,002 modules, meta"),
    BenchModel(
        "seq-120k",
        _on_meta(lambda: sequential_blocks(30_000)),
        True,
        "30,000 Sequential(Linear, LayerNorm, Linear), 120,001 modules, meta",
    ),
    BenchModel("nofold-20k", _on_meta(lambda: NoFold(19_998)), True, "19,998 Linear of distinct shapes, meta"),
    BenchModel("chain-1000", lambda: chain(1000), True, "1,000 nested modules, CPU"),
    BenchModel("chain-5000", lambda: chain(5000), True, "5,000 nested modules, CPU"),
]
