"""What a built tree reads off each tensor when it is not a plain ``nn.Parameter`` (found missing by the mutation run:
only plain parameters and lazy ones were ever built)."""

from __future__ import annotations

import torch
from torch import nn

from sphinx_modelvis import build_tree


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
