"""Checking that a capture read back from the cache holds what its classes declare, before a figure uses it.

An entry that parses but is wrong (a string where a shape's list of sizes belongs, say: a hand-edited file, a
cache shared with another version) would otherwise fail far from the cache, in ``numel`` or the renderer.
The check follows the data classes' type hints, so a field added to the tree is checked with no change here,
and walks without recursion (trees may be thousands of levels deep) visiting each shared node once.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from functools import cache
from typing import Any

__all__ = ["well_formed"]


@cache
def _hints(cls: type) -> tuple[tuple[str, Any], ...]:
    """The fields of the data class ``cls`` that hold data, with their resolved type hints."""
    module = sys.modules[cls.__module__]
    hints = typing.get_type_hints(cls, vars(module))
    return tuple((item.name, hints[item.name]) for item in dataclasses.fields(cls) if item.compare)


def well_formed(value: Any) -> bool:
    """Whether ``value`` (a data class instance, as a capture is) and everything in it match their type hints."""
    pending: list[tuple[Any, Any]] = [(value, type(value))]
    seen: set[int] = set()
    while pending:
        item, hint = pending.pop()
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            if id(item) in seen:
                continue
            seen.add(id(item))
            pending.extend((getattr(item, name), field_hint) for name, field_hint in _hints(type(item)))
            continue
        inner = _matches(item, hint)
        if inner is None:
            return False
        pending.extend(inner)
    return True


def _matches(item: Any, hint: Any) -> list[tuple[Any, Any]] | None:
    """``None`` if ``item`` does not match ``hint``; else the parts of it still to check, with their hints."""
    if hint is Any:
        return []
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        for option in typing.get_args(hint):
            inner = _matches(item, option)
            if inner is not None:
                return inner
        return None
    if hint is None or hint is type(None):
        return [] if item is None else None
    if origin is None:
        if hint is float:
            return [] if isinstance(item, int | float) and not isinstance(item, bool) else None
        if hint is int:
            return [] if isinstance(item, int) and not isinstance(item, bool) else None
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return [(item, hint)] if isinstance(item, hint) else None
        return [] if isinstance(item, hint) else None
    args = typing.get_args(hint)
    if not isinstance(item, origin):
        return None
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return [(element, args[0]) for element in item]
    if origin is tuple:
        return [(element, arg) for element, arg in zip(item, args, strict=True)] if len(item) == len(args) else None
    if origin is list:
        return [(element, args[0]) for element in item]
    if origin is dict:
        return [part for key, element in item.items() for part in ((key, args[0]), (element, args[1]))]
    return []
