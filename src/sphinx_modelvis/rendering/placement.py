"""The placement view drawn: each line's device (``@0``) or tensor-parallel shards, and the totals under the tree."""

from __future__ import annotations

from rich.text import Text

from ..memory import format_bytes
from ..placement_summary import PlacementSummary, device_label
from ..theme import Theme
from ..tree import ModuleNode, format_shape
from .styled import Styles, Token, wrap

__all__ = ["device_tokens", "placement_summary_lines", "shard_tokens"]

INDENT = "    "

#: What a source of a device map is called in the summary.
SOURCES = {
    "auto": "device_map='auto': accelerate's infer_auto_device_map, limits balanced",
    "balanced": "device_map='balanced': accelerate's infer_auto_device_map, limits balanced",
    "balanced_low_0": "device_map='balanced_low_0': accelerate's infer_auto_device_map, device 0 kept light",
    "sequential": "device_map='sequential': accelerate's infer_auto_device_map, each device filled in turn",
    "dict": "the device map given",
    "hf_device_map": "the model's hf_device_map",
}


def device_tokens(node: ModuleNode, parent_device: str | None, styles: Styles) -> list[Token]:
    """``@0`` where a module's devices differ from its parent's (always on the root), and a flag on a module split
    across devices: ``⚠ parameters split across 0,1``, ``⚠ no-split module split across 0,1``."""
    tokens: list[Token] = []
    if node.device and node.device != parent_device:
        # Amber, as a memory note or a change is: the folded role's red would read as a name to unfold.
        tokens.append(Token(f"@{device_label(node.device)}", styles.change["changed"]))
    if node.split:
        what = "parameters" if node.split == "parameters" else "no-split module"
        tokens.append(Token(f"⚠ {what} split across {device_label(node.device)}", styles.change["removed"]))
    return tokens


def _ranks(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    """Each rank's shape: ``[1024, 8192] each`` when alike, else by runs: ``[2, 20] on 0-4, [0, 20] on 5-7``."""
    if all(shape == shapes[0] for shape in shapes):
        return f"{format_shape(shapes[0])} each"
    runs: list[str] = []
    start = 0
    for rank in range(1, len(shapes) + 1):
        if rank == len(shapes) or shapes[rank] != shapes[start]:
            runs.append(f"{format_shape(shapes[start])} on {_ranks(start, rank - 1)}")
            start = rank
    return ", ".join(runs)


def shard_tokens(node: ModuleNode, styles: Styles) -> list[Token]:
    """A planned module's style and its parameters' shards: ``colwise: weight [1024, 8192] each``; a parameter every
    rank keeps whole: ``bias replicated``."""
    tokens: list[Token] = []
    if node.tp_style:
        tokens.append(Token(f"{node.tp_style}:", styles.change["changed"]))
    for name, style, shapes in node.shards:
        label = name if style == node.tp_style else f"{name} ({style})"
        text = f"{label} {_shapes(shapes)}" if shapes else f"{label} replicated"
        tokens.append(Token(text + ("," if (name, style, shapes) != node.shards[-1] else ""), styles.note))
    return tokens


def _device_pairs(summary: PlacementSummary, styles: Styles) -> list[Token]:
    limits = dict(summary.limits)
    given = dict(summary.given)
    tokens = []
    for index, (device, size) in enumerate(summary.by_device):
        text = f"@{device} {format_bytes(size)}"
        limit = given.get(device, limits.get(device))
        if limit is not None:
            text += f" of {format_bytes(limit)}"
        tokens.append(Token(text + ("," if index < len(summary.by_device) - 1 else ""), styles.foreground))
    return tokens


def placement_summary_lines(summary: PlacementSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``placement: device_map='auto' ...; no-split: LlamaDecoderLayer`` and ``devices: @0 32.1 GiB of 40.0 GiB, ...``;
    for a tensor-parallel plan its ranks, styles and the bytes each rank holds."""
    styles = Styles(theme)
    note = styles.note
    lines: list[Text] = []
    size = max(width, 24)
    if summary.ranks:
        words = f"tensor parallel over {summary.ranks} ranks by transformers' tp_plan; parameters by style:"
        tokens = [Token(word, note) for word in words.split(" ")]
        tokens.extend(Token(f"{style} {count},", styles.foreground) for style, count in summary.styles)
        if tokens[-1].plain.endswith(","):
            tokens[-1] = Token(tokens[-1].plain[:-1], styles.foreground)
        lines.extend(wrap(tokens, "", INDENT, size, note))
        by_rank = summary.by_rank
        runs: list[Token] = [Token("per rank:", note)]
        start = 0
        for rank in range(1, len(by_rank) + 1):
            if rank == len(by_rank) or by_rank[rank] != by_rank[start]:
                where = "each" if start == 0 and rank == len(by_rank) else f"on {_ranks(start, rank - 1)}"
                comma = "," if rank < len(by_rank) else ""
                runs.append(Token(f"{format_bytes(by_rank[start])} {where}{comma}", styles.foreground))
                start = rank
        runs.append(Token("(shards, and every tensor the plan leaves whole)", note))
        lines.extend(wrap(runs, "", INDENT, size, note))
        if summary.unknown:
            unknown = f"styles not sized (their shards are not known here): {', '.join(summary.unknown)}"
            lines.extend(wrap([Token(word, note) for word in unknown.split(" ")], "", INDENT, size, note))
        return lines
    text = "placement: " + SOURCES.get(summary.source, summary.source)
    if summary.no_split:
        text += f"; no-split: {', '.join(summary.no_split)}"
    lines.extend(wrap([Token(word, note) for word in text.split(" ")], "", INDENT, size, note))
    lines.extend(wrap([Token("devices:", note), *_device_pairs(summary, styles)], "", INDENT, size, note))
    if summary.split:
        noun = "module" if summary.split == 1 else "modules"
        flag = Token(f"⚠ {summary.split} {noun} split across devices", styles.change["removed"])
        lines.extend(wrap([flag], "", INDENT, size, note))
    return lines
