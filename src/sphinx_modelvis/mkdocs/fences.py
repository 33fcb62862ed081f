"""Finding ```` ```{modelvis} ```` fences in a Markdown page, with their argument, options and code lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ModelvisFence", "find_fences"]

# Any indentation, as pymdownx.superfences allows, so figures work in lists, admonitions and tabs.
_OPENER = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\{modelvis\}(?:\s+(?P<argument>.*))?$")
_OPTION = re.compile(r"^:(?P<name>[\w-]+):(?:\s+(?P<value>.*))?$")


@dataclass(frozen=True, slots=True)
class ModelvisFence:
    """One ``{modelvis}`` block: where it stands (0-based line indexes, ``end`` exclusive) and what it says.

    ``code_line`` is the 1-based line of the page where the code starts (the opening line when there
    is no code), for tracebacks and warnings; ``option_lines`` maps each option to its 1-based line.
    """

    start: int
    end: int
    argument: str | None
    options: dict[str, str | None]
    code: str
    code_line: int
    indent: str
    option_lines: dict[str, int]


def _unquote(value: str) -> str:
    """A YAML-style scalar without its quotes (``"a: b"`` -> ``a: b``)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _split_options(body: list[str]) -> tuple[dict[str, str | None], dict[str, int], int]:
    """Options as MyST writes them: ``:name: value`` lines first, or a ``---`` YAML-like block; then the code.

    Returns the options, the index in ``body`` of each option's line, and the index where the code starts.
    """
    options: dict[str, str | None] = {}
    where: dict[str, int] = {}
    index = 0
    if body and body[0].strip() == "---":
        for index in range(1, len(body)):
            line = body[index]
            if line.strip() == "---":
                return options, where, index + 1
            name, _, value = line.partition(":")
            if name.strip():
                options[name.strip()] = _unquote(value.strip()) or None
                where[name.strip()] = index
        return {}, {}, 0  # no closing ---: it was code after all
    while index < len(body):
        match = _OPTION.match(body[index].strip())
        if match is None:
            break
        options[match["name"]] = (match["value"] or "").strip() or None
        where[match["name"]] = index
        index += 1
    if options and index < len(body) and not body[index].strip():
        index += 1  # the blank line between options and code
    return options, where, index


def _dedent(line: str, indent: str) -> str:
    """``line`` without the fence's indentation (or without any, when it is indented less)."""
    return line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t")


def find_fences(markdown: str) -> list[ModelvisFence]:
    """Every ``{modelvis}`` fence of the page, in order.

    Fences nested in other code blocks are text, not figures, and fences inside an HTML comment
    (``<!-- ... -->``, a common way to switch a block off) are not run.
    """
    lines = markdown.split("\n")
    found: list[ModelvisFence] = []
    index = 0
    in_comment = False
    while index < len(lines):
        if in_comment or "<!--" in lines[index]:
            in_comment = _still_in_comment(lines[index], in_comment)
            index += 1
            continue
        opener = _OPENER.match(lines[index])
        if opener is None or (opener["fence"][0] == "`" and "`" in opener["info"]):
            index += 1  # a backtick fence's info string holds no backtick: that line is inline code
            continue
        fence, indent = opener["fence"], opener["indent"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        directive = _DIRECTIVE.match(opener["info"].strip())
        if directive is not None:
            body = [_dedent(line, indent) for line in lines[index + 1 : end]]
            options, where, skip = _split_options(body)
            code_lines = body[skip:]
            while code_lines and not code_lines[-1].strip():
                code_lines.pop()
            blank = _leading_blank_lines(code_lines)
            has_code = bool(code_lines)
            found.append(
                ModelvisFence(
                    start=index,
                    end=min(end + 1, len(lines)),
                    argument=(directive["argument"] or "").strip() or None,
                    options=options,
                    code="\n".join(code_lines[blank:]) + "\n" if has_code else "",
                    code_line=index + 2 + skip + blank if has_code else index + 1,
                    indent=indent,
                    option_lines={name: index + 2 + offset for name, offset in where.items()},
                )
            )
        index = end + 1
    return found


def _still_in_comment(line: str, inside: bool) -> bool:
    """Whether an HTML comment is open at the end of ``line``, given whether one was open at its start."""
    position = 0
    while True:
        if inside:
            close = line.find("-->", position)
            if close < 0:
                return True
            inside, position = False, close + 3
        else:
            start = line.find("<!--", position)
            if start < 0:
                return False
            inside, position = True, start + 4


def _leading_blank_lines(lines: list[str]) -> int:
    count = 0
    for line in lines:
        if line.strip():
            break
        count += 1
    return count
