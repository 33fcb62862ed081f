"""``structure_graph(common_structure=True, mapping=..., only_common=...)``: the drop-in for bigmodelvis users, on a
real BERT built from its config.

What bigmodelvis documents and does, which these tests hold us to (thunlp/OpenDelta,
``opendelta/utils/visualization.py``, ``Visualization.structure_graph`` and ``build_common_tree``, the same code as
the ``bigmodelvis`` package; the mapping format of ``opendelta/utils/structure_mapping.py``):

- ``structure_graph(rootname, expand_params, keep_non_params, common_structure, mapping, only_common, printTree)``;
- "common_structure: Whether convert the structure into a common structure defined in structure_mapping.py. The
  not common structure will be displayed in grey." A key of the mapping is a module's dotted name below the last
  mapped module; ``__name__`` its common name; ``$`` any child, its name kept; a dotted common name inserts
  "Virtual" modules; a common name met twice under one parent is one module; an unmapped module disappears, its
  children looked up with its name in front;
- "only_common: Whether ignore the modules that are not in common structure." (those whose ``__name__`` is ``""``);
- "mapping: The structure mapping. Must provide if common_structure=True." (a ``RuntimeError`` there: here a
  ``ValueError``), and ``keep_non_params`` "can't be used with common_structure".
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout

import pytest
from transformers import BertConfig, BertForMaskedLM

from sphinx_modelvis import Visualization
from sphinx_modelvis.folding import summarize
from sphinx_modelvis.tree import ModelTree

#: A BERT mapping in OpenDelta's format: dotted keys, ``$``, a dotted common name (``ff.w1``) that the later
#: ``output`` joins, and modules without a common name (``""``).
BERT_MAPPING = {
    "bert.embeddings.word_embeddings": {"__name__": "embeddings"},
    "bert.embeddings.position_embeddings": {"__name__": ""},
    "bert.embeddings.token_type_embeddings": {"__name__": ""},
    "bert.embeddings.LayerNorm": {"__name__": ""},
    "bert.encoder": {
        "__name__": "encoder",
        "layer": {
            "__name__": "block",
            "$": {
                "__name__": "$",
                "attention": {
                    "__name__": "attn",
                    "self.query": {"__name__": "q"},
                    "self.key": {"__name__": "k"},
                    "self.value": {"__name__": "v"},
                    "output.dense": {"__name__": "proj"},
                    "output.LayerNorm": {"__name__": "layer_norm"},
                },
                "intermediate.dense": {"__name__": "ff.w1"},
                "output": {"__name__": "ff", "dense": {"__name__": "w2"}, "LayerNorm": {"__name__": "layer_norm"}},
            },
        },
    },
    "cls.predictions": {
        "__name__": "lm_head",
        "transform.dense": {"__name__": ""},
        "transform.LayerNorm": {"__name__": ""},
        "decoder": {"__name__": "proj"},
    },
}


@pytest.fixture(scope="module")
def bert() -> BertForMaskedLM:
    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16)
    return BertForMaskedLM(config)


def keys(tree: ModelTree) -> list[str]:
    return [path for path, _ in tree.root.places()[1:]]


def test_common_structure_renames_modules_as_the_mapping_says(bert: BertForMaskedLM) -> None:
    figure = Visualization(bert).structure_graph(common_structure=True, mapping=BERT_MAPPING, printTree=False)
    tree = figure.tree
    common = keys(tree)
    assert common[:4] == [
        "embeddings",
        "bert.embeddings.position_embeddings",
        "bert.embeddings.token_type_embeddings",
        "bert.embeddings.LayerNorm",
    ]
    layer = [key.removeprefix("encoder.block.1.") for key in common if key.startswith("encoder.block.1.")]
    # intermediate.dense made the virtual "ff" first; the layer's output joined it, its class and its children.
    assert layer == [
        "attn",
        "attn.q",
        "attn.k",
        "attn.v",
        "attn.proj",
        "attn.layer_norm",
        "ff",
        "ff.w1",
        "ff.w2",
        "ff.layer_norm",
    ]
    assert [key for key in common if key.startswith("encoder.block.") and key.count(".") == 2] == [
        f"encoder.block.{index}" for index in range(3)
    ]
    assert common[-3:] == ["lm_head.transform.dense", "lm_head.transform.LayerNorm", "lm_head.proj"]
    nodes = dict(tree.root.places())
    assert nodes["encoder.block.0.ff"].type_name == "BertOutput"
    assert nodes["encoder.block.0.attn.q"].type_name == "Linear"
    # Only the modules without a common name are marked, and drawn faint.
    assert {path for path, node in nodes.items() if not node.common} == {
        "bert.embeddings.position_embeddings",
        "bert.embeddings.token_type_embeddings",
        "bert.embeddings.LayerNorm",
        "lm_head.transform.dense",
        "lm_head.transform.LayerNorm",
    }
    # Every parameter is still there: the common structure names them, it does not drop them.
    assert summarize(tree) == summarize(Visualization(bert).structure_graph(printTree=False).tree)
    # The three layers fold as before, under their common names.
    assert "encoder (BertEncoder)" in str(figure) and "block (ModuleList)" in str(figure)
    assert "0-2 (BertLayer)" in str(figure) and "ff (BertOutput)" in str(figure)


def test_modules_without_a_common_name_are_drawn_faint(bert: BertForMaskedLM) -> None:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        Visualization(bert).structure_graph(common_structure=True, mapping=BERT_MAPPING, theme="dark")
    printed = buffer.getvalue()
    from sphinx_modelvis.theme import DARK

    def colored(text: str, color: str) -> str:
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        return f"38;2;{r};{g};{b}m{text}"

    assert colored("bert.embeddings.position_embeddings", DARK.note.color) in printed
    assert colored("embeddings", DARK.module_name.color) in printed


def test_only_common_leaves_out_the_modules_without_a_common_name(bert: BertForMaskedLM) -> None:
    # Positionally, in bigmodelvis's order.
    tree = Visualization(bert).structure_graph("root", False, False, True, BERT_MAPPING, True, False).tree
    common = keys(tree)
    assert not any(key.startswith("bert.") or ".transform." in key for key in common)
    assert common[0] == "embeddings" and common[-1] == "lm_head.proj"
    assert all(node.common for _, node in tree.root.places())


def test_the_mapping_may_be_opendeltas_common_structure_map_object(bert: BertForMaskedLM) -> None:
    class CommonStructureMap:  # what OpenDelta's CommonStructureMap holds: the dict as .mapping
        def __init__(self, mapping: dict[str, object]) -> None:
            self.mapping = mapping

    wrapped = Visualization(bert).structure_graph(
        common_structure=True, mapping=CommonStructureMap(BERT_MAPPING), printTree=False
    )
    plain = Visualization(bert).structure_graph(common_structure=True, mapping=BERT_MAPPING, printTree=False)
    assert wrapped.tree == plain.tree


def test_a_parameter_module_the_mapping_misses_is_warned_about(bert: BertForMaskedLM) -> None:
    partial = {"bert.encoder": {"__name__": "encoder", "layer": {"__name__": "block"}}}
    # The layers' names have no "$": nothing below them is reached (the embeddings are not named at all).
    message = r"no common name for 31 parameter module\(s\): bert\.embeddings\.word_embeddings \(under the root\), "
    with pytest.warns(UserWarning, match=message) as caught:
        tree = Visualization(bert).structure_graph(common_structure=True, mapping=partial, printTree=False).tree
    assert len(caught) == 1 and "and 26 more" in str(caught[0].message)
    assert keys(tree) == []


def test_bigmodelvis_refusals(bert: BertForMaskedLM) -> None:
    with pytest.raises(ValueError, match="needs a mapping"):
        Visualization(bert).structure_graph(common_structure=True, printTree=False)
    with pytest.raises(ValueError, match="keep_non_params can't be used with common_structure"):
        Visualization(bert).structure_graph(
            keep_non_params=True, common_structure=True, mapping=BERT_MAPPING, printTree=False
        )
    # Without common_structure, a mapping and only_common change nothing, as in bigmodelvis.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ignored = Visualization(bert).structure_graph(mapping=BERT_MAPPING, only_common=True, printTree=False)
    assert ignored.tree == Visualization(bert).structure_graph(printTree=False).tree
