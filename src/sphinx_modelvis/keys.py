"""Module keys named in the prose, checked against a figure: which modules a key matches, the line of the figure
it lands on, and the closest keys when it matches none.

A figure's lines are addressed by anchors ``NAME:KEY`` (its ``:name:``, then the key of the line as the figure
shows it, a folded group written as in the figure: ``bert-vis:encoder.layer.{0-11}.attention``). A key in the prose
may be a full key (``encoder.layer.0.attention.self.query``), a suffix as PEFT matches an entry of
``target_modules`` (``query``, ``self.query``), a folded pattern as the figure writes it
(``layer.{0-11}.attention``) or a regular expression, matched against the whole key as PEFT matches a string
``target_modules`` (``.*layer\\.\\d+\\.attention``). Plain data in, plain data out: no torch, no Sphinx.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .capture import Capture, TreeBlock
from .folding import FoldedNode, fold_siblings
from .tree import ModuleNode

__all__ = [
    "FigureKeys",
    "KeyMatch",
    "anchor_prefix",
    "closest_keys",
    "describe_miss",
    "figure_keys",
    "line_anchor",
    "match_key",
    "split_reference",
]

#: Characters that make a key a regular expression (``.`` alone does not: keys are dotted).
_REGEX_CHARS = re.compile(r"[\\*+?\[\]()|^$]")
#: A folded group as the figure writes it: ``{0-11}``, ``{0,2,…,10}``, ``{query,value}``.
_FOLDED = re.compile(r"\{([^{}]+)\}")


def anchor_prefix(name: str) -> str:
    """The prefix of a named figure's line anchors: its ``:name:`` as names are matched (case and runs of spaces
    do not matter), spaces made hyphens so that it is one URL fragment."""
    return "-".join(name.lower().split())


def line_anchor(prefix: str, shown_key: str) -> str:
    """The anchor (HTML ``id``) of a figure's line: ``bert-vis:encoder.layer.{0-11}``."""
    return f"{prefix}:{shown_key}"


def split_reference(text: str) -> tuple[str, str]:
    """``bert-vis:encoder.layer.0`` as the figure's name and the key (the text up to the first colon, the rest)."""
    name, colon, key = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"{text!r} names no figure: write FIGURE-NAME:KEY, e.g. bert-vis:encoder.layer.0")
    return name.strip(), key.strip()


@dataclass(frozen=True)
class FigureKeys:
    """The modules of a figure's (last) tree: each one's key, and the key of the line it shows on (the folded
    group's line for a member of one, the nearest ancestor shown for a module below a depth cut), in tree order.
    Plain lists, so that Sphinx can pickle them with its environment."""

    keys: tuple[str, ...]
    lines: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"keys": list(self.keys), "lines": list(self.lines)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> FigureKeys:
        return cls(tuple(data["keys"]), tuple(data["lines"]))


def _shown_name(item: FoldedNode) -> str:
    # As rendering/lines.py names a line (TreeLine.name), which the figure's anchors are made of.
    return "{" + item.label + "}" if item.folded else item.names[0]


def figure_keys(capture: Capture) -> FigureKeys | None:
    """The keys of the last tree ``capture`` shows (the tree ``:compare:`` takes too), or ``None`` when it shows
    printed text only."""
    trees = [block for block in capture.blocks if isinstance(block, TreeBlock)]
    if not trees:
        return None
    block = trees[-1]
    root = block.tree.root
    folded = fold_siblings(block.tree, max_depth=block.max_depth)
    keys: list[str] = []
    lines: list[str] = []
    # Each entry: a shown line, its key as shown, and the real modules it stands for (their keys and nodes).
    stack: list[tuple[FoldedNode, str, list[tuple[str, ModuleNode]]]] = [(folded, "", [("", root)])]
    while stack:
        item, shown, places = stack.pop()
        for key, _ in places:
            keys.append(key)
            lines.append(shown)
        below: list[tuple[FoldedNode, str, list[tuple[str, ModuleNode]]]] = []
        children = [{child.name: child for child in node.children} for _, node in places]
        for child in item.children:
            child_shown = _shown_name(child) if not shown else f"{shown}.{_shown_name(child)}"
            # The members of a folded group are alike: each has the first one's children, by name.
            child_places = [
                (f"{key}.{name}" if key else name, named[name])
                for (key, _), named in zip(places, children, strict=True)
                for name in child.names
            ]
            below.append((child, child_shown, child_places))
        if item.hidden:  # cut by max_depth: the modules below land on this line
            for key, node in places:
                for path, _ in node.places()[1:]:
                    keys.append(f"{key}.{path}" if key else path)
                    lines.append(shown)
        stack.extend(reversed(below))
    return FigureKeys(tuple(keys), tuple(lines))


