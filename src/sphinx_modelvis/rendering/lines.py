"""The folded tree, and captured terminal output, as styled lines of a given width."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.style import Style, StyleType
from rich.text import Span, Text

from ..capture import TextBlock
from ..folding import FoldedNode, ParamSummary, format_count
from ..theme import Role, Theme
from ..tree import ChangeSummary, ModuleNode, ParamInfo

__all__ = [
    "TreeLine",
    "TreeOptions",
    "ansi_lines",
    "change_lines",
    "forward_lines",
    "printed_lines",
    "role_style",
    "summary_lines",
    "tree_lines",
    "tree_rows",
]

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
    #: Whether the tree is a comparison: every line then starts with a mark (``+``, ``-``, ``~`` or blank).
    compared: bool = False


def role_style(role: Role) -> Style:
    """The rich style of a theme role."""
    return _role_style(role)


@lru_cache(maxsize=256)
def _role_style(role: Role) -> Style:
    # Cached: building a ``Style`` is dear, and a big tree asks for the same few styles on every line.
    return Style(color=role.color, bold=role.bold or None, italic=role.italic or None)


def _visible(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\x1b``), so a name stays on its line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class _Token:
    """A piece of a line that wraps as a whole: its text, its base style and its ``(start, end, style)`` spans.

    Lines are assembled from tokens into one :class:`~rich.text.Text` each, with the very spans that
    ``Text.append_text`` would give them, but without building a ``Text`` per token (a big tree has many).
    """

    __slots__ = ("cell_len", "plain", "spans", "style")

    def __init__(self, text: str = "", style: StyleType = "") -> None:
        if text.isascii() and text.isprintable():  # the usual case, and no control code nor wide character
            self.plain = text
            self.cell_len = len(text)
        else:
            self.plain = _visible(text)
            self.cell_len = cell_len(self.plain)
        self.style = style
        self.spans: list[tuple[int, int, StyleType]] = []

    def append(self, text: str, style: StyleType | None = None) -> _Token:
        """Add ``text`` in ``style``, as ``Text.append`` does (control codes dropped, no span for no style)."""
        if text.isascii() and text.isprintable():
            size = len(text)
        else:
            text = _visible(text)
            size = cell_len(text)
        if text:
            start = len(self.plain)
            self.plain += text
            if style:
                self.spans.append((start, start + len(text), style))
            self.cell_len += size
        return self


class _Styles:
    """The styles of a theme's roles, made once per tree rather than once per line."""

    __slots__ = ("change", "folded", "foreground", "guide", "module_name", "module_type", "note", "state")

    def __init__(self, theme: Theme) -> None:
        self.guide = role_style(theme.guide)
        self.note = role_style(theme.note)
        self.module_name = role_style(theme.module_name)
        self.folded = role_style(theme.folded)
        self.module_type = role_style(theme.module_type)
        self.foreground = theme.foreground
        self.state = {state: role_style(theme.role(state)) for state in ("buffer", "delta", "tunable", "frozen")}
        changed = role_style(theme.changed)
        self.change = {
            "added": role_style(theme.added),
            "removed": role_style(theme.removed),
            "changed": changed,
            "moved": changed,
        }


#: The mark a compared line starts with, by the change it shows.
MARKS = {"added": "+", "removed": "-", "changed": "~", "moved": "~"}
#: The change whose color each mark takes.
_MARK_CHANGE = {"+": "added", "-": "removed", "~": "changed"}


#: How a moved parameter's earlier module is named, by how many levels up it is.
_UP = {1: "the parent", 2: "the grandparent"}


def _moved(place: str) -> tuple[str, str]:
    """A moved parameter's earlier place (``../weight``) as the module it was in and its name there."""
    up = place.count("../")
    return _UP.get(up, f"{up} levels up"), place[3 * up :]


def _moved_note(where: str, rest: str) -> str:
    return f"(moved from {where}" + (f", was {rest})" if rest else ")")


def _change_note(param: ParamInfo) -> str:
    """What a compared parameter was: ``(was tunable)``, ``(moved from the parent, was tunable)``."""
    if param.change == "moved":
        place, _, rest = param.was.partition(", ")
        module, name = _moved(place)
        return _moved_note(module if name == param.name else f"{module}'s {name}", rest)
    return f"(was {param.was})"


