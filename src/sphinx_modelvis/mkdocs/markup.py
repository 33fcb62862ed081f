"""The HTML an MkDocs page gets around a figure: ``<figure>`` and its caption, the accessible name, ``:collapse:``."""

from __future__ import annotations

import html
import re

from ..config import FigureOptions

__all__ = ["figure_label", "inline_markdown", "wrap_figure"]


def figure_label(options: FigureOptions) -> str:
    """The figure's accessible name: its ``:alt:``, else its caption as plain text."""
    if options.alt:
        return options.alt
    if options.caption:
        return html.unescape(re.sub(r"<[^>]+>", "", inline_markdown(options.caption)))
    return "model structure"


def wrap_figure(drawing: str, options: FigureOptions) -> str:
    """``<figure>`` with ``<figcaption>``, the name as its id, and ``<details>`` for ``:collapse:``."""
    classes = ["modelvis-figure", f"modelvis-{options.format}", *options.classes]
    if options.align:
        classes.append(f"align-{options.align}")
    attributes = f' class="{" ".join(classes)}"'
    if options.width:
        attributes += f' style="width: {html.escape(options.width)}"'
    if options.format == "html":  # an <svg> names itself; rich's <pre> does not
        attributes += f' role="img" aria-label="{html.escape(figure_label(options))}"'
    # highlight.js (the plain mkdocs theme) would re-color every <pre><code>, the figure's own colors lost.
    drawing = drawing.strip().replace('<pre class="modelvis-html"', '<pre class="modelvis-html nohighlight"', 1)
    inner = f"<div{attributes}>{drawing}</div>"
    if options.caption:
        anchor = f' id="{html.escape(options.name)}"' if options.name else ""
        align = f" align-{options.align}" if options.align else ""
        inner = (
            f'<figure class="modelvis{align}"{anchor}>{inner}'
            f"<figcaption>{inline_markdown(options.caption)}</figcaption></figure>"
        )
    elif options.name:
        inner = f'<div id="{html.escape(options.name)}">{inner}</div>'
    if options.collapse is not None:
        inner = (
            '<details class="modelvis-details"><summary class="modelvis-summary">'
            f"{inline_markdown(options.collapse)}</summary>{inner}</details>"
        )
    return inner


def inline_markdown(text: str) -> str:
    """A caption or summary rendered as inline Markdown (code spans, emphasis, links)."""
    import markdown

    rendered = markdown.markdown(text)
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered.strip(), flags=re.S)
