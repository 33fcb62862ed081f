"""A figure's page markup kept in the figure cache, named by everything that shapes it.

Drawing a figure for an HTML page (:func:`~sphinx_modelvis.rendering.page_figure`) is a function of its capture
(as JSON), the options :data:`PAGE_FIGURE_OPTIONS` names and the code that draws it; the key here is made of
exactly these, so a build whose figures all come from the cache draws none of them again, and the same bytes
come out. The code counts as this package's version and its files' sizes and times (an edited checkout draws
again), rich's version and Python's.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from .warm import package_state

__all__ = ["PAGE_FIGURE_OPTIONS", "markup_key", "renderer_state"]

#: The keyword arguments of ``page_figure`` besides the capture: every one is part of the key, and a key is
#: made only of all of them (a test holds this list to ``page_figure``'s signature).
PAGE_FIGURE_OPTIONS = ("format", "theme", "width", "label", "open_depth", "anchor")


def renderer_state() -> str:
    """What draws a figure besides its capture and options: this package's code, rich's version, Python's."""
    try:
        rich = metadata.version("rich")
    except metadata.PackageNotFoundError:  # rich without its metadata: the package's code still counts
        rich = "unknown"
    return f"sphinx-modelvis {package_state()}; rich {rich}; python {sys.version_info[0]}.{sys.version_info[1]}"


def markup_key(capture: str, options: Mapping[str, Any], renderer: str) -> str:
    """The cache key of the page markup of ``capture`` (its JSON) drawn with ``options`` by ``renderer``."""
    if sorted(options) != sorted(PAGE_FIGURE_OPTIONS):
        expected = ", ".join(PAGE_FIGURE_OPTIONS)
        raise ValueError(f"a figure's markup is keyed by all of {expected}; got {', '.join(sorted(options))}")
    text = json.dumps([renderer, dict(options), capture], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
