"""Shared fixtures: Sphinx test projects live under tests/roots/test-*/."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOTS = Path(__file__).resolve().parent / "roots"


@pytest.fixture(scope="session")
def rootdir() -> Path:
    """Where ``@pytest.mark.sphinx(testroot="name")`` finds ``test-name``."""
    return ROOTS
