"""What ``mkdocs serve`` keeps between rebuilds: each page, reused while unchanged instead of running its figures
again, and the template process (how long it is kept)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KEEP_WARM_WHILE_SERVING", "PageResult", "file_states", "keep_warm_seconds", "page_digest", "unchanged"]

#: How long ``mkdocs serve`` keeps the template between rebuilds when ``keep_warm`` is unset, in seconds: it is
#: ended when the server stops, and this bounds a server left running with nobody editing.
KEEP_WARM_WHILE_SERVING = 900.0


def keep_warm_seconds(setting: float | None, *, serving: bool) -> float:
    """How long the template is kept between builds: the ``keep_warm`` option, else only while serving."""
    if setting is not None:
        return float(setting)
    return KEEP_WARM_WHILE_SERVING if serving else 0.0


def page_digest(*parts: object) -> str:
    """A digest of everything a page's Markdown was made from (its text, the settings, the cache's start key)."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(repr(part).encode("utf-8", "surrogatepass"))
        sha.update(b"\0")
    return sha.hexdigest()


@dataclass(slots=True)
class PageResult:
    """A page's Markdown after its figures were put in, kept for ``mkdocs serve``'s next build."""

    key: str
    markdown: str
    figures: dict[str, str]
    anchors: dict[str, str]
    warnings: list[str]
    #: The local files its figures depended on, with their size and mtime then: one changed, the page runs again.
    dependencies: dict[str, tuple[int, int] | None]
    #: What no file's time shows (distributions' versions, declared variables and globs), as a manifest's parts:
    #: one changed, the page runs again.
    conditions: dict[str, dict[str, Any]]


def _state(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def file_states(paths: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    """Each file's size and mtime (``None``: gone), to tell later whether it changed."""
    return {path: _state(path) for path in paths}


def unchanged(states: Mapping[str, tuple[int, int] | None]) -> bool:
    """Whether every file is as :func:`file_states` found it."""
    return all(_state(path) == state for path, state in states.items())
