"""What a build's figure runner keeps without running anything: its counts and each page's steps (plain data).

Kept apart from :mod:`~sphinx_modelvis.execution.steps`, which runs steps in a worker, so that a build whose
figures all come from the cache never imports the worker machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import FigureOptions
from .results import Snippet

__all__ = ["PageHistory", "RunnerStats", "Step"]


@dataclass(slots=True)
class RunnerStats:
    """Counts over a runner's life (in this process): worker starts, snippets run, replayed, cache hits, failures.

    ``start_seconds`` holds how long each worker start took (a fork from the template takes milliseconds,
    once the template has imported what the snippets import).
    """

    worker_starts: int = 0
    executed: int = 0
    replayed: int = 0
    cached: int = 0
    failed: int = 0
    start_seconds: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Step:
    """One figure of a page: its snippet and its options."""

    snippet: Snippet
    options: FigureOptions


@dataclass(slots=True)
class PageHistory:
    """One namespace of a page: its name for the worker client, its folder, and the steps it holds, in page order.

    Every step a figure of the page added is here (cached ones too: a later figure needs their effects), except
    one whose run timed out or crashed the worker. ``start`` is where the page's key chain starts (the
    cache's: site settings, versions, ``pre_code``, folder); continued over the steps, it names their checkpoints.
    """

    page: str
    cwd: str | None
    namespace: tuple[int, int]
    steps: list[Step] = field(default_factory=list)
    start: str = ""
