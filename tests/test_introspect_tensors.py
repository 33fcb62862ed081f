"""What a built tree reads off each tensor when it is not a plain ``nn.Parameter`` (found missing by the mutation run:
only plain parameters and lazy ones were ever built)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sphinx_modelvis import build_tree
from sphinx_modelvis.folding import summarize
from sphinx_modelvis.tree import ParamInfo


class TaggedParameter(nn.Parameter):
    """A parameter subclass, as libraries make to tag weights (quantized, sharded): not read by the fast path."""


class TaggedTensor(torch.Tensor):
    """A tensor subclass, held as a buffer."""


def test_a_parameter_of_a_subclass_shows_its_shape_and_dtype() -> None:
    layer = nn.Linear(3, 5)
    layer.weight = TaggedParameter(torch.zeros(5, 3, dtype=torch.float16))
    layer.register_buffer("steps", torch.zeros(2, dtype=torch.int64).as_subclass(TaggedTensor))
    params = {param.name: param for param in build_tree(layer, show_buffers=True).root.params}
    assert (params["weight"].shape, params["weight"].dtype) == ((5, 3), "float16")
    assert params["bias"].shape == (5,)
    assert (params["steps"].shape, params["steps"].dtype, params["steps"].buffer) == ((2,), "int64", True)


def test_buffers_are_marked_as_buffers_and_not_counted() -> None:
    model = nn.Sequential(nn.BatchNorm1d(4), nn.BatchNorm1d(8))
    tree = build_tree(model, show_buffers=True)
    for child, size in zip(tree.root.children, (4, 8), strict=True):
        params = {param.name: param for param in child.params}
        assert params["weight"].buffer is False and params["weight"].state == "tunable"
        # Buffers of the same name in two modules keep their own shapes.
        assert (params["running_mean"].shape, params["running_mean"].buffer) == ((size,), True)
        assert params["running_mean"].state == "buffer"
    assert summarize(tree).total == 2 * (4 + 8)


def test_a_buffer_held_by_two_modules_is_marked_tied_where_met_again() -> None:
    mask = torch.ones(3)
    model = nn.Sequential(nn.Module(), nn.Module())
    model[0].register_buffer("mask", mask)
    model[1].register_buffer("mask", mask)
    first, second = build_tree(model, show_buffers=True, keep_non_params=True).root.children
    assert (first.params[0].tied_to, second.params[0].tied_to) == (None, "0.mask")


def test_the_delta_predicate_is_asked_about_each_parameter_with_the_parameter_itself() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4))
    model[1].weight = TaggedParameter(torch.ones(4))
    asked: dict[str, tuple[int, ...]] = {}

    def wide(name: str, param: torch.Tensor) -> bool:
        asked[name] = tuple(param.shape)
        return param.shape[-1] == 8

    tree = build_tree(model, show_buffers=True, delta=wide)
    # Buffers are never delta weights: the predicate is not asked about them.
    assert asked == {"0.weight": (4, 8), "0.bias": (4,), "1.weight": (4,), "1.bias": (4,)}
    assert [param.state for param in tree.root.children[0].params] == ["delta", "tunable"]


def test_a_child_registered_as_none_is_skipped_and_its_siblings_kept() -> None:
    model = nn.Module()
    model.add_module("a", nn.Linear(2, 2))
    model.add_module("gone", None)  # as models do for an optional part (``downsample = None``)
    model.add_module("c", nn.Linear(2, 2))
    assert [child.name for child in build_tree(model).root.children] == ["a", "c"]


def test_a_parameter_of_a_subclass_inside_an_adapter_is_a_delta_weight() -> None:
    # The same name, shape and dtype outside an adapter and inside one: two descriptions, not one.
    def tagged_linear() -> nn.Linear:
        layer = nn.Linear(2, 2)
        layer.weight = TaggedParameter(torch.ones(2, 2))
        return layer

    adapter = nn.Sequential(tagged_linear())
    adapter._is_delta = True  # type: ignore[assignment]  # OpenDelta's mark on an inserted module
    model = nn.Sequential(tagged_linear(), adapter)
    tree = build_tree(model)
    plain, inside = tree.root.children[0], tree.root.children[1].children[0]
    assert (plain.params[0].state, inside.params[0].state) == ("tunable", "delta")


@pytest.mark.parametrize(("wide", "narrow"), [(torch.float16, torch.float32), (torch.float32, torch.float16)])
def test_the_dominant_dtype_is_the_one_of_most_elements_between_two(wide: torch.dtype, narrow: torch.dtype) -> None:
    model = nn.Sequential(nn.Linear(8, 8).to(wide), nn.Linear(1, 1).to(narrow))
    assert build_tree(model).dominant_dtype == str(wide).removeprefix("torch.")


def test_a_model_without_parameters_is_float32() -> None:
    assert build_tree(nn.ReLU(), keep_non_params=True).dominant_dtype == "float32"


class MarkedAdapter(nn.Module):
    """An adapter class that marks itself delta for all its instances (a class attribute, not an instance's)."""

    _is_delta = True

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Linear(4, 2)


def test_an_adapter_class_marked_delta_holds_delta_weights() -> None:
    model = nn.Sequential(nn.Linear(4, 4), MarkedAdapter())
    assert summarize(build_tree(model)).delta == 4 * 2 + 2


def test_a_parameter_free_first_child_is_left_out_and_a_parameter_free_root_stays() -> None:
    assert [child.name for child in build_tree(nn.Sequential(nn.ReLU(), nn.Linear(2, 2))).root.children] == ["1"]
    root = build_tree(nn.Sequential(nn.ReLU())).root
    assert (root.type_name, root.children) == ("Sequential", [])


def test_a_buffer_is_never_tunable_nor_delta_even_inside_an_adapter() -> None:
    """A buffer's JSON carries no parameter flags, whatever marks the module it sits in (found by the mutation run)."""
    adapter = MarkedAdapter()
    adapter.register_buffer("scale", torch.ones(2))
    tree = build_tree(adapter, show_buffers=True, delta=lambda name, tensor: True)
    (scale,) = [param for param in tree.root.params if param.name == "scale"]
    assert (scale.buffer, scale.requires_grad, scale.delta, scale.state) == (True, False, False, "buffer")
    assert scale.to_json() == ParamInfo("scale", (2,), buffer=True, requires_grad=False).to_json()


def test_buffers_and_tied_weights_do_not_decide_the_dominant_dtype() -> None:
    """Only the weights a model counts decide its common dtype: a big float64 buffer or a tied copy does not."""
    model = nn.Sequential(nn.Embedding(4, 2).half(), nn.Linear(2, 4, bias=False).half())
    model[1].weight = model[0].weight  # tied: counted once, at its first place
    model.register_buffer("table", torch.zeros(1000, dtype=torch.float64))
    assert build_tree(model, show_buffers=True).dominant_dtype == "float16"