@dataclass(frozen=True)
class KeyMatch:
    """What a key matched in a figure: the keys (in tree order), the line anchor to land on without a script
    (``line``), and the key a script goes on to (``target``: a member of a folded group, unfolded; the same as
    ``line`` when the line is exactly what was matched)."""

    matched: tuple[str, ...]
    line: str
    target: str


def _label_regex(label: str) -> str:
    """A folded group's label (``0-11``, ``0,2,…,10``, ``query,value``) as a regex of the names it stands for."""
    parts = label.split(",")
    names: list[str] = []
    for index, part in enumerate(parts):
        part = part.strip()
        if part == "…" and 2 <= index < len(parts) - 1:  # counts on by the step of the two before it
            start, step, end = (
                int(parts[index - 1]),
                int(parts[index - 1]) - int(parts[index - 2]),
                int(parts[index + 1]),
            )
            names.extend(str(number) for number in range(start + step, end, step) if step > 0)
        elif re.fullmatch(r"\d+-\d+", part):
            low, high = (int(end) for end in part.split("-"))
            names.extend(str(number) for number in range(low, high + 1))
        else:
            names.append(part)
    return "(?:" + "|".join(re.escape(name) for name in names) + ")"


def _pattern(query: str) -> re.Pattern[str] | None:
    """The compiled pattern of a key that is not plain (folded or a regex), or ``None`` for a plain key."""
    if _FOLDED.search(query) and not _REGEX_CHARS.search(query):
        pieces, cursor = [], 0
        for found in _FOLDED.finditer(query):
            pieces.append(re.escape(query[cursor : found.start()]))
            pieces.append(_label_regex(found[1]))
            cursor = found.end()
        pieces.append(re.escape(query[cursor:]))
        return re.compile(r"(?:.*\.)?" + "".join(pieces))  # a suffix, as a plain key
    if _REGEX_CHARS.search(query):
        return re.compile(query)
    return None


def match_key(query: str, figure: FigureKeys) -> KeyMatch | None:
    """The modules of ``figure`` that ``query`` names, or ``None`` when it names none.

    A plain key matches a module whose key is it or ends with ``.`` and it (PEFT's rule for the names in
    ``target_modules``); an empty key is the root. Raises :class:`re.error` for a regex that does not compile.
    """
    pattern = _pattern(query)
    indices: list[int]
    if pattern is not None:
        indices = [index for index, key in enumerate(figure.keys) if key and pattern.fullmatch(key)]
    elif not query:
        indices = [index for index, key in enumerate(figure.keys) if not key]
    else:
        suffix = "." + query
        indices = [index for index, key in enumerate(figure.keys) if key == query or key.endswith(suffix)]
    if not indices:
        return None
    first = indices[0]
    line = figure.lines[first]
    on_line = {index for index, shown in enumerate(figure.lines) if shown == line}
    # Every module the line stands for, and nothing else: the line itself. Else the first module matched.
    whole_line = on_line == set(indices) or figure.keys[first] == line
    target = line if whole_line else figure.keys[first]
    return KeyMatch(tuple(figure.keys[index] for index in indices), line, target)


def closest_keys(query: str, figure: FigureKeys, *, count: int = 3) -> list[str]:
    """Keys of ``figure`` (or their ends, as a suffix would be written, or lines as the figure writes them) that
    look most like ``query``: what a warning suggests. Keys that differ only in their indices count once (the
    twelve layers' ``dense`` and their folded line are one suggestion, the one closest to what was written)."""
    candidates: set[str] = set()
    for key in (*figure.keys, *figure.lines):
        parts = key.split(".")
        candidates.update(".".join(parts[start:]) for start in range(len(parts)))
    candidates.discard("")
    suggestions: dict[str, str] = {}
    for found in difflib.get_close_matches(query, sorted(candidates), n=count * 8, cutoff=0.6):
        suggestions.setdefault(re.sub(r"\d+|\{[^{}]*\}", "#", found), found)
    return list(suggestions.values())[:count]


def describe_miss(query: str, figure: FigureKeys) -> str:
    """Why ``query`` matched nothing, with the closest keys: the text of a build's warning."""
    suggestions = closest_keys(query, figure)
    hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
    return f"matches no module of the figure{hint}"
