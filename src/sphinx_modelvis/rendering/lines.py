"""The folded tree as styled lines of a given width, with the parameter totals and the forward line under it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from ..folding import LABEL_LIMIT, FoldedNode, ParamSummary, format_count
from ..theme import Theme
from ..tree import ModuleNode, ParamInfo, format_dtype, format_shape
from .costs import flop_tokens, memory_tokens
from .marks import MARKS, common_change_note, line_mark, marked, param_change_note, target_marked, target_note
from .placement import device_tokens, shard_tokens
from .styled import Styles, Token, joined, role_style, wrap

__all__ = [
    "TreeLine",
    "TreeOptions",
    "forward_lines",
    "role_style",
    "summary_lines",
    "tree_lines",
    "tree_rows",
]

BRANCH, LAST, PIPE, SPACE = "├── ", "└── ", "│   ", "    "


@dataclass(frozen=True, slots=True)
class TreeOptions:
    """How a tree is laid out: the root's label, parameters on their own lines, and the line width."""

    rootname: str = "root"
    expand_params: bool = False
    width: int = 100
    #: Whether the tree is a comparison: every line then starts with a mark (``+``, ``-``, ``~`` or blank).
    compared: bool = False
    #: Whether the tree is an adapter preview: every line then starts with its mark (``◆``, ``■``, ``◇`` or
    #: blank), before a comparison's.
    targeted: bool = False


def _param_tokens(param: ParamInfo, dominant_dtype: str, styles: Styles, *, change_note: bool = True) -> list[Token]:
    """The parameter as wrappable tokens: ``weight:[768, 768] bf16``, then notes such as ``(tied to ...)``."""
    removed = param.change == "removed"
    style = styles.change["removed"] if removed else styles.state[param.state]
    text = Token(f"{param.name}:{format_shape(param.shape)}", style)
    note = styles.note
    if param.dtype != dominant_dtype:
        text.append(f" {format_dtype(param.dtype)}", note)
    if param.scheme:  # quantized: its shape is the logical one
        text.append(f" ({param.scheme})", note)
    if param.was and change_note:
        return [text, Token(param_change_note(param), styles.change["changed"])]
    if param.shape is None or param.tied_to is not None:
        tokens = [text]
        if param.shape is None:
            tokens.append(Token("(uninitialized)", note))
        if param.tied_to is not None:
            tokens.append(Token(f"(tied to {param.tied_to})", note))
        return tokens
    return [text]


def _head(folded: FoldedNode, styles: Styles, label: str | None = None) -> Token:
    head = Token()
    node = folded.node
    name_style = styles.folded if folded.folded else styles.module_name
    type_style = styles.module_type
    if node.change == "removed":
        name_style = styles.change["removed"]
    if node.calls == 0:  # never called in the traced pass: drawn faint
        name_style = type_style = styles.note
    if not node.common:  # no common name in a common structure's mapping: drawn faint
        name_style = type_style = styles.note
    head.append(folded.label if label is None else label, name_style)
    if label is None:
        head.append(" (", styles.foreground)
        head.append(node.shown_type, type_style)
        if node.was_type:
            head.append(", ", styles.foreground)
            head.append(f"was {node.was_type}", styles.change["changed"])
        head.append(")", styles.foreground)
    return head


def _forward_tokens(node: ModuleNode, styles: Styles) -> list[Token]:
    """What a module did in the traced pass: ``→ [1, 16, 768]``, ``×12`` when it ran more than once, or
    ``(never called)``."""
    if node.calls < 0:
        return []
    if node.calls == 0:
        return [Token("(never called)", styles.note)]
    tokens = [Token(f"→ {node.output}", styles.note)]
    if node.calls > 1:
        tokens.append(Token(f"×{node.calls}", styles.folded))
    return tokens


def _notes(folded: FoldedNode, styles: Styles) -> list[Token]:
    notes = []
    if folded.node.shared_with is not None:
        where = folded.node.shared_with or "the root"
        notes.append(Token(f"shared with {where}", styles.note))
    if folded.hidden:
        noun = "module" if folded.hidden == 1 else "modules"
        notes.append(Token(f"… {folded.hidden} {noun} below", styles.note))
    return notes


