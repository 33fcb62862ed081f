"""``torch.nn.Module`` to :class:`~sphinx_modelvis.tree.ModelTree`: one walk over a model's modules and parameters.

With :mod:`~sphinx_modelvis.delta`, :mod:`~sphinx_modelvis.type_labels` and :mod:`~sphinx_modelvis.tracing`
(the forward view's pass), the only modules that look at torch objects."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._gc import gc_paused
from .delta import NO_ADAPTERS, AdapterFinder, is_delta_module
from .errors import NotAModule
from .folding import subtree_totals
from .precision import dtype_name, quantized_form
from .tree import ModelTree, ModuleNode, ParamInfo, TreeFacts
from .type_labels import label_same_named_types

if TYPE_CHECKING:
    import torch

__all__ = ["DeltaPredicate", "build_tree", "dtype_name", "is_module"]

DeltaPredicate = Callable[[str, "torch.nn.Parameter"], bool]


def is_module(value: object) -> bool:
    """Whether ``value`` is a ``torch.nn.Module``, without importing torch when nothing did yet."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


class _TensorReader:
    """Reads a parameter's shape, dtype name and delta mark, with what can be known per class asked once.

    Most parameters are plain ``nn.Parameter`` s: their shape is a ``torch.Size`` of ints and their
    dtype one of a few, so both are read in C and the dtype's name comes from a small table.
    """

    __slots__ = ("_dtypes", "_plain", "_torch")

    def __init__(self) -> None:
        self._torch = sys.modules["torch"]
        self._dtypes: dict[Any, str] = {}
        #: Per tensor class: whether ``tuple(tensor.shape)`` gives its shape as plain ints.
        self._plain: dict[type, bool] = {}

    def shape(self, tensor: Any) -> tuple[int, ...] | None:
        kind = type(tensor)
        plain = self._plain.get(kind)
        if plain is None:
            torch = self._torch
            plain = self._plain[kind] = kind in (torch.nn.Parameter, torch.Tensor)
        if plain:
            return tuple(tensor.shape)
        if isinstance(tensor, self._torch.nn.parameter.UninitializedTensorMixin):
            return None
        try:
            return tuple(int(size) for size in tensor.shape)
        except Exception:  # odd tensor subclasses (nested, symbolic): show them with an unknown shape
            return None

    def dtype(self, tensor: Any) -> str:
        dtype = getattr(tensor, "dtype", None)
        name = self._dtypes.get(dtype)
        if name is None:
            name = self._dtypes[dtype] = dtype_name(dtype)
        return name


def build_tree(
    model: torch.nn.Module,
    *,
    keep_non_params: bool = False,
    expand_params: bool = False,
    show_buffers: bool = False,
    delta: DeltaPredicate | None = None,
) -> ModelTree:
    """The tree of ``model``: every module with its own parameters, in registration order.

    A module reachable from two parents is described once, where first reached, and marked as
    shared where met again; a parameter object met a second time (a tied weight) is marked as tied
    and not counted again. Delta parameters are recognized from OpenDelta's ``_is_delta``
    attribute (on the parameter or a module above it), from PEFT tuner layers, and from
    ``delta(name, param)``. Without ``keep_non_params``, modules with no parameter below them are left out.
    Nothing recurses, so very deep models work, and meta-device models are fine (only shapes are read).
    Identical subtrees of the result are one shared node object (see :class:`~sphinx_modelvis.tree.ModuleNode`).
    """
    if not is_module(model):
        raise NotAModule(f"expected a torch.nn.Module, got {type(model).__name__}")
    with gc_paused():
        return _TreeBuilder(keep_non_params, show_buffers, delta).build(model, expand_params)