def _common_change_note(params: list[ParamInfo]) -> str | None:
    """One note for all of a module's parameters when they all changed alike: ``(was tunable)`` once, not per
    parameter; ``(moved from the parent, was tunable)`` when they all came from one module."""
    if len(params) < 2 or not all(param.was for param in params):
        return None
    changes = {param.change for param in params}
    if changes == {"changed"}:
        return f"(was {params[0].was})" if len({param.was for param in params}) == 1 else None
    if changes != {"moved"}:
        return None
    origins = set()
    for param in params:
        place, _, rest = param.was.partition(", ")
        module, name = _moved(place)
        if name != param.name:
            return None
        origins.add((module, rest))
    if len(origins) != 1:
        return None
    ((module, rest),) = origins
    return _moved_note(module, rest)


def _param_tokens(param: ParamInfo, dominant_dtype: str, styles: _Styles, *, change_note: bool = True) -> list[_Token]:
    """The parameter as wrappable tokens: ``weight:[768, 768] bf16``, then notes such as ``(tied to ...)``."""
    shape = "?" if param.shape is None else ", ".join([str(size) for size in param.shape])
    removed = param.change == "removed"
    text = _Token(f"{param.name}:[{shape}]", styles.change["removed"] if removed else styles.state[param.state])
    note = styles.note
    if param.dtype != dominant_dtype:
        text.append(f" {DTYPE_NAMES.get(param.dtype, param.dtype)}", note)
    if param.was and change_note:
        return [text, _Token(_change_note(param), styles.change["changed"])]
    if param.shape is None or param.tied_to is not None:
        tokens = [text]
        if param.shape is None:
            tokens.append(_Token("(uninitialized)", note))
        if param.tied_to is not None:
            tokens.append(_Token(f"(tied to {param.tied_to})", note))
        return tokens
    return [text]


def _head(folded: FoldedNode, styles: _Styles, label: str | None = None) -> _Token:
    head = _Token()
    node = folded.node
    name_style = styles.folded if folded.folded else styles.module_name
    type_style = styles.module_type
    if node.change == "removed":
        name_style = styles.change["removed"]
    if node.calls == 0:  # never called in the traced pass: drawn faint
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


def _line_mark(folded: FoldedNode) -> str:
    """The mark of a compared module's line: its own change, else the change of what it owns."""
    node = folded.node
    if node.change:
        return MARKS[node.change]
    own = {param.change for param in node.params if param.change}
    if node.was_type or own & {"changed", "moved"} or len(own) > 1:
        return "~"
    return MARKS[own.pop()] if own else " "


def _marked(lines: list[Text], mark: str, styles: _Styles) -> list[Text]:
    """``lines`` with a mark column in front: ``mark`` on the first, blank on the lines it wraps onto."""
    out = []
    for index, line in enumerate(lines):
        sign = mark if index == 0 else " "
        spans = [span.move(2) for span in line.spans]
        if sign != " ":
            spans.insert(0, Span(0, 1, styles.change[_MARK_CHANGE[sign]]))
        out.append(Text(f"{sign} {line.plain}", style=line.style, spans=spans))
    return out


def _forward_tokens(node: ModuleNode, styles: _Styles) -> list[_Token]:
    """What a module did in the traced pass: ``→ [1, 16, 768]``, ``×12`` when it ran more than once, or
    ``(never called)``."""
    if node.calls < 0:
        return []
    if node.calls == 0:
        return [_Token("(never called)", styles.note)]
    tokens = [_Token(f"→ {node.output}", styles.note)]
    if node.calls > 1:
        tokens.append(_Token(f"×{node.calls}", styles.folded))
    return tokens


def _notes(folded: FoldedNode, styles: _Styles) -> list[_Token]:
    notes = []
    if folded.node.shared_with is not None:
        where = folded.node.shared_with or "the root"
        notes.append(_Token(f"shared with {where}", styles.note))
    if folded.hidden:
        noun = "module" if folded.hidden == 1 else "modules"
        notes.append(_Token(f"… {folded.hidden} {noun} below", styles.note))
    return notes


