"""What a page with figures receives once, as a browser gets it: the stylesheets and the figure's script,
minified.

The files under ``static/`` are written for the people who maintain them (full names, comments); a page is
served what rJSmin and rCSSmin, two maintained minifiers, leave of them: the same code without comments and
layout white space. ``bench/figure_size.py`` prints both sizes; ``tests/test_figure_markup.py`` holds the
budget on what is served, gzipped.
"""

from __future__ import annotations

from importlib import resources

import rcssmin
import rjsmin

__all__ = ["minified_css", "minified_js", "written"]


def written(package: str, name: str) -> str:
    """The file ``name`` of ``package``'s ``static/`` folder, as written."""
    return resources.files(package).joinpath("static", name).read_text(encoding="utf-8")


def minified_css(text: str) -> str:
    """A stylesheet as served: rCSSmin's output, which keeps every rule and drops comments and white space."""
    return str(rcssmin.cssmin(text))


def minified_js(text: str) -> str:
    """A script as served: rJSmin's output (template literals and regex literals kept as written)."""
    return str(rjsmin.jsmin(text))
