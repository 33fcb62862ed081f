"""A FLOP count as trees keep it: a forward pass's total and its operations' totals, and how figures write counts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["FlopSummary", "format_flops"]

#: The prefixes of large counts, each a thousand times the one before.
_PREFIXES = ("", "k", "M", "G", "T", "P", "E")


def format_flops(count: int) -> str:
    """A FLOP count as figures write it, to three significant digits: ``896 FLOPs``, ``24.6 MFLOPs``,
    ``1.57 GFLOPs``, ``453 TFLOPs``."""
    value = float(count)
    step = 0
    while abs(value) >= 999.5 and step < len(_PREFIXES) - 1:
        value /= 1000
        step += 1
    if step == 0:
        return f"{count} FLOPs"
    digits = 2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0
    return f"{value:.{digits}f} {_PREFIXES[step]}FLOPs"


@dataclass(frozen=True, slots=True)
class FlopSummary:
    """A forward view's FLOPs (see :mod:`sphinx_modelvis.flops`): ``total`` for the whole pass, as PyTorch's flop
    counter counts it, and ``by_operation`` the totals of each counted operation (``addmm``, ``bmm``), most first.
    In a compared tree, ``before`` is the earlier tree's total (-1: not compared, or the earlier tree not counted).
    """

    total: int = 0
    by_operation: tuple[tuple[str, int], ...] = ()
    before: int = -1

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["by_operation"] = [list(pair) for pair in self.by_operation]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlopSummary:
        """Read what :meth:`to_json` wrote (fields it lacks keep their defaults)."""
        values = {item.name: data[item.name] for item in fields(cls) if item.name in data}
        if "by_operation" in values:
            values["by_operation"] = tuple((str(name), int(count)) for name, count in values["by_operation"])
        return cls(**values)
