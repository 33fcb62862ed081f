"""Finding ```` ```{modelvis} ```` fences in a Markdown page, with their argument, options and code lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ModelvisFence", "find_fences"]

_OPENER = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\{modelvis\}(?:\s+(?P<argument>.*))?$")
_OPTION = re.compile(r"^:(?P<name>[\w-]+):(?:\s+(?P<value>.*))?$")


@dataclass(frozen=True, slots=True)
class ModelvisFence:
    """One ``{modelvis}`` block: where it stands (0-based line indexes, ``end`` exclusive) and what it says.

    ``code_line`` is the 1-based line of the page where the code starts, for tracebacks and warnings.
    """

    start: int
    end: int
    argument: str | None
    options: dict[str, str | None]
    code: str
    code_line: int
    indent: str


def _split_options(body: list[str]) -> tuple[dict[str, str | None], int]:
    """Options as MyST writes them: ``:name: value`` lines first, or a ``---`` YAML-like block; then the code."""
    options: dict[str, str | None] = {}
    index = 0
    if body and body[0].strip() == "---":
        for index in range(1, len(body)):
            line = body[index]
            if line.strip() == "---":
                return options, index + 1
            name, _, value = line.partition(":")
            if name.strip():
                options[name.strip()] = value.strip() or None
        return {}, 0  # no closing ---: it was code after all
    while index < len(body):
        match = _OPTION.match(body[index].strip())
        if match is None:
            break
        options[match["name"]] = (match["value"] or "").strip() or None
        index += 1
    if options and index < len(body) and not body[index].strip():
        index += 1  # the blank line between options and code
    return options, index


def find_fences(markdown: str) -> list[ModelvisFence]:
    """Every ``{modelvis}`` fence of the page, in order; fences nested in other code blocks are text, not figures."""
    lines = markdown.split("\n")
    found: list[ModelvisFence] = []
    index = 0
    while index < len(lines):
        opener = _OPENER.match(lines[index])
        if opener is None:
            index += 1
            continue
        fence, indent = opener["fence"], opener["indent"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        directive = _DIRECTIVE.match(opener["info"].strip())
        if directive is not None:
            body = [
                line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[index + 1 : end]
            ]
            options, skip = _split_options(body)
            argument = (directive["argument"] or "").strip() or None
            found.append(
                ModelvisFence(
                    start=index,
                    end=min(end + 1, len(lines)),
                    argument=argument,
                    options=options,
                    code="\n".join(body[skip:]).strip("\n") + "\n" if "".join(body[skip:]).strip() else "",
                    code_line=index + 2 + skip + _leading_blank_lines(body[skip:]),
                    indent=indent,
                )
            )
        index = end + 1
    return found


def _dedent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _leading_blank_lines(lines: list[str]) -> int:
    count = 0
    for line in lines:
        if line.strip():
            break
        count += 1
    return count
