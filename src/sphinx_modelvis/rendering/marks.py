"""A comparison's marks on the tree's lines (``+``, ``-``, ``~`` in a gutter), its notes (``(was tunable)``,
``(moved from the parent)``) and the line counting what changed."""

from __future__ import annotations

from rich.style import Style
from rich.text import Span, Text

from ..folding import FoldedNode, format_count
from ..target_summary import TargetSummary
from ..theme import Theme
from ..tree import ChangeSummary, ParamInfo
from .styled import Styles, Token, joined, role_style, wrap

__all__ = [
    "MARKS",
    "TARGET_MARKS",
    "change_lines",
    "common_change_note",
    "line_mark",
    "marked",
    "param_change_note",
    "target_lines",
    "target_marked",
    "target_note",
]


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


def param_change_note(param: ParamInfo) -> str:
    """What a compared parameter was: ``(was tunable)``, ``(moved from the parent, was tunable)``."""
    if param.change == "moved":
        place, _, rest = param.was.partition(", ")
        module, name = _moved(place)
        return _moved_note(module if name == param.name else f"{module}'s {name}", rest)
    return f"(was {param.was})"


def common_change_note(params: list[ParamInfo]) -> str | None:
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


def line_mark(folded: FoldedNode) -> str:
    """The mark of a compared module's line: its own change, else the change of what it owns."""
    node = folded.node
    if node.change:
        return MARKS[node.change]
    own = {param.change for param in node.params if param.change}
    if node.was_type or own & {"changed", "moved"} or len(own) > 1:
        return "~"
    return MARKS[own.pop()] if own else " "


def marked(lines: list[Text], mark: str, styles: Styles) -> list[Text]:
    """``lines`` with a mark column in front: ``mark`` on the first, blank on the lines it wraps onto."""
    out = []
    for index, line in enumerate(lines):
        sign = mark if index == 0 else " "
        spans = [span.move(2) for span in line.spans]
        if sign != " ":
            spans.insert(0, Span(0, 1, styles.change[_MARK_CHANGE[sign]]))
        out.append(Text(f"{sign} {line.plain}", style=line.style, spans=spans))
    return out


