"""The figure cache: one folder of captures named by a hash of everything that shaped them, written atomically.

An entry keeps its capture and its dependency manifest (see :mod:`~sphinx_modelvis.execution.manifest`);
``figures/*.run`` keep, per figure of a page, what it last ran with, so a build can say why a figure ran again;
``markup/*.markup`` keep figures as drawn for a page (see :mod:`~sphinx_modelvis.execution.markup`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..capture import Capture
from ..tree import TREE_FORMAT_VERSION
from .validate import well_formed

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_CACHE_DIRS",
    "CacheEntry",
    "CacheUsage",
    "FigureCache",
    "cache_folder",
    "chain_key",
    "folder_key",
    "format_size",
    "package_versions",
    "page_key",
]

#: Bumped whenever an entry's layout or the meaning of a key changes.
CACHE_FORMAT = 2
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


def page_key(pre_code: str, versions: Mapping[str, str | None], depends: tuple[str, ...] = ()) -> str:
    """What every key of a site starts from: the code run first in every namespace, the package versions and
    the site's declared dependencies (``modelvis_depends``, as written)."""
    start = {"format": CACHE_FORMAT, "tree": TREE_FORMAT_VERSION, "versions": dict(versions), "pre": pre_code}
    if depends:
        start["depends"] = list(depends)
    return _digest(start)


def folder_key(start: str, folder: str | None) -> str:
    """Where a page's key chain starts: the site's start and the folder its snippets run in (the same code
    in two folders may import two different ``model_def.py``)."""
    return _digest([start, folder])


def chain_key(previous: str, code: str, options: Mapping[str, Any]) -> str:
    """The key of a snippet: the key before it on its page, its code and the options that shape its output."""
    return _digest([previous, code, dict(options)])


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """A number of cache entries and the bytes of the files counted with them."""

    entries: int
    size: int

    def __str__(self) -> str:
        return f"{self.entries} entr{'y' if self.entries == 1 else 'ies'}, {format_size(self.size)}"


def format_size(size: int) -> str:
    """Bytes as people read them: ``812 B``, ``3.4 kB``, ``12.0 MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A stored figure: its capture and the manifest of what it depended on."""

    capture: Capture
    depends: dict[str, Any]


class FigureCache:
    """Captures stored as ``<directory>/<key[:2]>/<key>.json``.

    A missing, truncated, otherwise unreadable or ill-formed entry reads as a miss, and the next
    :meth:`put` replaces it. Writes go to a temporary file renamed into place, so parallel
    builds sharing the folder never see half an entry.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Capture | None:
        """The capture stored under ``key``, or ``None`` (its dependencies not checked: see :meth:`entry`)."""
        entry = self.entry(key)
        return None if entry is None else entry.capture

    def entry(self, key: str) -> CacheEntry | None:
        """The capture stored under ``key`` and its dependency manifest, or ``None``."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
            if data["format"] != CACHE_FORMAT or data["key"] != key:
                return None
            capture = Capture.from_json(data["capture"])
            depends = data.get("depends") or {}
            # Valid JSON may still be wrong (a string where a shape belongs): checked here, not met in a figure.
            if not well_formed(capture) or not isinstance(depends, dict):
                return None
        except Exception:  # unreadable, truncated or foreign: a miss, rebuilt by the next put
            return None
        return CacheEntry(capture, dict(depends))

    def touch(self, key: str) -> None:
        """Record that a build used the entry of ``key`` (its file's time), so that :meth:`prune` keeps it.

        A cache that cannot be written (a read-only copy) keeps its old times: a later prune may drop the entry.
        """
        with contextlib.suppress(OSError):
            os.utime(self.path(key))

    def files(self) -> Iterator[os.DirEntry[str]]:
        """Every file the cache holds: entries, what figures last ran with, and temporary files left behind."""
        try:
            folders = [item for item in os.scandir(self.directory) if item.is_dir(follow_symlinks=False)]
        except OSError:  # no cache yet
            return
        for folder in folders:
            if not (len(folder.name) == 2 or folder.name in ("figures", "markup")):
                continue  # not ours
            with contextlib.suppress(OSError), os.scandir(folder.path) as items:
                yield from (item for item in items if item.is_file(follow_symlinks=False))

    def usage(self) -> CacheUsage:
        """How many entries the cache holds, and the bytes of all its files."""
        entries = size = 0
        for item in self.files():
            with contextlib.suppress(OSError):
                size += item.stat(follow_symlinks=False).st_size
                entries += item.name.endswith(".json") and not item.name.startswith(".tmp-")
        return CacheUsage(entries, size)

    def prune(self, max_age_days: float, *, now: float | None = None) -> CacheUsage:
        """Remove the files no build has used (written or read) for ``max_age_days`` days; what was removed.

        An entry used since is kept: every hit records its use (:meth:`touch`). A figure whose entry was removed
        runs again when a build next needs it, and is stored again.
        """
        cutoff = (time.time() if now is None else now) - max_age_days * 86400
        entries = size = 0
        for item in list(self.files()):
            try:
                stat = item.stat(follow_symlinks=False)
                if stat.st_mtime >= cutoff:
                    continue
                os.unlink(item.path)
            except OSError:  # gone meanwhile (another build pruned it), or not ours to remove
                continue
            size += stat.st_size
            entries += item.name.endswith(".json") and not item.name.startswith(".tmp-")
        with contextlib.suppress(OSError), os.scandir(self.directory) as folders:
            for folder in folders:
                if len(folder.name) == 2 and folder.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(folder.path)  # only when empty
        return CacheUsage(entries, size)

    def put(self, key: str, capture: Capture, depends: Mapping[str, Any] | None = None) -> Path:
        """Store ``capture`` under ``key`` with its dependency manifest, atomically; returns the file."""
        entry = {"format": CACHE_FORMAT, "key": key, "capture": capture.to_json(), "depends": dict(depends or {})}
        return self._write(self.path(key), entry)

    def last_run(self, figure: str) -> dict[str, Any]:
        """What the figure ``figure`` (a page and its figure's number there) last ran with (``{}``: never)."""
        try:
            data = json.loads(self._figure_path(figure).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except Exception:  # none yet, or unreadable: as if it never ran
            return {}

    def remember_run(self, figure: str, record: Mapping[str, Any]) -> None:
        """Keep what the figure ``figure`` ran with, for the next build's explanation."""
        self._write(self._figure_path(figure), dict(record))

    def markup(self, key: str) -> str | None:
        """The page markup stored under ``key`` (see :mod:`~sphinx_modelvis.execution.markup`), or ``None``; a
        hit records its use, like :meth:`touch`."""
        path = self._markup_path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["format"] != CACHE_FORMAT or data["key"] != key or not isinstance(data["markup"], str):
                return None
        except Exception:  # none yet, unreadable or foreign: drawn again, and stored again
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return str(data["markup"])

    def put_markup(self, key: str, markup: str) -> Path:
        """Store a figure's page markup under ``key``, atomically; returns the file."""
        return self._write(self._markup_path(key), {"format": CACHE_FORMAT, "key": key, "markup": markup})

    def _markup_path(self, key: str) -> Path:
        return self.directory / "markup" / f"{key}.markup"

    def _figure_path(self, figure: str) -> Path:
        name = hashlib.sha256(figure.encode("utf-8", "surrogatepass")).hexdigest()
        return self.directory / "figures" / f"{name}.run"

    @staticmethod
    def _write(path: Path, data: Mapping[str, Any]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, ensure_ascii=False)
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
