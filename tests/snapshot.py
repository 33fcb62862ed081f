"""Exact-text snapshots under tests/snapshots/; `make snapshots` (MODELVIS_UPDATE_SNAPSHOTS=1) rewrites them."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, actual: str) -> None:
    """Compare ``actual`` with the stored snapshot ``name``; rewrite it when MODELVIS_UPDATE_SNAPSHOTS is set."""
    path = SNAPSHOTS / name
    if os.environ.get("MODELVIS_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"no snapshot {path}; create it with `make snapshots`"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "\n".join(
            difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm="")
        )
        raise AssertionError(f"snapshot {name} differs (update with `make snapshots` if intended):\n{diff}")