def _wrap(tokens: list[_Token], first: str, rest: str, width: int, guide: Style) -> list[Text]:
    """Lay ``tokens`` out after the guide prefix ``first``, continuing under ``rest`` when a line is full."""
    lines: list[Text] = []
    parts = [first if first.isprintable() else strip_control_codes(first)]
    length = offset = len(parts[0])
    spans: list[Span] = []
    start = True
    for token in tokens:
        size = token.cell_len
        if not start and length + 1 + size > width:
            lines.append(Text("".join(parts), style=guide, spans=spans))
            parts = [rest if rest.isprintable() else strip_control_codes(rest)]
            length = offset = len(parts[0])
            spans = []
            start = True
        if not start:
            parts.append(" ")
            length += 1
            offset += 1
        parts.append(token.plain)
        if token.style:
            spans.append(Span(offset, offset + len(token.plain), token.style))
        spans.extend(Span(offset + begin, offset + end, style) for begin, end, style in token.spans)
        length += size
        offset += len(token.plain)
        start = False
    lines.append(Text("".join(parts), style=guide, spans=spans))
    return lines


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
    first line is its ``head``; ``path`` is its dotted path as ``model.get_submodule()`` takes it, folded
    groups written as ``{0-11}``; ``regex`` the pattern PEFT's ``target_modules`` matches (``re.fullmatch``)
    against exactly those paths, set only where the path has a folded group; ``members`` the names a folded
    head stands for; ``kids`` whether the module shows children.
    """

    level: int
    guides: int
    head: bool = False
    path: str = ""
    regex: str = ""
    members: tuple[str, ...] = ()
    kids: bool = False
    #: How many guide cells of the ancestors nearest the root were left out to keep a deep line short.
    clipped: int = 0
    #: For a folded head: the part of ``regex`` that matches its own members (``\d+``, ``(?:query|value)``).
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
    styles = _Styles(theme)
    guide = styles.guide
    gutter = 2 if options.compared else 0
    width = max(options.width, 24) - gutter
    prefix_limit = max(16, width // 2)
    lines: list[Text] = []
    rows: list[TreeLine] = []
    # Each entry: the folded node (or a parameter, when expanded), the guides of its ancestors, the
    # connector before it, whether it is the last of its siblings, its level, and its parent's path and regex
    # (the regex empty while no folded group is on the way).
    stack: list[tuple[FoldedNode | ParamInfo, str, str, bool, int, str, str, FoldedNode | None]] = [
        (folded, "", "", True, 0, "", "", None)
    ]
    is_root = True
    while stack:
        item, prefix, connector, last, level, parent_path, parent_regex, parent = stack.pop()
        shown_prefix = _clip_prefix(prefix, prefix_limit)
        below = prefix if is_root else prefix + (SPACE if last else PIPE)
        first = shown_prefix + connector
        if isinstance(item, ParamInfo):
            continuation = _clip_prefix(below, prefix_limit, len(prefix)) + SPACE
            wrapped = _wrap(_param_tokens(item, dominant_dtype, styles), first, continuation, width, guide)
            if gutter:
                wrapped = _marked(wrapped, MARKS.get(item.change, " "), styles)
            lines.extend(wrapped)
            rows.append(_row(level, first, len(prefix) + len(connector), gutter=gutter))
            rows.extend(_row(level, continuation, len(below) + 4, gutter=gutter) for _ in wrapped[1:])
            continue
        kids: list[FoldedNode | ParamInfo] = []
        if options.expand_params:
            kids.extend(item.node.params)
        kids.extend(item.children)
        tokens = [_head(item, styles, options.rootname if is_root else None)]
        if not options.expand_params:
            common = _common_change_note(item.node.params) if gutter else None
            for param in item.node.params:
                tokens.extend(_param_tokens(param, dominant_dtype, styles, change_note=common is None))
            if common is not None:
                tokens.append(_Token(common, styles.change["changed"]))
        tokens.extend(_forward_tokens(item.node, styles))
        if item.node.shared_with is not None or item.hidden:
            tokens.extend(_notes(item, styles))
        continuation = _clip_prefix(below, prefix_limit, len(prefix)) + (PIPE if kids else SPACE)
        wrapped = _wrap(tokens, first, continuation, width, guide)
        if gutter:
            wrapped = _marked(wrapped, _line_mark(item), styles)
        lines.extend(wrapped)
        path, regex, segment = "", "", ""
        if parent is not None:
            path, regex = _key(item, parent, parent_path, parent_regex)
            if item.folded:
                segment = _members_regex(item.names, parent.node.children)
        has_kids = bool(item.children)
        rows.append(
            _row(
                level,
                first,
                len(prefix) + len(connector),
                head=True,
                path=path,
                regex=regex,
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
            stack.append((kids[index], below, LAST if is_last else BRANCH, is_last, level + 1, path, regex, item))
    return lines, rows


def _key(item: FoldedNode, parent: FoldedNode, parent_path: str, parent_regex: str) -> tuple[str, str]:
    """The dotted path of ``item`` under ``parent`` (a folded group as ``{0-11}``) and, once a group is on the
    way, the regular expression that matches exactly the paths it stands for."""
    if item.folded:
        segment = "{" + item.label + "}"
        pattern = _members_regex(item.names, parent.node.children)
    else:
        segment = item.names[0]
        pattern = re.escape(segment)
    path = f"{parent_path}.{segment}" if parent_path else segment
    if not (item.folded or parent_regex):
        return path, ""
    if not parent_regex and parent_path:  # the first folded group: what lies above it, escaped
        parent_regex = re.escape(parent_path)
    return path, f"{parent_regex}\\.{pattern}" if parent_regex else pattern


def _members_regex(names: list[str], siblings: list[Any]) -> str:
    """A pattern matching exactly ``names``: ``\\d+`` when they are all the numbered siblings, else the names."""
    numbered = [sibling.name for sibling in siblings if sibling.name.isdecimal()]
    if all(name.isdecimal() for name in names) and sorted(numbered) == sorted(names):
        return r"\d+"
    return "(?:" + "|".join(re.escape(name) for name in names) + ")"


def summary_lines(summary: ParamSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``parameters: 109.5M total, 109.5M tunable (100.00%), 0 frozen, 0 delta``, each count in its role's color."""
    note = role_style(theme.note)

    def token(*parts: tuple[str, Style]) -> _Token:
        assembled = _Token()
        for text, style in parts:
            assembled.append(text, style)
        return assembled

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


