"""The figure cache's keys and files, without a worker: what the mutation run (``make mutation``) found untested."""

from __future__ import annotations

import stat
import sys
import tempfile
from pathlib import Path

import pytest

from sphinx_modelvis.capture import Capture, TextBlock
from sphinx_modelvis.execution.cache import FigureCache, chain_key, package_versions, page_key

CAPTURE = Capture([TextBlock("déjà vu ✓\n")])
KEY = "ab" * 32


def test_the_python_version_is_part_of_the_key() -> None:
    versions = package_versions()
    assert versions["python"] == "{}.{}".format(*sys.version_info[:2])
    assert page_key("", versions) != page_key("", {**versions, "python": "3.99"})


def test_a_key_does_not_depend_on_the_order_options_and_versions_are_listed_in() -> None:
    versions = package_versions()
    start = page_key("", versions)
    assert start == page_key("", dict(reversed(versions.items())))
    options = {"expr": "model", "max_depth": 2, "device": None}
    assert chain_key(start, "x", options) == chain_key(start, "x", dict(reversed(options.items())))


def test_a_cache_folder_whose_parents_do_not_exist_yet_is_made(tmp_path: Path) -> None:
    # The default folder sits in the build's output folder, which a first build has not made yet.
    cache = FigureCache(tmp_path / "_build" / ".modelvis-cache")
    cache.put(KEY, CAPTURE)
    assert cache.get(KEY) == CAPTURE


def test_entries_are_readable_by_everyone_like_any_build_output(tmp_path: Path) -> None:
    path = FigureCache(tmp_path).put(KEY, CAPTURE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_entries_are_written_beside_their_place_not_in_the_system_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renamed into place atomically: that needs the temporary file in the same folder (the same file system).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    cache = FigureCache(tmp_path / "cache")
    cache.put(KEY, CAPTURE)
    assert cache.get(KEY) == CAPTURE
    assert [path.name for path in (tmp_path / "cache").rglob("*") if path.is_file()] == [f"{KEY}.json"]


def test_a_failed_write_raises_its_os_error_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    # The runner catches OSError to warn and go on without the cache; any other exception would stop the build.
    cache = FigureCache(tmp_path)
    cache.path(KEY).mkdir(parents=True)  # a folder where the entry should go: the rename fails
    with pytest.raises(OSError):
        cache.put(KEY, CAPTURE)
    assert [path.name for path in (tmp_path / KEY[:2]).iterdir()] == [f"{KEY}.json"]
