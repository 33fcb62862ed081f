"""Sphinx configuration of the sphinx-modelvis documentation (built by `make docs`)."""

from __future__ import annotations

import sphinx_modelvis

project = "sphinx-modelvis"
author = "The sphinx-modelvis developers"
copyright = "2026, the sphinx-modelvis developers"
release = version = sphinx_modelvis.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx_modelvis",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "readme", "Thumbs.db", ".DS_Store"]
numfig = True

html_theme = "furo"
html_title = "sphinx-modelvis"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

# Figures: dark terminal look, cached between builds (CI keeps this folder, see the CI guide).
modelvis_cache_dir = "_build/.modelvis-cache"
