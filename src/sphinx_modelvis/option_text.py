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
    "dependency_list",
    "flag",
    "length",
    "memory_size",
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


def dependency_list(value: str | None) -> tuple[str, ...]:
    """Declared dependencies, separated by commas: paths, globs and ``env:NAME``."""
    items = tuple(item.strip() for item in required_text(value).split(","))
    if not all(items) or any(item.startswith("env:") and not item[4:].isidentifier() for item in items):
        raise ValueError(f"expected paths, globs or env:NAME separated by commas, got {value!r}")
    return items


def parser_for(kind: Any) -> Callable[[str | None], Any]:
    """How the text of an option of type ``kind`` is read (``X | None``: as ``X``)."""
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if typing.get_origin(kind) is Literal:
        return choice(*typing.get_args(kind))
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        return parser_for(args[0])
    parsers: dict[Any, Callable[[str | None], Any]] = {bool: flag, int: whole_number, float: number, str: required_text}
    return parsers[kind]


_MEMORY = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?b?|b)?$|^(\d+(?:\.\d*)?|\.\d+)\s*%$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def memory_size(value: int | str, *, total: int | None = None) -> int:
    """An amount of memory in bytes: a whole number of bytes, or text such as ``2GiB``, ``512 MiB``, ``1.5GB`` or
    ``25%`` (of ``total``, the machine's memory). ``KiB``/``MiB``/``GiB``/``TiB`` count in 1024s, ``kB``/``MB``/
    ``GB``/``TB`` (and ``k``/``M``/``G``/``T``) in 1000s. ``ValueError`` for anything else (a percentage with no
    ``total`` too)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number of bytes or a size such as 2GiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a number of bytes of 0 or more, got {value!r}")
        return value
    match = _MEMORY.match(value.strip())
    if not match:
        raise ValueError(f"expected a number of bytes or a size such as 2GiB, 512MiB or 25%, got {value!r}")
    if match.group(3) is not None:
        if total is None:
            raise ValueError(f"a share of the machine's memory ({value!r}) needs its total")
        return int(float(match.group(3)) / 100 * total)
    unit = (match.group(2) or "").lower()
    scale = _MEMORY_UNITS[unit[:1]] if "i" not in unit else 1024 ** ("kmgt".index(unit[0]) + 1)
    return int(float(match.group(1)) * scale)
