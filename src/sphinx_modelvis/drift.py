"""How a committed figure file differs from what the code draws now: the tree's text, or the PNG's pixels."""

from __future__ import annotations

import difflib
import html
import io
import re
from functools import reduce
from pathlib import Path

__all__ = ["describe_drift", "same_pixels"]

_SVG_TEXT = re.compile(r'<text\b[^>]*\bx="(?P<x>[-\d.]+)" y="(?P<y>[-\d.]+)"[^>]*>(?P<text>.*?)</text>', re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _visible_lines(data: str, fmt: str) -> list[str]:
    """The text a reader sees in a figure file: the SVG's text rows, the HTML without tags, the ANSI without escapes."""
    if fmt == "svg":
        from .rendering.figure import CHAR_WIDTH

        rows: dict[float, str] = {}
        for match in _SVG_TEXT.finditer(data):  # runs of one style, each at its column (guides are lines)
            y, column = float(match["y"]), round(float(match["x"]) / CHAR_WIDTH)
            row = rows.get(y, "")
            rows[y] = row.ljust(column) + html.unescape(match["text"])
        text = "\n".join(rows[y] for y in sorted(rows))
    elif fmt == "html":
        text = html.unescape(re.sub(r"<[^>]+>", "", data))
    else:
        text = _ANSI.sub("", data)
    return [line.replace("\xa0", " ").rstrip() for line in text.splitlines()]


def _pixel_difference(old: bytes, new: bytes) -> str | None:
    """Where two PNG images differ (``None``: the same pixels, however the files encode them)."""
    from PIL import Image, ImageChops, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(old)) as opened:
            before = opened.convert("RGBA")
    except (UnidentifiedImageError, OSError):
        return "the committed file is not an image Pillow can read"
    with Image.open(io.BytesIO(new)) as opened:
        after = opened.convert("RGBA")
    # Compared over the area both cover; a change of size is said first.
    width, height = min(before.width, after.width), min(before.height, after.height)
    common = (0, 0, width, height)
    difference = ImageChops.difference(before.crop(common), after.crop(common))
    # One mask of every pixel where any channel differs (getbbox of an RGBA image would look at alpha alone).
    bands = [band.point(lambda value: 255 if value else 0) for band in difference.split()]
    mask = reduce(ImageChops.lighter, bands)
    box = mask.getbbox()
    resized = before.size != after.size
    if box is None and not resized:
        return None
    parts = []
    if resized:
        parts.append(f"the size changed from {before.width}×{before.height} to {after.width}×{after.height}")
    if box is not None:
        left, top, right, bottom = box
        count = mask.histogram()[255]
        where = "in the area both cover, " if resized else ""
        parts.append(f"{where}{count} pixels differ, within x {left}-{right - 1}, y {top}-{bottom - 1}")
    return "; ".join(parts)


def same_pixels(old: bytes, new: bytes) -> bool:
    """Whether two PNG files hold the same image (another Pillow or zlib encodes the same pixels differently)."""
    return _pixel_difference(old, new) is None


def describe_drift(path: Path, new: str | bytes, fmt: str) -> str:
    """A short account of how ``new`` differs from the file at ``path``: the tree's text when that changed; for
    a PNG, where its pixels differ."""
    old = path.read_bytes()
    if isinstance(new, bytes):
        return f"{path}: out of date ({_pixel_difference(old, new)})"
    old_lines = _visible_lines(old.decode("utf-8", "replace"), fmt)
    new_lines = _visible_lines(new, fmt)
    diff = list(difflib.unified_diff(old_lines, new_lines, f"{path} (committed)", f"{path} (now)", lineterm="", n=1))
    if not diff:
        return f"{path}: out of date (the same text, drawn differently: colors, theme or layout changed)"
    changed = sum(1 for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))
    shown = diff[:40]
    more = f"\n... {len(diff) - len(shown)} more diff lines" if len(diff) > len(shown) else ""
    return f"{path}: out of date ({changed} lines of text changed)\n" + "\n".join(shown) + more
