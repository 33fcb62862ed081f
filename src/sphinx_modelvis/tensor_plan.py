"""The tensor-parallel view: each module a transformers model's ``tp_plan`` names, with its style and its
parameters' shard on each rank.

The plan is the model's own (``model.tp_plan``: its ``_tp_plan`` with its config's ``base_model_tp_plan``),
expanded to concrete names by transformers (``_expand_parallel_plan``), as ``from_pretrained(tp_plan="auto")``
applies it. What each style does to a parameter is what its ``shard_param`` does in transformers'
``distributed/tensor_parallel.py`` (:data:`STYLE_RULES`); each rank's shape is torch's own rule for that
placement (``torch.chunk``'s: chunks of ``ceil(size / ranks)``, so an uneven split leaves the last ranks
shorter, some empty), computed without a process group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .placement import named_tensors
from .placement_summary import PlacementSummary
from .tree import ModelTree, ModuleNode

__all__ = ["STYLE_RULES", "annotate_shards", "shard_rule", "shard_shapes", "tensor_plan_view"]

#: What each style does to the parameters it shards, read from its ``shard_param`` in transformers'
#: ``distributed/tensor_parallel.py``: ``colwise`` splits the output features (a weight's rows, its bias),
#: ``rowwise`` the input features (a weight's columns; its bias replicated), the embeddings the vocabulary
#: (``embedding_rowwise``) or the hidden size (``embedding_colwise``), the packed styles a fused weight's two
#: halves each (``_StridedShard``, split factor 2). Any other style keeps its parameters whole on every rank
#: (it changes how the forward runs, not what a rank holds).
STYLE_RULES = {
    "colwise": "rows (dim -2) split; a bias split too",
    "colwise_gather_output": "rows (dim -2) split; a bias split too",
    "colwise_rep": "rows (dim -2) split; a bias split too",
    "rowwise": "columns (dim -1) split; a bias replicated",
    "rowwise_split_input": "columns (dim -1) split; a bias replicated",
    "rowwise_rep": "columns (dim -1) split; a bias replicated",
    "embedding_rowwise": "vocabulary (dim 0) split",
    "embedding_colwise": "hidden size (dim 1) split",
    "packed_colwise": "rows (dim -2) split in each of 2 packed halves; a bias split",
    "packed_rowwise": "columns (dim -1) split in each of 2 packed halves; a bias replicated",
}
#: Styles that keep every parameter whole on every rank.
REPLICATED_STYLES = (
    "sequence_parallel",
    "replicated_with_grad_allreduce",
    "all_reduce",
    "mla_kv_a_proj",
    "moe_tp_experts",
    "moe_identity_expert",
    "local_params",
    "replicate",
)


def shard_rule(style: str, name: str, ndim: int) -> tuple[int, int] | None:
    """What ``style`` does to the parameter ``name`` of ``ndim`` dimensions: ``(dim, split_factor)`` when it is
    sharded on ``dim`` (split factor 1: plain, 2: packed halves), ``None`` when every rank keeps it whole (a style
    of :data:`REPLICATED_STYLES`). ``KeyError`` for a style in neither (its shards are not known here)."""
    if style in ("colwise", "colwise_gather_output", "colwise_rep"):
        return (ndim - 2 if ndim > 1 else 0, 1)
    if style in ("rowwise", "rowwise_split_input", "rowwise_rep"):
        return None if name == "bias" else (ndim - 1, 1)
    if style == "embedding_rowwise":
        return (0, 1)
    if style == "embedding_colwise":
        return (1, 1)
    if style == "packed_colwise":
        return (0, 1) if ndim == 1 else (ndim - 2, 2)
    if style == "packed_rowwise":
        return None if ndim == 1 else (ndim - 1, 2)
    if style in REPLICATED_STYLES:
        return None
    raise KeyError(style)


def shard_shapes(shape: tuple[int, ...], dim: int, split_factor: int, ranks: int) -> tuple[tuple[int, ...], ...]:
    """Each rank's shape of a tensor of ``shape`` sharded on ``dim`` over ``ranks``, by torch's own rule."""
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset
    from torch.distributed.tensor.placement_types import Shard, _StridedShard

    placement = Shard(dim) if split_factor == 1 else _StridedShard(dim, split_factor=split_factor)
    return tuple(
        tuple(int(size) for size in _compute_local_shape_and_global_offset(shape, (ranks,), [rank], [placement])[0])
        for rank in range(ranks)
    )


def _expanded_plan(model: Any) -> dict[str, str]:
    """The model's plan with concrete names, each parameter and module it names, as transformers expands it."""
    plan = getattr(model, "tp_plan", None)  # the property (transformers 5), else the attribute
    if not isinstance(plan, dict):
        plan = getattr(model, "_tp_plan", None)
    expand = getattr(model, "_expand_parallel_plan", None)
    if not plan or expand is None:
        kind = type(model).__name__
        raise ValueError(
            f"{kind} has no tensor-parallel plan to show (a transformers model whose config has a "
            "base_model_tp_plan, with a transformers that expands it: _expand_parallel_plan)"
        )
    return dict(expand(plan))


