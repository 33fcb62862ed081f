extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis tutorial"
numfig = True
exclude_patterns = ["_build"]
# A small BERT keeps the build fast; the tutorial's flow is unchanged.
modelvis_pre_code = """
from transformers import BertConfig
SMALL_BERT = BertConfig(
    vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
)
"""
