"""A figure as a page session sees it: its snippet going in, and what it came to (a capture, or a failure).

Hosts take from here what they show for a failure: its kind (the warning's subtype) and the title of
the error box put where the figure should have been.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capture import Capture

__all__ = ["FAILURE_KINDS", "FAILURE_TITLES", "FigureFailure", "FigureResult", "Snippet"]

#: What can go wrong with a figure; hosts use it as the warning's subtype.
FAILURE_KINDS = (
    "snippet",
    "forward",
    "not-a-module",
    "timeout",
    "crash",
    "not-cached",
    "pre-code",
    "internal",
    "options",
)
#: The title of the error box a host puts where a figure failed, by kind.
FAILURE_TITLES = {
    "snippet": "The snippet of this figure raised an exception",
    "forward": "The forward pass of this figure raised an exception",
    "not-a-module": "This figure has nothing to show",
    "timeout": "The snippet of this figure ran past its timeout",
    "crash": "The snippet of this figure crashed its worker process",
    "not-cached": "This figure is not in the cache",
    "pre-code": "The pre_code setting failed",
    "internal": "sphinx-modelvis failed on this figure",
    "options": "This figure's options are invalid",
}


@dataclass(frozen=True, slots=True)
class Snippet:
    """A figure's code; ``filename`` names its page in tracebacks and ``line`` is the code's first line there.

    ``expr_line`` is the line of the figure's argument (its opening line), when it is not ``line``.
    """

    code: str
    filename: str
    line: int
    expr_line: int | None = None

    @property
    def location(self) -> str:
        """``page:line``, as messages show it."""
        return f"{self.filename}:{self.line}"


@dataclass(frozen=True, slots=True)
class FigureFailure:
    """Why a figure has no output.

    ``kind`` is one of :data:`FAILURE_KINDS`; ``message`` says what happened and what to do (hosts
    put the page and ``line`` in front of it); ``traceback`` is the snippet's own traceback (or the
    worker's last words after a timeout or a crash); ``line`` is the docs line to report.
    An ``options`` failure is the figure's own markup at fault (an option's value, a ``:compare:`` name
    no earlier figure has): nothing ran for it.
    """

    kind: str
    message: str
    line: int
    traceback: str = ""
    seconds: float = 0.0

    @property
    def title(self) -> str:
        """The title of the error box shown instead of the figure."""
        return FAILURE_TITLES.get(self.kind, "This figure failed")

    def report(self) -> str:
        """The message followed by the traceback, as a warning or an error box shows it."""
        trace = self.traceback.rstrip()
        return f"{self.message}\n\n{trace}" if trace else self.message


@dataclass(frozen=True, slots=True)
class FigureResult:
    """What one figure came to: a capture to draw, or a failure; ``cached`` when no code ran for it.

    ``capture`` is what to draw: for ``:compare:``, already marked against the earlier figure.
    """

    capture: Capture | None = None
    failure: FigureFailure | None = None
    cached: bool = False
    seconds: float = 0.0
    key: str = ""
