"""The README's figure: BERT built from its config (no weights downloaded)."""

from transformers import BertConfig, BertForMaskedLM

backbone_model = BertForMaskedLM(BertConfig())
