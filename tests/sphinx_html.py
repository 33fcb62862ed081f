"""Reading what the builds wrote: figures (interactive, SVG or rich's <pre>), their text and its colors or roles."""

from __future__ import annotations

import html
import re
from typing import Any

_STYLE = re.compile(r"\.(?P<cls>[\w-]+)\s*\{\s*fill:\s*(?P<fill>#[0-9a-f]{6}|var\(--mv-\w+\))")
_TEXT = re.compile(r'<text class="(?P<cls>[\w-]+)"[^>]*>(?P<text>[^<]*)</text>')


def svg_lines(svg: str) -> list[str]:
    """The SVG's text runs laid out into lines (by ``y``) and columns (by ``x``), as a reader sees them.

    Guide lines are drawn as paths, not characters, so they read as spaces here.
    """
    runs = []
    for match in re.finditer(r"<text (?P<attributes>[^>]*)>(?P<text>[^<]*)</text>", svg):
        # Attribute order and case vary with who wrote the markup (an HTML parser sorts and lowercases them).
        attributes = {name.lower(): value for name, value in re.findall(r'([\w-]+)="([^"]*)"', match["attributes"])}
        text = html.unescape(match["text"])
        runs.append((float(attributes["y"]), float(attributes["x"]), float(attributes["textlength"]), text))
    cell = min((length / len(text) for _, _, length, text in runs if text), default=1.0)
    rows: dict[float, str] = {}
    for y, x, _, text in sorted(runs):
        row = rows.get(y, "")
        column = round(x / cell)
        rows[y] = row.ljust(column)[:column] + text.replace("\xa0", " ")
    return [row.rstrip() for _, row in sorted(rows.items())]


def colors_of(svg: str, text: str) -> set[str]:
    """The fill colors (``var(--mv-t)`` where they follow the page) of every text run of ``svg`` holding ``text``."""
    fills = {match["cls"]: match["fill"] for match in _STYLE.finditer(svg)}
    runs = ((match["cls"], html.unescape(match["text"]).replace("\xa0", " ")) for match in _TEXT.finditer(svg))
    return {fills.get(cls, "?") for cls, run in runs if text in run}


def figure_by_name(soup: Any, name: str) -> Any:
    """The element Sphinx gave the id of a figure's ``:name:`` (the figure, or the drawing itself)."""
    element = soup.find(id=name.replace("_", "-"))
    assert element is not None, f"no element with the id of {name!r}"
    return element


def figure_lines(element: Any) -> list[str]:
    """The lines a reader sees in a figure, whatever its format; tree guides read as spaces."""
    interactive = element if "mv" in (element.get("class") or []) else element.select_one(".mv")
    if interactive is not None:
        lines = []
        for line in interactive.select(".l"):
            text = "".join("    " if child.name == "i" else child.get_text() for child in line.children)
            lines.append(text.rstrip())
        return lines
    svg = element if element.name == "svg" else element.find("svg")
    if svg is not None:
        return svg_lines(str(svg))
    pre = element if element.name == "pre" else element.find("pre")
    return [line.rstrip() for line in pre.get_text().replace("\xa0", " ").splitlines()]


def roles_of(element: Any, text: str) -> set[str]:
    """The role classes (``d``: delta, ``z``: frozen, ...) of an interactive figure's text runs holding ``text``."""
    found = set()
    for span in element.select(".mv .l span"):
        if text in span.get_text() and not span.find("span"):
            found.add(" ".join(span.get("class") or []))
    return found