def tensor_plan_view(model: Any, tree: ModelTree, ranks: int) -> ModelTree:
    """``tree`` (the tree of ``model``) with each planned module's style and its parameters' shard shapes on each
    of ``ranks`` ranks, and the bytes each rank holds (shards, and every tensor the plan leaves whole)."""
    from .precision import tensor_record

    if ranks < 1:
        raise ValueError(f"expected a number of ranks of at least 1, got {ranks}")
    expanded = _expanded_plan(model)
    modules = dict(model.named_modules())
    shards: dict[str, list[tuple[str, str, tuple[tuple[int, ...], ...]]]] = {}
    styles: dict[str, int] = {}
    unknown: set[str] = set()
    local: dict[str, tuple[tuple[int, ...], ...]] = {}  # each planned parameter's shape per rank
    for key, style in expanded.items():
        path, _dot, name = key.rpartition(".")
        owner = modules.get(path)
        param = getattr(owner, "_parameters", {}).get(name) if owner is not None and key not in modules else None
        if param is None:
            continue
        shape = tuple(int(size) for size in param.shape)
        per_rank: tuple[tuple[int, ...], ...] = ()
        try:
            rule = shard_rule(style, name, len(shape))
        except KeyError:
            unknown.add(style)
            rule = None
        if rule is not None:
            per_rank = local[key] = shard_shapes(shape, rule[0], rule[1], ranks)
        shards.setdefault(path, []).append((name, style, per_rank))
        styles[style] = styles.get(style, 0) + 1
    by_rank = [0] * ranks
    stored: set[int] = set()
    for path, name, tensor, is_buffer in named_tensors(model):
        if not name:
            continue
        record = tensor_record(tensor, buffer=is_buffer, seen=stored)
        per_rank = local.get(f"{path}.{name}" if path else name, ())
        for rank in range(ranks):
            if not per_rank or not record.numel:
                by_rank[rank] += record.nbytes
                continue
            count = 1
            for size in per_rank[rank]:
                count *= size
            by_rank[rank] += record.nbytes * count // record.numel
    summary = PlacementSummary(
        ranks=ranks,
        by_rank=tuple(by_rank),
        planned=len(expanded),
        styles=tuple(sorted(styles.items(), key=lambda item: (-item[1], item[0]))),
        unknown=tuple(sorted(unknown)),
    )
    planned = {path: style for path, style in expanded.items() if path in modules}
    return annotate_shards(tree, planned, {path: tuple(own) for path, own in shards.items()}, summary)


def annotate_shards(
    tree: ModelTree,
    styles: Mapping[str, str],
    shards: Mapping[str, tuple[tuple[str, str, tuple[tuple[int, ...], ...]], ...]],
    summary: PlacementSummary,
) -> ModelTree:
    """``tree`` with each planned module's style (``styles``, by dotted path) and its parameters' shards
    (``shards``: ``(name, style, shape on each rank)`` by the module's path), and ``summary``."""
    copies: dict[str, ModuleNode] = {}
    made: dict[tuple[Any, ...], ModuleNode] = {}
    for path, node in tree.root.places(leaves_first=True):
        children = [copies[f"{path}.{child.name}" if path else child.name] for child in node.children]
        style = styles.get(path, "")
        own = shards.get(path, ())
        key = (id(node), style, own, tuple(map(id, children)))
        copy = made.get(key)
        if copy is None:
            copy = made[key] = replace(node, children=children, tp_style=style, shards=own)
        copies[path] = copy
    return tree.with_root(copies[""], placement=summary)
