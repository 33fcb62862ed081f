"""The figure cache: one folder of captures named by a hash of everything that shaped them, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ..capture import Capture
from ..tree import TREE_FORMAT_VERSION

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_CACHE_DIRS",
    "FigureCache",
    "cache_folder",
    "chain_key",
    "package_versions",
    "page_key",
]

#: Bumped whenever an entry's layout or the meaning of a key changes.
CACHE_FORMAT = 1
#: The distributions whose versions change what a snippet shows.
VERSIONED = ("sphinx-modelvis", "torch", "transformers", "peft")


def package_versions() -> dict[str, str | None]:
    """Installed versions of sphinx-modelvis, torch, transformers and PEFT, read without importing them."""
    versions: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = "{}.{}".format(*sys.version_info[:2])
    return versions


#: Where each host keeps its cache when ``cache_dir`` is empty, relative to the folder of its configuration
#: file. Sphinx's is the ``_build`` folder of the source folder, whatever the output folder: the path a CI
#: job keeps between runs cannot depend on the build's command line (``make html``, ``sphinx-build docs public``,
#: ``-d``), and ``_build`` is the folder Sphinx projects already ignore (``exclude_patterns``, ``.gitignore``).
DEFAULT_CACHE_DIRS = {"sphinx": "_build/.modelvis-cache", "mkdocs": ".modelvis-cache"}


def cache_folder(cache_dir: str, *, config_dir: str | os.PathLike[str], host: str) -> Path:
    """The cache folder of a build: ``cache_dir`` (``~`` expanded), or the host's default, relative to
    ``config_dir``, the folder of ``conf.py`` or ``mkdocs.yml``."""
    folder = os.path.expanduser(cache_dir) if cache_dir else DEFAULT_CACHE_DIRS[host]
    return Path(config_dir, folder)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def page_key(pre_code: str, versions: Mapping[str, str | None]) -> str:
    """Where a page's key chain starts: the code run first in every namespace and the package versions."""
    return _digest({"format": CACHE_FORMAT, "tree": TREE_FORMAT_VERSION, "versions": dict(versions), "pre": pre_code})


def chain_key(previous: str, code: str, options: Mapping[str, Any]) -> str:
    """The key of a snippet: the key before it on its page, its code and the options that shape its output."""
    return _digest([previous, code, dict(options)])


class FigureCache:
    """Captures stored as ``<directory>/<key[:2]>/<key>.json``.

    A missing, truncated or otherwise unreadable entry reads as a miss, and the next
    :meth:`put` replaces it. Writes go to a temporary file renamed into place, so parallel
    builds sharing the folder never see half an entry.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Capture | None:
        """The capture stored under ``key``, or ``None``."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
            if data["format"] != CACHE_FORMAT or data["key"] != key:
                return None
            return Capture.from_json(data["capture"])
        except Exception:  # unreadable, truncated or foreign: a miss, rebuilt by the next put
            return None

    def put(self, key: str, capture: Capture) -> Path:
        """Store ``capture`` under ``key``, atomically; returns the file."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": CACHE_FORMAT, "key": key, "capture": capture.to_json()}, ensure_ascii=False)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.chmod(temporary, 0o644)  # mkstemp makes it private; entries are shared like any build output
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path