class _TreeBuilder:
    """One walk over a model: its places (a module where it is reached) in registration order, then its nodes.

    The first pass reads every place in pre-order, as ``named_modules`` does, so that a shared module and
    a tied weight are described where met first. The second pass makes the nodes from the leaves up,
    one node object for each distinct name and subtree: a stack of identical layers costs one set of
    nodes below the layers, and folding them later compares small integers.
    Both loops run once per module of models with hundreds of thousands, and are written for speed.
    """

    def __init__(self, keep_non_params: bool, show_buffers: bool, delta: DeltaPredicate | None) -> None:
        self.keep_non_params = keep_non_params
        self.show_buffers = show_buffers
        self.delta = delta
        self.reader = _TensorReader()
        # One entry per place, by place number (the root is 0, children come after their parent).
        self.parents: list[int] = []
        self.names: list[str] = []
        self.kinds: list[type] = []
        #: Each place's own parameters, as numbers in ``described``.
        self.params: list[tuple[int, ...]] = []
        #: Where a module met again was met first, else -1.
        self.shared: list[int] = []
        #: Each place's children, in order; a leaf has the shared empty tuple (most places are leaves).
        self.kids: list[list[int] | tuple[()]] = []
        #: One entry per distinct parameter description: ``(ParamInfo, counted in the dominant dtype)``.
        self.described: list[tuple[ParamInfo, bool]] = []
        self._paths: dict[int, str] = {0: ""}

    def build(self, model: Any, expand_params: bool) -> ModelTree:
        self._read(model)
        root, facts = self._nodes()
        return ModelTree(root=root, dominant_dtype=self._dominant_dtype(), expand_params=expand_params, known=facts)

    def path(self, place: int) -> str:
        """The dotted path of a place (``""`` for the root), made only when a message needs it."""
        path = self._paths.get(place)
        if path is None:
            chain = []
            while place not in self._paths:
                chain.append(place)
                place = self.parents[place]
            path = self._paths[place]
            for step in reversed(chain):
                path = f"{path}.{self.names[step]}" if path else self.names[step]
                self._paths[step] = path
        return path

    def _qualified(self, place: int, key: str) -> str:
        owner = self.path(place)
        return f"{owner}.{key}" if owner else key

    def _read(self, model: Any) -> None:
        """The first pass: every place, with its own parameters described once per distinct description.

        Plain parameters are looked up by their torch ``Size`` and ``dtype`` as they are; a
        :class:`ParamInfo` is made only for a description not met before.
        """
        torch = sys.modules["torch"]
        plain_tensors = (torch.nn.Parameter, torch.Tensor)
        adapters_of = AdapterFinder() if "peft" in sys.modules else None
        delta = self.delta
        # Whether each kind of tensor a module holds is a buffer: parameters, and buffers when they are shown.
        kinds_shown = (False, True) if self.show_buffers else (False,)
        plain_types: dict[type, bool] = {}
        seen_modules: dict[int, int] = {}
        seen_params: dict[int, tuple[int, str]] = {}
        numbers: dict[tuple[Any, ...], int] = {}
        parents, names, kinds, params, shared, kids = (
            self.parents,
            self.names,
            self.kinds,
            self.params,
            self.shared,
            self.kids,
        )
        # Each entry: module, its parent place, its name, whether it lies inside a delta (adapter) module.
        stack: list[tuple[Any, int, str, bool]] = [(model, -1, "root", is_delta_module(model, plain_types))]
        push = stack.append
        while stack:
            module, parent, name, in_delta = stack.pop()
            place = len(names)
            parents.append(parent)
            names.append(name)
            kinds.append(type(module))
            kids.append(())
            if parent >= 0:
                siblings = kids[parent]
                if siblings:
                    siblings.append(place)  # type: ignore[union-attr]
                else:
                    kids[parent] = [place]
            first = seen_modules.setdefault(id(module), place)
            if first != place:
                shared.append(first)
                params.append(())
                continue
            shared.append(-1)
            own: list[int] = []
            for is_buffer in kinds_shown:
                for key, tensor in (module._buffers if is_buffer else module._parameters).items():
                    if tensor is None:
                        continue
                    met = (place, key)
                    first_met = seen_params.setdefault(id(tensor), met)
                    tied = None if first_met is met else first_met
                    if not is_buffer and type(tensor) in plain_tensors:
                        is_delta = in_delta or bool(getattr(tensor, "_is_delta", False))
                        if not is_delta and delta is not None:
                            is_delta = bool(delta(self._qualified(place, key), tensor))
                        signature: tuple[Any, ...] = (
                            key,
                            tensor.shape,
                            tensor.dtype,
                            tensor.requires_grad,
                            is_delta,
                            tied,
                        )
                    else:  # buffers, and odd tensors whose shape or dtype may not be readable as above
                        signature = self._describe(tensor, key, in_delta, is_buffer, tied, place).signature()
                    number = numbers.get(signature)
                    if number is None:
                        number = numbers[signature] = self._add(tensor, key, in_delta, is_buffer, tied, place)
                    own.append(number)
            params.append(tuple(own))
            adapters = adapters_of(module) if adapters_of is not None else NO_ADAPTERS
            if not module._modules:
                continue
            # Depth first, in registration order (as ``named_modules``: pushed last to first): a module
            # reachable from two parents is shown where it is met first and marked as shared where met again.
            for key, child in reversed(module._modules.items()):
                if child is None:
                    continue
                child_delta = in_delta or key in adapters or is_delta_module(child, plain_types)
                push((child, place, key, child_delta))

    def _describe(
        self, tensor: Any, key: str, in_delta: bool, is_buffer: bool, tied: tuple[int, str] | None, place: int
    ) -> ParamInfo:
        """The :class:`ParamInfo` of a parameter (or buffer) met at ``place`` under the name ``key``."""
        tied_to = None if tied is None else self._qualified(*tied)
        if is_buffer:
            requires_grad = is_delta = False
        else:
            requires_grad = bool(getattr(tensor, "requires_grad", False))
            is_delta = in_delta or bool(getattr(tensor, "_is_delta", False))
            if not is_delta and self.delta is not None:
                is_delta = bool(self.delta(self._qualified(place, key), tensor))
        reader = self.reader
        form = quantized_form(tensor)
        if form is not None:  # what it stands for: a 4-bit [4096, 4096] weight, not its packed uint8 column
            return ParamInfo(
                key, form.shape, form.dtype, requires_grad, is_delta, is_buffer, tied_to, scheme=form.scheme
            )
        return ParamInfo(key, reader.shape(tensor), reader.dtype(tensor), requires_grad, is_delta, is_buffer, tied_to)

    def _add(
        self, tensor: Any, key: str, in_delta: bool, is_buffer: bool, tied: tuple[int, str] | None, place: int
    ) -> int:
        """Describe a parameter not met before; returns its number in ``described``."""
        info = self._describe(tensor, key, in_delta, is_buffer, tied, place)
        # Tied weights, buffers and unknown shapes do not count towards the dominant dtype.
        self.described.append((info, info.tied_to is None and not is_buffer and info.shape is not None))
        return len(self.described) - 1

    def _dominant_dtype(self) -> str:
        """The dtype holding most parameter elements (counted only when there are several)."""
        # In the order the model first uses them (not a set's, which hashing reorders from run to run): on a tie,
        # the dtype met first wins, so a figure is drawn the same every time.
        dtypes = list(dict.fromkeys(info.dtype for info, counted in self.described if counted))
        if len(dtypes) < 2:
            return dtypes[0] if dtypes else "float32"
        totals = dict.fromkeys(dtypes, 0)
        for place, own in enumerate(self.params):
            if self.shared[place] < 0:
                for number in own:
                    info, counted = self.described[number]
                    if counted:
                        totals[info.dtype] += info.numel
        return max(totals.items(), key=lambda item: item[1])[0]

    def _kept(self) -> list[bool] | None:
        """Which places the tree shows; ``None`` when :meth:`_nodes` decides that as it goes.

        All places with ``keep_non_params``; else those with a parameter below them, which the node pass
        sees from the leaves up. A place where a shared module is met again stays when the place it is
        shown stays (or lies above it): that place comes earlier in the model, so a pass from the leaves
        up decides it only after. Models with shared modules repeat the pass until nothing changes.
        """
        count = len(self.names)
        if self.keep_non_params:
            return [True] * count
        params, kids, shared = self.params, self.kids, self.shared
        again = [place for place in range(count) if shared[place] >= 0]
        if not again:
            return None
        kept = [False] * count
        kept[0] = True
        while True:
            for place in range(count - 1, 0, -1):  # children before their parents
                first = shared[place]
                if first >= 0:
                    kept[place] = kept[first] or self._is_above(first, place)
                else:
                    kept[place] = bool(params[place]) or any(kept[kid] for kid in kids[place])
            if all(kept[place] == (kept[shared[place]] or self._is_above(shared[place], place)) for place in again):
                return kept

    def _is_above(self, upper: int, place: int) -> bool:
        """Whether ``upper`` is ``place`` 's parent, grandparent, ..."""
        while place > 0:
            place = self.parents[place]
            if place == upper:
                return True
        return False

    def _nodes(self) -> tuple[ModuleNode, TreeFacts]:
        """The second pass: one node object per distinct (name, subtree), from the leaves up.

        On the way, what figures need of a big tree: the numbers that tell which siblings fold together, and
        the parameter counts, added up once per distinct subtree.
        """
        kept = self._kept()
        names, kinds, params, kids, shared = self.names, self.kinds, self.params, self.kids, self.shared
        infos = [info for info, _counted in self.described]
        # A small number per distinct subtree, its own name left out (siblings that differ only in
        # their names have the same number), and one node per distinct (name, number).
        numbers: dict[tuple[Any, ...], int] = {}
        nodes: dict[tuple[str, int], ModuleNode] = {}
        node_of: list[ModuleNode | None] = [None] * len(names)
        nodes_of_type: dict[type, list[ModuleNode]] = {}
        subtrees: dict[int, int] = {}
        #: Per subtree number: its parameters (total, tunable, delta), each tensor once.
        totals: list[tuple[int, int, int]] = []
        for place in range(len(names) - 1, -1, -1):
            own = params[place]
            below: list[ModuleNode] = []
            if kept is None:  # no shared module: a place stays when it has a parameter or a child that stays
                if kids[place]:  # most places are leaves
                    below = [node for node in map(node_of.__getitem__, kids[place]) if node is not None]
                if not (own or below or place == 0):
                    continue
            elif kept[place]:
                below = [node_of[kid] for kid in kids[place] if kept[kid]]  # type: ignore[misc]
            else:
                continue
            first = shared[place]
            shared_with = None if first < 0 else self.path(first)
            key = (kinds[place], shared_with, own, tuple(map(id, below)) if below else ())
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = len(numbers)
                totals.append(
                    subtree_totals([infos[index] for index in own], [totals[subtrees[id(node)]] for node in below])
                )
            node = nodes.get((names[place], number))
            if node is None:
                kind = kinds[place]
                node = nodes[(names[place], number)] = ModuleNode(
                    names[place], kind.__name__, [infos[index] for index in own], below, shared_with=shared_with
                )
                subtrees[id(node)] = number
                nodes_of_type.setdefault(kind, []).append(node)
            node_of[place] = node
        label_same_named_types(nodes_of_type, kinds)
        root = node_of[0]
        assert root is not None
        return root, TreeFacts(subtrees, totals[subtrees[id(root)]])
