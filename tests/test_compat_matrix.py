"""noxfile.py tests the ranges pyproject.toml states: every session inside them, the oldest at their lower ends."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
UNDER_TEST = ["sphinx", "docutils", "myst-parser", "mkdocs", "rich", "pillow"]


def _noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stated_ranges() -> dict[str, Requirement]:
    """The package's requirements on the versions under test: its dependencies and the sphinx, myst, mkdocs extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    lines = [*project["dependencies"], *extras["sphinx"], *extras["myst"], *extras["mkdocs"]]
    ranges: dict[str, Requirement] = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in ranges:
            assert requirement.specifier == ranges[name].specifier, f"two ranges for {name}: {line}, {ranges[name]}"
        ranges[name] = requirement
    return ranges


def test_every_session_tests_versions_inside_the_stated_ranges_and_the_oldest_their_lower_ends() -> None:
    matrix = _noxfile().MATRIX
    ranges = _stated_ranges()
    assert set(UNDER_TEST) <= set(ranges)
    for session, versions in matrix.items():
        assert set(UNDER_TEST) <= set(versions), session
        for name in UNDER_TEST:
            assert ranges[name].specifier.contains(versions[name]), (session, name, versions[name], str(ranges[name]))
    for name in UNDER_TEST:
        (lower,) = [spec.version for spec in ranges[name].specifier if spec.operator == ">="]
        assert Version(matrix["oldest"][name]) == Version(lower), (name, matrix["oldest"][name], lower)
