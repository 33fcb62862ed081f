"""The folded tree, and captured terminal output, as styled lines of a given width."""

from __future__ import annotations

import io
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from ..folding import FoldedNode, ParamSummary, format_count
from ..theme import Role, Theme
from ..tree import ParamInfo

__all__ = ["TreeOptions", "ansi_lines", "role_style", "summary_lines", "tree_lines"]

#: Short names for dtypes shown next to a parameter whose dtype is not the model's usual one.
DTYPE_NAMES = {
    "float32": "f32",
    "float16": "f16",
    "bfloat16": "bf16",
    "float64": "f64",
    "complex64": "c64",
    "complex128": "c128",
}

BRANCH, LAST, PIPE, SPACE = "├── ", "└── ", "│   ", "    "


@dataclass(frozen=True, slots=True)
class TreeOptions:
    """How a tree is laid out: the root's label, parameters on their own lines, and the line width."""

    rootname: str = "root"
    expand_params: bool = False
    width: int = 100


def role_style(role: Role) -> Style:
    """The rich style of a theme role."""
    return Style(color=role.color, bold=role.bold or None, italic=role.italic or None)


def _param_tokens(param: ParamInfo, dominant_dtype: str, theme: Theme) -> list[Text]:
    """The parameter as wrappable tokens: ``weight:[768, 768] bf16``, then notes such as ``(tied to ...)``."""
    shape = "?" if param.shape is None else ", ".join(str(size) for size in param.shape)
    text = Text(f"{param.name}:[{shape}]", style=role_style(theme.role(param.state)))
    note = role_style(theme.note)
    if param.dtype != dominant_dtype:
        text.append(f" {DTYPE_NAMES.get(param.dtype, param.dtype)}", style=note)
    tokens = [text]
    if param.shape is None:
        tokens.append(Text("(uninitialized)", style=note))
    if param.tied_to is not None:
        tokens.append(Text(f"(tied to {param.tied_to})", style=note))
    return tokens


def _head(folded: FoldedNode, theme: Theme, label: str | None = None) -> Text:
    name_role = theme.folded if folded.folded else theme.module_name
    head = Text()
    head.append(folded.label if label is None else label, style=role_style(name_role))
    if label is None:
        head.append(" (", style=theme.foreground)
        head.append(folded.node.type_name, style=role_style(theme.module_type))
        head.append(")", style=theme.foreground)
    return head


def _notes(folded: FoldedNode, theme: Theme) -> list[Text]:
    notes = []
    if folded.node.shared_with is not None:
        where = folded.node.shared_with or "the root"
        notes.append(Text(f"shared with {where}", style=role_style(theme.note)))
    if folded.hidden:
        noun = "module" if folded.hidden == 1 else "modules"
        notes.append(Text(f"… {folded.hidden} {noun} below", style=role_style(theme.note)))
    return notes


def _wrap(tokens: list[Text], first: str, rest: str, width: int, guide: Style) -> list[Text]:
    """Lay ``tokens`` out after the guide prefix ``first``, continuing under ``rest`` when a line is full."""
    lines: list[Text] = []
    line = Text(first, style=guide)
    length = len(first)
    start = True
    for token in tokens:
        size = token.cell_len
        if not start and length + 1 + size > width:
            lines.append(line)
            line = Text(rest, style=guide)
            length = len(rest)
            start = True
        if not start:
            line.append(" ")
            length += 1
        line.append_text(token)
        length += size
        start = False
    lines.append(line)
    return lines


def _clip_prefix(prefix: str, limit: int) -> str:
    """Keep the guides of the nearest ancestors only, so very deep trees keep bounded lines."""
    if len(prefix) <= limit:
        return prefix
    keep = limit - limit % 4
    return "⋯" + prefix[len(prefix) - keep + 1 :]


def tree_lines(
    folded: FoldedNode,
    theme: Theme,
    *,
    options: TreeOptions = TreeOptions(),
    dominant_dtype: str = "float32",
) -> list[Text]:
    """One or more lines per displayed module, with box-drawing guides, wrapped to ``options.width``."""
    guide = role_style(theme.guide)
    width = max(options.width, 24)
    prefix_limit = max(16, width // 2)
    lines: list[Text] = []
    # Each entry: the folded node (or a parameter, when expanded), the guides of its ancestors,
    # the connector before it, and whether it is the last of its siblings.
    stack: list[tuple[FoldedNode | ParamInfo, str, str, bool]] = [(folded, "", "", True)]
    is_root = True
    while stack:
        item, prefix, connector, last = stack.pop()
        shown_prefix = _clip_prefix(prefix, prefix_limit)
        below = prefix if is_root else prefix + (SPACE if last else PIPE)
        if isinstance(item, ParamInfo):
            continuation = _clip_prefix(below, prefix_limit) + SPACE
            lines.extend(
                _wrap(_param_tokens(item, dominant_dtype, theme), shown_prefix + connector, continuation, width, guide)
            )
            continue
        kids: list[FoldedNode | ParamInfo] = []
        if options.expand_params:
            kids.extend(item.node.params)
        kids.extend(item.children)
        tokens = [_head(item, theme, options.rootname if is_root else None)]
        if not options.expand_params:
            for param in item.node.params:
                tokens.extend(_param_tokens(param, dominant_dtype, theme))
        tokens.extend(_notes(item, theme))
        continuation = _clip_prefix(below, prefix_limit) + (PIPE if kids else SPACE)
        lines.extend(_wrap(tokens, shown_prefix + connector, continuation, width, guide))
        is_root = False
        for index in range(len(kids) - 1, -1, -1):
            is_last = index == len(kids) - 1
            stack.append((kids[index], below, LAST if is_last else BRANCH, is_last))
    return lines


def summary_lines(summary: ParamSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``parameters: 109.5M total, 109.5M tunable (100.00%), 0 frozen, 0 delta``, each count in its role's color."""
    note = role_style(theme.note)

    def token(*parts: tuple[str, Style]) -> Text:
        return Text.assemble(*parts)

    tokens = [
        token(("parameters:", note)),
        token((format_count(summary.total), role_style(theme.module_name)), (" total,", note)),
        token(
            (f"{format_count(summary.tunable)} tunable", role_style(theme.tunable)),
            (f" ({summary.tunable_ratio * 100:.2f}%),", note),
        ),
        token((f"{format_count(summary.frozen)} frozen", role_style(theme.frozen)), (",", note)),
        token((f"{format_count(summary.delta)} delta", role_style(theme.delta))),
    ]
    return _wrap(tokens, "", SPACE, max(width, 24), note)


def ansi_lines(ansi: str, theme: Theme, *, width: int) -> list[Text]:
    """Captured terminal output (with ANSI colors) as lines no wider than ``width``."""
    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system="truecolor", legacy_windows=False, _environ={})
    text = Text.from_ansi(ansi.rstrip("\n"), style=Style(color=theme.foreground))
    lines: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        if line.cell_len <= width:
            lines.append(line)
        else:
            lines.extend(line.wrap(console, width, overflow="fold"))
    return lines
