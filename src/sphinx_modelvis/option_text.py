"""Reading a figure option's text (``None`` when the option has no value): flags, numbers, choices, lengths,
class names. Each reader raises ``ValueError`` on a bad value, as docutils option specs do, so that Sphinx can
use the converters made of them directly."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

__all__ = [
    "choice",
    "classes",
    "flag",
    "length",
    "number",
    "optional_text",
    "parser_for",
    "required_text",
    "whole_number",
]

_LENGTH = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(em|ex|px|in|cm|mm|pt|pc|%)?$")


def flag(value: str | None) -> bool:
    """No value, true/yes/on/1: True; false/no/off/0: False."""
    text = (value or "").strip().lower()
    if text in ("", "true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected no value (or true/false), got {value!r}")


def required_text(value: str | None) -> str:
    """The text, stripped; it must not be empty."""
    if value is None or not value.strip():
        raise ValueError("a value is required")
    return value.strip()


def optional_text(value: str | None) -> str:
    """The text, stripped, empty when there is none."""
    return (value or "").strip()


def whole_number(value: str | None) -> int:
    """A whole number."""
    try:
        return int(required_text(value))
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def number(value: str | None) -> float:
    """A number."""
    try:
        return float(required_text(value))
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def choice(*choices: str) -> Callable[[str | None], str]:
    """A reader of one of ``choices`` (in any case)."""

    def parse(value: str | None) -> str:
        chosen = required_text(value).lower()
        if chosen not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return chosen

    return parse


def length(value: str | None) -> str:
    """A CSS length such as ``600px``, ``80%`` or ``30em``; a bare number is in pixels."""
    match = _LENGTH.match(required_text(value))
    if not match:
        raise ValueError(f"expected a length such as 600px, 80% or 30em, got {value!r}")
    return match.group(1) + (match.group(2) or "px")


def classes(value: str | None) -> tuple[str, ...]:
    """Class names, separated by spaces, made into lowercase identifiers."""
    names = tuple(re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-") for word in required_text(value).split())
    if not all(names):
        raise ValueError(f"expected class names, got {value!r}")
    return names


def parser_for(kind: Any) -> Callable[[str | None], Any]:
    """How the text of an option of type ``kind`` is read (``X | None``: as ``X``)."""
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if typing.get_origin(kind) is Literal:
        return choice(*typing.get_args(kind))
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        return parser_for(args[0])
    parsers: dict[Any, Callable[[str | None], Any]] = {bool: flag, int: whole_number, float: number, str: required_text}
    return parsers[kind]
