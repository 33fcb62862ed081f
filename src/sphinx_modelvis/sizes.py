"""Byte counts as trees keep them: a memory view's totals, and the JSON of ``(dtype, bytes)`` pairs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["MemorySummary", "ints_from_json", "pairs_from_json", "pairs_to_json"]


def pairs_to_json(pairs: tuple[tuple[str, int], ...]) -> list[list[Any]]:
    """``(("bfloat16", 64), ("float32", 8))`` as JSON holds it: a list of two-item lists."""
    return [list(pair) for pair in pairs]


def pairs_from_json(items: list[list[Any]]) -> tuple[tuple[str, int], ...]:
    """Read what :func:`pairs_to_json` wrote."""
    return tuple((str(key), int(value)) for key, value in items)


def ints_from_json(items: list[int]) -> tuple[int, ...]:
    """A tuple of integers that JSON held as a list."""
    return tuple(int(value) for value in items)


@dataclass(frozen=True, slots=True)
class MemorySummary:
    """A memory view's totals (see :mod:`sphinx_modelvis.memory`), in bytes, each tensor once.

    ``by_dtype`` holds the parameters' and buffers' bytes by dtype, most first (``buffers`` of them are
    buffers'). Under ``training``, ``optimizer`` names the optimizer assumed (a key of
    :data:`sphinx_modelvis.memory.OPTIMIZERS`) and ``gradients``, ``states`` and ``master`` are what training
    adds. In a compared tree, ``before`` is the earlier tree's total (-1: not compared, or the earlier tree was
    not measured).
    """

    by_dtype: tuple[tuple[str, int], ...] = ()
    buffers: int = 0
    training: bool = False
    optimizer: str = ""
    gradients: int = 0
    states: int = 0
    master: int = 0
    before: int = -1

    @property
    def weights(self) -> int:
        """The bytes of the parameters and buffers."""
        return sum(size for _dtype, size in self.by_dtype)

    @property
    def total(self) -> int:
        """Everything counted: the weights, and under training the gradients, states and master weights."""
        return self.weights + self.gradients + self.states + self.master

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["by_dtype"] = pairs_to_json(self.by_dtype)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemorySummary:
        """Read what :meth:`to_json` wrote (fields it lacks keep their defaults)."""
        values = {item.name: data[item.name] for item in fields(cls) if item.name in data}
        if "by_dtype" in values:
            values["by_dtype"] = pairs_from_json(values["by_dtype"])
        return cls(**values)