def change_lines(changes: ChangeSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``changes: +294.9K added (0.27%), 80.5M newly frozen (73.31%), 0 newly tunable, 29.0M unchanged (26.42%)``.

    Counts of parameters, shares of the later model's total; under ``:changes-only:``, a line saying how
    many unchanged modules were left out.
    """
    note = role_style(theme.note)
    total = changes.total or 1

    def token(text: str, style: Style, count: int, last: bool = False) -> _Token:
        assembled = _Token()
        assembled.append(text, style)
        share = f" ({count / total * 100:.2f}%)" if count else ""
        assembled.append(share + ("" if last else ","), note)
        return assembled

    tokens = [
        _Token("changes:", note),
        token(f"+{format_count(changes.added)} added", role_style(theme.added), changes.added),
        token(f"{format_count(changes.frozen)} newly frozen", role_style(theme.frozen), changes.frozen),
        token(f"{format_count(changes.unfrozen)} newly tunable", role_style(theme.tunable), changes.unfrozen),
    ]
    if changes.removed:
        tokens.append(_Token(f"-{format_count(changes.removed)} removed,", role_style(theme.removed)))
    tokens.append(token(f"{format_count(changes.unchanged)} unchanged", note, changes.unchanged, last=True))
    lines = _wrap(tokens, "", SPACE, max(width, 24), note)
    if changes.changes_only and changes.modules_unchanged:
        noun = "module" if changes.modules_unchanged == 1 else "modules"
        lines.append(Text(f"⋯ {changes.modules_unchanged:,} unchanged {noun} not shown (:changes-only:)", style=note))
    return lines


def forward_lines(forward: str, theme: Theme, *, width: int = 100) -> list[Text]:
    """``forward: [1, 16] i64 -> MaskedLMOutput(logits=[1, 16, 30522])``: the traced pass's input and output."""
    note = role_style(theme.note)
    tokens = [_Token("forward:", note), *(_Token(part, note) for part in forward.split(" -> ", 1))]
    if len(tokens) == 3:
        tokens[1].append(" ->", note)
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


def printed_lines(block: TextBlock, theme: Theme, *, width: int) -> list[Text]:
    """A run of printed text as lines no wider than ``width``, at most ``block.max_lines`` of them (0: all).

    Past the cap, the first half and the last half of the lines stay, with a note between them saying how
    many were left out (those the capture dropped, and those that long lines wrapped into past the cap).
    """
    head = ansi_lines(block.ansi, theme, width=width) if block.ansi else []
    tail = ansi_lines(block.tail, theme, width=width) if block.tail else []
    omitted = block.omitted
    cap = block.max_lines
    if cap:
        keep_head, keep_tail = (cap + 1) // 2, cap // 2
        if not (omitted or tail):
            if len(head) > cap:
                tail = head[len(head) - keep_tail :] if keep_tail else []
                omitted = len(head) - keep_head - len(tail)
                head = head[:keep_head]
        else:
            if len(head) > keep_head:
                omitted += len(head) - keep_head
                head = head[:keep_head]
            if len(tail) > keep_tail:
                omitted += len(tail) - keep_tail
                tail = tail[len(tail) - keep_tail :] if keep_tail else []
    if not omitted:
        return head + tail
    noun = "line" if omitted == 1 else "lines"
    note = f"⋯ {omitted:,} {noun} left out: the figure keeps the first and last of {cap:,} (:max-lines:) ⋯"
    return [*head, Text(note, style=role_style(theme.note)), *tail]
