"""A cache entry's dependency manifest: what its figure depended on, and whether all of it is still as it was.

A manifest is JSON kept in the entry::

    {"files": {"mylib.py": [size, mtime_ns, sha256], ...},   # relative to the site's folder when inside it
     "distributions": {"fakedist": "1.0", ...},
     "globs": {"data/*.json": ["data/a.json", ...]},          # declared with :depends: / depends
     "env": {"MODEL_SIZE": "small" or null}}                   # declared env:NAME

A hit needs every file with the same size and mtime (or, when those changed, the same digest: a fresh
checkout or a restored cache; a file over 64 MB has no digest, so any change of its size or mtime counts),
every distribution at the same version, every declared pattern matching the same files and every declared
variable with the same value. A file that vanished or cannot be read is a
change. Checking reads no module and imports nothing (no torch), only ``stat``, the changed files and the
distributions' metadata.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .dependencies import FileState, file_state, installed_as

__all__ = ["DependencyChecker", "declared_dependencies"]

_GLOB_CHARACTERS = ("*", "?", "[")


def declared_dependencies(values: Iterable[str], folder: str | os.PathLike[str] | None) -> list[str]:
    """``:depends:`` items made absolute: ``env:NAME`` as written, paths and globs relative to ``folder``."""
    declared = []
    for value in values:
        item = value.strip()
        if not item:
            continue
        if item.startswith("env:"):
            declared.append(item)
        else:
            declared.append(os.path.normpath(os.path.join(folder or ".", os.path.expanduser(item))))
    return declared


class DependencyChecker:
    """Makes and checks manifests for one build; ``root`` is the site's folder (``conf.py``'s, ``mkdocs.yml``'s).

    Paths inside ``root`` are kept relative to it, so a cache restored into another checkout still matches.
    What it learns (a file's state, a distribution's version) is kept for the build: figures sharing a
    dependency check it once.
    """

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(os.path.abspath(root or "."))
        self._stats: dict[str, tuple[int, int] | None] = {}
        self._digests: dict[tuple[str, int, int], str | None] = {}
        self._versions: dict[str, str | None] = {}
        self._paths: dict[str, str] = {}

    # -- paths ---------------------------------------------------------------------------------------

    def stored_path(self, path: str) -> str:
        """``path`` as a manifest keeps it: relative to the root (``/``-separated) when inside it."""
        absolute = Path(os.path.abspath(path))
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return str(absolute)

    def real_path(self, stored: str) -> str:
        """The absolute path of a manifest's ``stored`` path."""
        real = self._paths.get(stored)
        if real is None:
            real = self._paths[stored] = os.path.normpath(os.path.join(self.root, stored))
        return real

    def local_files(self, manifest: Mapping[str, Any]) -> list[str]:
        """The absolute paths of a manifest's files (what an incremental build should watch)."""
        return [self.real_path(stored) for stored in manifest.get("files", {})]

    # -- making a manifest -----------------------------------------------------------------------------

    def manifest(
        self, files: Mapping[str, FileState], distributions: Mapping[str, str], declared: Iterable[str]
    ) -> dict[str, Any]:
        """A manifest from what the worker recorded (absolute paths) and the figure's declared dependencies."""
        stored = {self.stored_path(path): list(state) for path, state in files.items()}
        globs: dict[str, list[str]] = {}
        env: dict[str, str | None] = {}
        for item in declared:
            if item.startswith("env:"):
                env[item[4:]] = os.environ.get(item[4:])
                continue
            matches = self._matches(item)
            globs[self.stored_path(item)] = [self.stored_path(match) for match in matches]
            for match in matches:
                try:
                    stored.setdefault(self.stored_path(match), file_state(match))
                except OSError:
                    continue
        manifest: dict[str, Any] = {"files": stored, "distributions": dict(distributions)}
        if globs:
            manifest["globs"] = globs
        if env:
            manifest["env"] = env
        return manifest

    @staticmethod
    def _matches(pattern: str) -> list[str]:
        if not any(character in pattern for character in _GLOB_CHARACTERS):
            return [pattern] if os.path.isfile(pattern) else []
        return sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))

    # -- checking one ----------------------------------------------------------------------------------

    def changed(self, manifest: Mapping[str, Any]) -> tuple[str | None, bool]:
        """Why the manifest no longer holds (``"mylib.py changed"``, ``"fakedist 1.0 -> 2.0"``), or ``None``;
        and whether a file's size or mtime moved with its content unchanged (the entry is worth rewriting)."""
        for name, version in manifest.get("distributions", {}).items():
            now = self._version(name)
            if now != version:
                return _upgraded(name, version, now), False
        for name, value in manifest.get("env", {}).items():
            if os.environ.get(name) != value:
                return f"env:{name} changed", False
        for pattern, matched in manifest.get("globs", {}).items():
            now_matched = [self.stored_path(match) for match in self._matches(self.real_path(pattern))]
            if now_matched != matched:
                return f"{pattern} matches other files", False
        moved = False
        for stored, (size, mtime, digest) in manifest.get("files", {}).items():
            path = self.real_path(stored)
            stat = self._stat(path)
            if stat is None:
                return f"{stored} is gone or unreadable", False
            if stat == (size, mtime):
                continue
            if not digest or self._digest(path, stat) != digest:  # no digest: a large file, kept by its stat
                return f"{stored} changed", False
            moved = True
        return None, moved

    def refreshed(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """``manifest`` with its files' sizes and mtimes as they are now (their contents were checked)."""
        files = {}
        for stored, (size, mtime, digest) in manifest.get("files", {}).items():
            stat = self._stat(self.real_path(stored))
            files[stored] = [*stat, digest] if stat is not None else [size, mtime, digest]
        return {**manifest, "files": files}

    def _stat(self, path: str) -> tuple[int, int] | None:
        if path not in self._stats:
            try:
                info = os.stat(path)
            except OSError:
                self._stats[path] = None
            else:
                self._stats[path] = (info.st_size, info.st_mtime_ns)
        return self._stats[path]

    def _digest(self, path: str, stat: tuple[int, int]) -> str | None:
        known = (path, *stat)
        if known not in self._digests:
            try:
                self._digests[known] = file_state(path)[2]
            except OSError:
                self._digests[known] = None
        return self._digests[known]

    def _version(self, name: str) -> str | None:
        if name not in self._versions:
            try:
                self._versions[name] = installed_as(metadata.distribution(name))
            except metadata.PackageNotFoundError:
                self._versions[name] = None
        return self._versions[name]

    def forget(self) -> None:
        """Drop what was learnt (``mkdocs serve``'s next build must look at the files again)."""
        self._stats.clear()
        self._versions.clear()


def _upgraded(name: str, was: str, now: str | None) -> str:
    """Why a distribution no longer holds: ``fakedist 1.0 -> 2.0``, or a reinstall of one version with other files.
    (``was`` and ``now`` are :func:`~sphinx_modelvis.execution.dependencies.installed_as` answers: the version
    first, then the files' digest.)"""
    before = was.split(" ")[0]
    after = now.split(" ")[0] if now is not None else "not installed"
    if after == before:
        return f"{name} {after} was reinstalled with other files"
    return f"{name} {before} -> {after}"
