"""The forward view's cost: each module's FLOPs in the traced pass, as PyTorch's flop counter counts them.

The counting needs torch and happens in :mod:`sphinx_modelvis.tracing`, in the same pass as the forward view's
hooks; this module puts the counts on the tree and compares them, as plain data that folds, caches and compares
without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .flop_summary import FlopSummary, format_flops
from .tree import ModelTree, ModuleNode

__all__ = ["FlopSummary", "annotate_flops", "format_flops"]


def annotate_flops(tree: ModelTree, counts: Mapping[str, int], summary: FlopSummary) -> ModelTree:
    """``tree`` (a forward view) with each module's FLOPs from ``counts`` (by the module's path: its subtree's
    FLOPs over all its calls, as the flop counter's module tracker records them) and the pass's ``summary``.

    A container that is not called itself (``ModuleList``) gets the sum of its children's; a module met again
    through another parent gets none (it is counted where it is shown); a module that did nothing counted, 0.
    """
    done: dict[str, ModuleNode] = {}
    for path, node in tree.root.places(leaves_first=True):
        children = [done[f"{path}.{child.name}" if path else child.name] for child in node.children]
        if node.shared_with is not None:
            count = -1
        elif path in counts:
            count = counts[path]
        else:
            count = sum(child.flops for child in children if child.flops > 0)
        done[path] = replace(node, children=children, flops=count)
    return tree.with_root(done[""], flops=summary)
