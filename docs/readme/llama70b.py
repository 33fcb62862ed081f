"""Llama 2 70B from its configuration: run with `--device meta` to show it without allocating 70B weights."""

import torch  # for a forward view's inputs: --inputs "torch.ones(1, 16, dtype=torch.long)"
from transformers import LlamaConfig, LlamaForCausalLM

config = LlamaConfig(
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    vocab_size=32000,
)
model = LlamaForCausalLM(config)