def change_lines(changes: ChangeSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``changes: +294.9K added (0.27%), 80.5M newly frozen (73.31%), 0 newly tunable, 29.0M unchanged (26.42%)``.

    Counts of parameters, shares of the later model's total; under ``:changes-only:``, a line saying how
    many unchanged modules were left out.
    """
    note = role_style(theme.note)
    total = changes.total or 1

    def token(text: str, style: Style, count: int, last: bool = False) -> Token:
        assembled = Token()
        assembled.append(text, style)
        share = f" ({count / total * 100:.2f}%)" if count else ""
        assembled.append(share + ("" if last else ","), note)
        return assembled

    tokens = [
        Token("changes:", note),
        token(f"+{format_count(changes.added)} added", role_style(theme.added), changes.added),
        token(f"{format_count(changes.frozen)} newly frozen", role_style(theme.frozen), changes.frozen),
        token(f"{format_count(changes.unfrozen)} newly tunable", role_style(theme.tunable), changes.unfrozen),
    ]
    if changes.removed:
        tokens.append(Token(f"-{format_count(changes.removed)} removed,", role_style(theme.removed)))
    tokens.append(token(f"{format_count(changes.unchanged)} unchanged", note, changes.unchanged, last=True))
    lines = wrap(tokens, "", "    ", max(width, 24), note)
    if changes.changes_only and changes.modules_unchanged:
        noun = "module" if changes.modules_unchanged == 1 else "modules"
        lines.append(Text(f"⋯ {changes.modules_unchanged:,} unchanged {noun} not shown (:changes-only:)", style=note))
    return lines


#: The mark an adapter preview puts before a module's line, by what the config would do to it: filled for a
#: module it adapts, a square for the trainable copy ``modules_to_save`` makes, hollow for one it leaves out.
TARGET_MARKS = {"adapted": "◆", "saved": "■", "excluded": "◇"}
#: The color role of each preview mark: what an adapter adds is delta, a saved copy trains, an excluded module
#: stays as it is (frozen, once the adapter freezes the model).
TARGET_ROLES = {"adapted": "delta", "saved": "tunable", "excluded": "frozen"}


def target_marked(lines: list[Text], target: str, theme: Theme) -> list[Text]:
    """``lines`` with the preview's mark column in front: ``target``'s mark on the first, blank on the others."""
    out = []
    sign = TARGET_MARKS.get(target, " ")
    style = role_style(theme.role(TARGET_ROLES[target])) if target in TARGET_ROLES else None
    for index, line in enumerate(lines):
        first = sign if index == 0 else " "
        spans = [span.move(2) for span in line.spans]
        if first != " " and style is not None:
            spans.insert(0, Span(0, 1, style))
        out.append(Text(f"{first} {line.plain}", style=line.style, spans=spans))
    return out


def target_note(target: str, theme: Theme) -> Token:
    """What a previewed module's line ends with, in its mark's color: ``(adapted)``, ``(saved)``, ``(excluded)``,
    so the line says it where the eye reads, in every format and without colors."""
    return Token(f"({target})", role_style(theme.role(TARGET_ROLES[target])))


def target_lines(targets: TargetSummary, theme: Theme, *, total: int, width: int = 100) -> list[Text]:
    """``targets: ◆ 24 adapted (LoRA r=8), +294.9K parameters (0.27%), ■ 1 saved, ◇ 8 excluded``, then the
    entries of ``target_modules`` that matched nothing or only part of a repeated stack, and other notes."""
    note = role_style(theme.note)

    adapted = role_style(theme.role(TARGET_ROLES["adapted"]))
    # Each count: its text in its role's color, then a note after it.
    counts: list[tuple[str, Style, str]] = [
        (f"◆ {targets.adapted:,} adapted", adapted, f" ({targets.method})" if targets.method else "")
    ]
    if targets.method and targets.counted:
        share = f" ({targets.added / (total or 1) * 100:.2f}%)" if targets.added else ""
        counts.append((f"+{format_count(targets.added)} parameters", adapted, share))
    elif targets.method:
        counts.append(("added parameters not counted", note, ""))
    if targets.saved:
        counts.append((f"■ {targets.saved:,} saved", role_style(theme.role(TARGET_ROLES["saved"])), ""))
    if targets.excluded:
        counts.append((f"◇ {targets.excluded:,} excluded", role_style(theme.role(TARGET_ROLES["excluded"])), ""))
    tokens = [Token("targets:", note)]
    for index, (text, style, after) in enumerate(counts):
        tokens.append(joined((text, style), (after + ("," if index < len(counts) - 1 else ""), note)))
    lines = wrap(tokens, "", "    ", max(width, 24), note)
    if targets.unmatched:
        error = role_style(theme.error)
        found = [Token("matched nothing:", error)]
        last = len(targets.unmatched) - 1
        found.extend(
            Token(f"'{entry}'" + ("," if index < last else ""), error) for index, entry in enumerate(targets.unmatched)
        )
        lines.extend(wrap(found, "", "    ", max(width, 24), note))
    if targets.partial:
        changed = role_style(theme.changed)
        part = [Token("matched part of a stack:", changed)]
        for index, (entry, hits, alike, indices) in enumerate(targets.partial):
            comma = "," if index < len(targets.partial) - 1 else ""
            part.append(joined((f"'{entry}'", changed), (f" {hits} of {alike} ({indices}){comma}", note)))
        lines.extend(wrap(part, "", "    ", max(width, 24), note))
    for text in targets.notes:
        lines.extend(wrap([Token(word, note) for word in text.split(" ")], "", "    ", max(width, 24), note))
    return lines
