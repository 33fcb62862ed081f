"""What an adapter preview found, counted: plain data a model tree carries (see :mod:`sphinx_modelvis.targets`)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import PlainJson

__all__ = ["TargetSummary"]


@dataclass(frozen=True, slots=True)
class TargetSummary(PlainJson):
    """What an adapter preview found (see :mod:`sphinx_modelvis.targets`).

    ``method`` names the config (``LoRA r=8``; empty for a plain list of names); ``adapted``, ``saved`` and
    ``excluded`` count the modules of each mark; ``added`` is how many parameters applying the config would
    add, ``counted`` whether that count is known (the config's family is one whose adapter shapes are
    computed); ``unmatched`` the entries of ``target_modules`` that matched no module; ``partial`` the entries
    that matched only part of a repeated stack, each with how many places it matched of how many alike
    and the indices it matched (``("query", 6, 12, "0-5")``); ``notes`` anything else the preview says.
    """

    method: str = ""
    adapted: int = 0
    saved: int = 0
    excluded: int = 0
    added: int = 0
    counted: bool = False
    unmatched: tuple[str, ...] = ()
    partial: tuple[tuple[str, int, int, str], ...] = ()
    notes: tuple[str, ...] = ()
