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
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["well_formed"]


#: A compiled check: whether a value matches its hint; data class instances in it are added to the list to walk.
Check = Callable[[Any, list[Any]], bool]


_FIELDS: dict[type, tuple[tuple[str, Check], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, Check], ...]:
    """The fields of the data class ``cls`` that hold data, each with the check of its resolved type hint."""
    known = _FIELDS.get(cls)
    if known is None:
        hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # only data classes reach here
        known = _FIELDS[cls] = tuple((item.name, _check(hints[item.name])) for item in fields if item.compare)
    return known


def well_formed(value: Any) -> bool:
    """Whether ``value`` (a data class instance, as a capture is) and everything in it match their type hints."""
    pending: list[Any] = [value]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        for name, check in _fields(type(item)):
            if not check(getattr(item, name), pending):
                return False
    return True


@cache
def _check(hint: Any) -> Check:
    """The check of ``hint``, made once per hint (the walk calls it for every field of every node)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return lambda item, pending: True
    if origin is typing.Union or origin is types.UnionType:
        options = tuple(_check(option) for option in args)
        return lambda item, pending: any(option(item, pending) for option in options)
    if hint is None or hint is type(None):
        return lambda item, pending: item is None
    if hint is int:
        return lambda item, pending: type(item) is int or (isinstance(item, int) and not isinstance(item, bool))
    if hint is float:
        return lambda item, pending: isinstance(item, int | float) and not isinstance(item, bool)
    if origin is None and isinstance(hint, type) and dataclasses.is_dataclass(hint):

        def instance(item: Any, pending: list[Any]) -> bool:
            if not isinstance(item, hint):
                return False
            pending.append(item)
            return True

        return instance
    if origin is None:
        return lambda item, pending: isinstance(item, hint)
    if origin in (tuple, list) and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
        element = _check(args[0])
        return lambda item, pending: isinstance(item, origin) and all(element(part, pending) for part in item)
    if origin is tuple:
        parts = tuple(_check(arg) for arg in args)
        return lambda item, pending: (
            isinstance(item, tuple)
            and len(item) == len(parts)
            and all(check(part, pending) for check, part in zip(parts, item, strict=True))
        )
    if origin is dict:
        keys, values = _check(args[0]), _check(args[1])
        return lambda item, pending: (
            isinstance(item, dict) and all(keys(key, pending) and values(value, pending) for key, value in item.items())
        )
    return lambda item, pending: isinstance(item, origin)
