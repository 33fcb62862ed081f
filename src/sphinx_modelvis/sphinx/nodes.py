"""The nodes of a figure and how each builder writes them: inline SVG or HTML, a PNG for LaTeX, text elsewhere."""

from __future__ import annotations

import hashlib
import os
import posixpath
import struct
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxTranslator

from ..capture import Capture
from .build import runner_for

if TYPE_CHECKING:
    from ..rendering import Figure

__all__ = [
    "LATEX_MAX_LINES",
    "PNG_DPI",
    "modelvis_details",
    "modelvis_figure",
    "modelvis_summary",
    "register_nodes",
]

#: Resolution written into the PNG for LaTeX: the 28 px font becomes about 8.4 pt on paper.
PNG_DPI = 240
#: The most lines of a figure in a PDF. LaTeX shrinks an image taller than the text block to fit it: about 64
#: lines fit an A4 or letter page at full size, 100 lines at 5.4 pt, still readable; past that, the figure keeps
#: its first lines and says so.
LATEX_MAX_LINES = 100
LATEX_HINT = f"a PDF figure keeps its first {LATEX_MAX_LINES} (:max-depth: draws a shorter tree)"


# docutils names node classes in lower case, and so do we.
class modelvis_figure(nodes.General, nodes.Element):
    """A figure's output, as plain data: ``capture`` (JSON), ``theme``, ``format``, ``columns``, ``open_depth``
    (-1: none), ``alt``, ``width``, ``align`` and ``anchor`` (a named interactive figure's line anchors' prefix).
    Visitors draw it for their builder."""


class modelvis_details(nodes.General, nodes.Element):
    """A closed ``<details>`` around a figure (``:collapse:``); its first child is a :class:`modelvis_summary`."""


class modelvis_summary(nodes.TextElement):
    """The summary line of a :class:`modelvis_details`."""


def node_figure(node: modelvis_figure) -> Figure:
    """The figure a node describes, laid out for paper or text (``auto`` colors: light)."""
    # The renderer is imported when a figure is drawn: an HTML build whose figures' markup is cached draws none.
    from ..rendering import build_figure, paper_theme

    return build_figure(Capture.from_json(node["capture"]), theme=paper_theme(node["theme"]), width=node["columns"])


def _label(node: modelvis_figure) -> str:
    return str(node.get("alt") or "model structure")


# -- html, dirhtml, singlehtml, epub -------------------------------------------------------------


def visit_figure_html(self: SphinxTranslator, node: modelvis_figure) -> None:
    """The figure inline: an ``<svg>`` whose text is selectable and searchable, or rich's ``<pre>``."""
    fmt = node["format"]
    open_depth = node.get("open_depth", -1)
    options = {
        "format": fmt,
        "theme": node["theme"],
        "width": node["columns"],
        "label": _label(node),
        "open_depth": None if open_depth < 0 else open_depth,
        "anchor": node.get("anchor") or None,  # a named figure's: each module line gets an id
    }
    capture = node["capture"]

    def draw() -> str:
        from ..rendering import page_figure

        return page_figure(Capture.from_json(capture), **options)

    # Drawn once: a later build with the same capture, options and renderer takes the markup from the cache.
    body = runner_for(self.builder.env).page_markup(capture, options, draw)
    classes = ["modelvis-figure", f"modelvis-{fmt}"]
    if node.get("align"):
        classes.append(f"align-{node['align']}")
    attributes: dict[str, str] = {"CLASS": " ".join(classes)}
    if node.get("width"):
        attributes["style"] = f"width: {node['width']}"
    if fmt == "html":  # an <svg> names itself, and an interactive figure is text to read
        attributes["role"] = "img"
        attributes["aria-label"] = _label(node)
    self.body.append(self.starttag(node, "div", **attributes))
    self.body.append(body.strip() + "\n</div>\n")
    raise nodes.SkipNode


def visit_details_html(self: SphinxTranslator, node: modelvis_details) -> None:
    """Open a closed ``<details>``."""
    self.body.append(self.starttag(node, "details", CLASS="modelvis-details"))