def _clip_prefix(prefix: str, limit: int, depth: int | None = None) -> str:
    """Keep the guides of the nearest ancestors only, so very deep trees keep bounded lines.

    Past ``limit`` characters, whole blocks of cells (half the limit each) are left out at the left, the first
    kept character shown as ``⋯``: lines that leave out the same block keep their guides in line, and a child
    is indented under its parent, except where a new block starts. ``depth`` (default: the prefix's length) is
    the prefix whose clip to use, so that the lines a module wraps onto are clipped as its first line is.
    """
    cells, limit_cells = (len(prefix) if depth is None else depth) // 4, limit // 4
    if cells <= limit_cells:
        return prefix
    block = max(1, limit_cells // 2)
    left_out = -(-(cells - limit_cells) // block) * block
    return "⋯" + prefix[4 * left_out + 1 :]


def _row(level: int, shown: str, full_length: int, **key: Any) -> TreeLine:
    """The :class:`TreeLine` of a line whose guides, ``full_length`` characters before clipping, show as ``shown``."""
    return TreeLine(level, len(shown), clipped=(full_length - len(shown)) // 4, **key)


@dataclass(frozen=True, slots=True)
class TreeLine:
    """What a line of a tree figure stands for, beyond its text: what an interactive figure needs.

    ``level`` is the depth of the module the line belongs to (the root is 0; an expanded parameter's line is
    one deeper than its module); ``guides`` how many of its first characters are tree guides (cells of four:
    ``│   ``, ``├── ``, ``└── ``, ``    ``, the first ``⋯`` when ``clipped`` cells were left out). A module's
    first line is its ``head``; ``name`` is its own part of its dotted path (as ``model.get_submodule()`` takes
    it; a folded group's written as ``{0-11}``, the root's empty): a module's key is its ancestors' names and
    its own, joined by dots (the interactive figure's script joins them); ``members`` the names a folded
    head stands for; ``kids`` whether the module shows children.
    """

    level: int
    guides: int
    head: bool = False
    name: str = ""
    members: tuple[str, ...] = ()
    kids: bool = False
    #: How many guide cells of the ancestors nearest the root were left out to keep a deep line short.
    clipped: int = 0
    #: For a folded head: the regex that matches exactly its own members among its siblings (``\d+``,
    #: ``(?:query|value)``); with the escaped names of the modules above, PEFT's ``target_modules`` pattern.
    segment: str = ""
    #: How many characters before the guides hold a comparison's mark (``+ ``): 0 or 2.
    gutter: int = 0


def tree_lines(
    folded: FoldedNode,
    theme: Theme,
    *,
    options: TreeOptions = TreeOptions(),
    dominant_dtype: str = "float32",
) -> list[Text]:
    """One or more lines per displayed module, with box-drawing guides, wrapped to ``options.width``."""
    return tree_rows(folded, theme, options=options, dominant_dtype=dominant_dtype)[0]


def tree_rows(
    folded: FoldedNode,
    theme: Theme,
    *,
    options: TreeOptions = TreeOptions(),
    dominant_dtype: str = "float32",
) -> tuple[list[Text], list[TreeLine]]:
    """:func:`tree_lines`, and a :class:`TreeLine` for each line."""
    styles = Styles(theme)
    guide = styles.guide
    gutter = (2 if options.compared else 0) + (2 if options.targeted else 0)
    width = max(options.width, 24) - gutter
    prefix_limit = max(16, width // 2)
    lines: list[Text] = []
    rows: list[TreeLine] = []
    # Each entry: the folded node (or a parameter, when expanded), the guides of its ancestors, the
    # connector before it, whether it is the last of its siblings, its level, and its parent.
    stack: list[tuple[FoldedNode | ParamInfo, str, str, bool, int, FoldedNode | None]] = [
        (folded, "", "", True, 0, None)
    ]
    is_root = True
    while stack:
        item, prefix, connector, last, level, parent = stack.pop()
        shown_prefix = _clip_prefix(prefix, prefix_limit)
        below = prefix if is_root else prefix + (SPACE if last else PIPE)
        first = shown_prefix + connector
        if isinstance(item, ParamInfo):
            continuation = _clip_prefix(below, prefix_limit, len(prefix)) + SPACE
            wrapped = wrap(_param_tokens(item, dominant_dtype, styles), first, continuation, width, guide)
            if options.compared:
                wrapped = marked(wrapped, MARKS.get(item.change, " "), styles)
            if options.targeted:
                wrapped = target_marked(wrapped, "", theme)
            lines.extend(wrapped)
            rows.append(_row(level, first, len(prefix) + len(connector), gutter=gutter))
            rows.extend(_row(level, continuation, len(below) + 4, gutter=gutter) for _ in wrapped[1:])
            continue
        kids: list[FoldedNode | ParamInfo] = []
        if options.expand_params:
            kids.extend(item.node.params)
        kids.extend(item.children)
        tokens = [_head(item, styles, options.rootname if is_root else None)]
        if item.node.device:  # a placement view: the device where it changes (``0-39 @0``)
            tokens.extend(device_tokens(item.node, None if parent is None else parent.node.device, styles))
        if not options.expand_params:
            common = common_change_note(item.node.params) if options.compared else None
            for param in item.node.params:
                tokens.extend(_param_tokens(param, dominant_dtype, styles, change_note=common is None))
            if common is not None:
                tokens.append(Token(common, styles.change["changed"]))
        if item.node.memory or any(item.node.training):
            tokens.extend(memory_tokens(item.node, styles, folded=item.folded, dominant_dtype=dominant_dtype))
        tokens.extend(_forward_tokens(item.node, styles))
        if item.node.flops > 0 or item.node.flops_was >= 0:
            tokens.extend(flop_tokens(item.node, styles, folded=item.folded))
        if item.node.tp_style or item.node.shards:
            tokens.extend(shard_tokens(item.node, styles))
        if item.node.target:
            tokens.append(target_note(item.node.target, theme))
        if item.node.shared_with is not None or item.hidden:
            tokens.extend(_notes(item, styles))
        continuation = _clip_prefix(below, prefix_limit, len(prefix)) + (PIPE if kids else SPACE)
        wrapped = wrap(tokens, first, continuation, width, guide)
        if options.compared:
            wrapped = marked(wrapped, line_mark(item), styles)
        if options.targeted:
            wrapped = target_marked(wrapped, item.node.target, theme)
        lines.extend(wrapped)
        name, segment = "", ""
        if parent is not None:
            name = "{" + item.label + "}" if item.folded else item.names[0]
            if item.folded:
                segment = _members_regex(item.names, parent.node.children)
        has_kids = bool(item.children)
        rows.append(
            _row(
                level,
                first,
                len(prefix) + len(connector),
                head=True,
                name=name,
                members=tuple(item.names) if item.folded else (),
                kids=has_kids,
                segment=segment,
                gutter=gutter,
            )
        )
        rows.extend(_row(level, continuation, len(below) + 4, gutter=gutter) for _ in wrapped[1:])
        is_root = False
        for index in range(len(kids) - 1, -1, -1):
            is_last = index == len(kids) - 1
            stack.append((kids[index], below, LAST if is_last else BRANCH, is_last, level + 1, item))
    return lines, rows


def _members_regex(names: list[str], siblings: list[Any]) -> str:
    """A pattern matching exactly ``names`` among the ``siblings``' names: ``\\d+`` when they are all the numbered
    siblings, ``\\d*[02468]`` when a long list of indices is told apart by its last digits (siblings of two kinds
    alternating), else the names."""
    numbered = [sibling.name for sibling in siblings if sibling.name.isdecimal()]
    indices = all(name.isdecimal() for name in names)
    if indices and sorted(numbered) == sorted(names):
        return r"\d+"
    listed = "(?:" + "|".join(re.escape(name) for name in names) + ")"
    if indices and len(listed) > LABEL_LIMIT:
        members = set(names)
        digits = sorted({name[-1] for name in names})
        if all((name[-1] in digits) == (name in members) for name in numbered):
            return r"\d*" + (digits[0] if len(digits) == 1 else "[" + "".join(digits) + "]")
    return listed


def summary_lines(summary: ParamSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``parameters: 109.5M total, 109.5M tunable (100.00%), 0 frozen, 0 delta``, each count in its role's color."""
    note = role_style(theme.note)

    tokens = [
        joined(("parameters:", note)),
        joined((format_count(summary.total), role_style(theme.module_name)), (" total,", note)),
        joined(
            (f"{format_count(summary.tunable)} tunable", role_style(theme.tunable)),
            (f" ({summary.tunable_ratio * 100:.2f}%),", note),
        ),
        joined((f"{format_count(summary.frozen)} frozen", role_style(theme.frozen)), (",", note)),
        joined((f"{format_count(summary.delta)} delta", role_style(theme.delta))),
    ]
    return wrap(tokens, "", SPACE, max(width, 24), note)


def forward_lines(forward: str, theme: Theme, *, width: int = 100) -> list[Text]:
    """``forward: [1, 16] i64 -> MaskedLMOutput(logits=[1, 16, 30522])``: the traced pass's input and output."""
    note = role_style(theme.note)
    tokens = [Token("forward:", note), *(Token(part, note) for part in forward.split(" -> ", 1))]
    if len(tokens) == 3:
        tokens[1].append(" ->", note)
    return wrap(tokens, "", SPACE, max(width, 24), note)
