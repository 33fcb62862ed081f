"""BERT with LoRA adapters (PEFT) on its query and value projections: the README's second example."""

from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForMaskedLM

backbone_model = BertForMaskedLM(BertConfig())
delta_model = get_peft_model(backbone_model, LoraConfig(r=8, target_modules=["query", "value"]))