def depart_details_html(self: SphinxTranslator, node: modelvis_details) -> None:
    """Close the ``<details>``."""
    self.body.append("</details>\n")


def visit_summary_html(self: SphinxTranslator, node: modelvis_summary) -> None:
    """Open the ``<summary>``."""
    self.body.append('<summary class="modelvis-summary">')


def depart_summary_html(self: SphinxTranslator, node: modelvis_summary) -> None:
    """Close the ``<summary>``."""
    self.body.append("</summary>\n")


# -- latex ---------------------------------------------------------------------------------------


def with_resolution(png: bytes, dpi: int) -> bytes:
    """``png`` with a ``pHYs`` chunk saying ``dpi``, so LaTeX sizes it like text instead of at 72 dpi."""
    per_metre = round(dpi / 0.0254)
    data = struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", len(data)) + b"pHYs" + data + struct.pack(">I", zlib.crc32(b"pHYs" + data))
    end_of_header = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return png[:end_of_header] + chunk + png[end_of_header:]


def write_image(directory: Path, data: bytes, *, prefix: str = "modelvis", suffix: str = ".png") -> str:
    """Write ``data`` as ``<prefix>-<sha1>.<suffix>`` in ``directory`` (atomically, once); returns the name."""
    name = f"{prefix}-{hashlib.sha1(data, usedforsecurity=False).hexdigest()}{suffix}"
    path = directory / name
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    return name


def visit_figure_latex(self: Any, node: modelvis_figure) -> None:
    """A PNG drawn with Pillow, written under the image folder and included with ``\\sphinxincludegraphics``."""
    from ..rendering import render_figure

    png = render_figure(node_figure(node), "png", max_lines=LATEX_MAX_LINES, hint=LATEX_HINT)
    assert isinstance(png, bytes)
    name = write_image(Path(self.builder.outdir) / self.builder.imagedir, with_resolution(png, PNG_DPI))
    path = posixpath.join(self.builder.imgpath, name)
    options = ""
    if node.get("width"):
        width = self.latex_image_length(node["width"])
        if width:
            options = f"[width={width}]"
    pre, post = {
        "left": ("{", r"\hspace*{\fill}}"),
        "right": (r"{\hspace*{\fill}", "}"),
        "center": (r"{\hfill", r"\hspace*{\fill}}"),
    }.get(node.get("align") or "", ("", ""))
    self.body.append(f"\n{pre}\\sphinxincludegraphics{options}{{{path}}}{post}\n")
    raise nodes.SkipNode


# -- text, man, texinfo: post-transforms turn figures into literal blocks ------------------------


class UnwrapDetails(SphinxPostTransform):
    """Outside HTML a collapsed figure is simply shown: the details wrapper and its summary go."""

    default_priority = 200
    formats = ("latex", "text", "man", "texinfo")

    def run(self, **kwargs: Any) -> None:
        for details in list(self.document.findall(modelvis_details)):
            children = [child for child in details.children if not isinstance(child, modelvis_summary)]
            details.replace_self(children)


class FigureAsText(SphinxPostTransform):
    """For text, man and texinfo, a figure is its plain-text tree in a literal block."""

    default_priority = 201
    formats = ("text", "man", "texinfo")

    def run(self, **kwargs: Any) -> None:
        from ..rendering import render_figure

        for node in list(self.document.findall(modelvis_figure)):
            text = render_figure(node_figure(node), "text")
            assert isinstance(text, str)
            block = nodes.literal_block(text.rstrip("\n"), text.rstrip("\n"), classes=["modelvis-text"])
            block["ids"] = node["ids"]
            block.source, block.line = node.source, node.line
            node.replace_self(block)


def register_nodes(app: Sphinx) -> None:
    """Register the nodes, their visitors and the post-transforms."""
    app.add_node(modelvis_figure, html=(visit_figure_html, None), latex=(visit_figure_latex, None))
    app.add_node(modelvis_details, html=(visit_details_html, depart_details_html))
    app.add_node(modelvis_summary, html=(visit_summary_html, depart_summary_html))
    app.add_post_transform(UnwrapDetails)
    app.add_post_transform(FigureAsText)
