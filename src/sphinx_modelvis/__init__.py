"""sphinx-modelvis: live, folded PyTorch model-structure figures for documentation.

``import sphinx_modelvis`` imports neither torch, Sphinx nor MkDocs; they are imported when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = ["Visualization", "__version__", "build_tree", "render", "setup"]

if TYPE_CHECKING:
    from .introspect import build_tree
    from .rendering import render
    from .visualization import Visualization


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (as Sphinx does for every build) stays free of torch.
    if name == "Visualization":
        from .visualization import Visualization

        return Visualization
    if name == "build_tree":
        from .introspect import build_tree

        return build_tree
    if name == "render":
        from .rendering import render

        return render
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: ``extensions = ["sphinx_modelvis"]``."""
    from .sphinx import setup as sphinx_setup

    return sphinx_setup(app)
