"""How the model tree's data classes travel: each field's JSON form, and the field-by-field views (JSON,
equality) that :mod:`sphinx_modelvis.tree` derives from ``dataclasses.fields``, so that a new field goes
everywhere by default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

__all__ = [
    "LAYOUTS",
    "JsonField",
    "PlainJson",
    "field_values",
    "layout",
    "list_or_none",
    "plain_from_json",
    "plain_to_json",
    "read_fields",
    "tuple_or_none",
    "write_fields",
]


@dataclass(frozen=True, slots=True)
class JsonField:
    """How a field of the tree's data classes is written to JSON when not as it is (the field's
    ``metadata["json"]``). Fields are written in the order they are declared, and left out while they hold
    their default value, unless ``always``."""

    #: The JSON key, when not the field's name.
    key: str = ""
    write: Callable[[Any], Any] | None = None
    read: Callable[[Any], Any] | None = None
    always: bool = False


_AS_IS = JsonField()
#: Per field that JSON holds (each field that equality compares), in declaration order: its name, its JSON
#: key, its default (``MISSING``: none) and how it is written. Filled once per class, below each class
#: in :mod:`sphinx_modelvis.tree`.
LAYOUTS: dict[type, tuple[tuple[str, str, Any, JsonField], ...]] = {}


def layout(cls: type) -> tuple[tuple[str, str, Any, JsonField], ...]:
    """The entries of :data:`LAYOUTS` for the data class ``cls``, read from its fields."""
    entries = []
    for item in fields(cls):
        if not item.compare:  # facts worked out from the data (ModelTree.known) are not data
            continue
        how = item.metadata.get("json", _AS_IS)
        default = item.default_factory() if item.default_factory is not MISSING else item.default
        entries.append((item.name, how.key or item.name, default, how))
    return tuple(entries)


def write_fields(value: Any, skip: str = "") -> dict[str, Any]:
    """The JSON-ready dict of a data class's fields (but ``skip``), each left out while it holds its default."""
    data: dict[str, Any] = {}
    for name, key, default, how in LAYOUTS[type(value)]:
        if name == skip:
            continue
        item = getattr(value, name)
        if item == default and not how.always:
            continue
        data[key] = item if how.write is None else how.write(item)
    return data


def read_fields(cls: type, data: dict[str, Any], skip: str = "") -> dict[str, Any]:
    """The keyword arguments that make a ``cls`` of what :func:`write_fields` wrote (missing keys: the defaults)."""
    values: dict[str, Any] = {}
    for name, key, _default, how in LAYOUTS[cls]:
        if name != skip and key in data:
            item = data[key]
            values[name] = item if how.read is None else how.read(item)
    return values


def field_values(value: Any, skip: str) -> tuple[Any, ...]:
    """Every field of a data class that equality compares, but ``skip``, in declaration order."""
    return tuple([getattr(value, name) for name, _key, _default, _how in LAYOUTS[type(value)] if name != skip])


def list_or_none(shape: tuple[int, ...] | None) -> list[int] | None:
    """A shape as JSON holds it (``None``: not known yet)."""
    return None if shape is None else list(shape)


def tuple_or_none(shape: list[int] | None) -> tuple[int, ...] | None:
    """A shape read back from JSON."""
    return None if shape is None else tuple(shape)


def plain_to_json(value: Any) -> dict[str, Any]:
    """A summary's JSON-ready dict: every field of the data class ``value``, its tuples (of tuples) as lists."""
    data: dict[str, Any] = {}
    for item in fields(value):
        field_value = getattr(value, item.name)
        if isinstance(field_value, tuple):
            field_value = [list(entry) if isinstance(entry, tuple) else entry for entry in field_value]
        data[item.name] = field_value
    return data


def plain_from_json(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments that make a ``cls`` of what :func:`plain_to_json` wrote (missing: the defaults)."""
    values: dict[str, Any] = {}
    for item in fields(cls):
        if item.name in data:
            value = data[item.name]
            if isinstance(value, list):
                value = tuple(tuple(entry) if isinstance(entry, list) else entry for entry in value)
            values[item.name] = value
    return values


_Plain = TypeVar("_Plain", bound="PlainJson")


class PlainJson:
    """The JSON form of a summary: a frozen data class of plain values and tuples (of tuples) that a tree carries
    (what a placement view or an adapter preview found)."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (tuples as lists)."""
        return plain_to_json(self)

    @classmethod
    def from_json(cls: type[_Plain], data: dict[str, Any]) -> _Plain:
        """Read what :meth:`to_json` wrote (fields it lacks keep their defaults)."""
        return cls(**plain_from_json(cls, data))
