"""What a page's snippets depended on, recorded in the worker: modules they had, files they read.

After each snippet the worker reports the page namespace's dependencies so far (a figure depends on what its
page's earlier snippets depended on too):

- every module in ``sys.modules`` outside the standard library and this package, whoever imported it (the
  snippet, another module, the template before the fork). A module of an installed distribution (found by
  the ``.dist-info`` next to it on its ``sys.path`` entry, wherever that is) counts as *(distribution,
  version)*; any other module (a file next to the page, a package ``conf.py`` put on ``sys.path``, an editable
  install's source tree, even with the ``.egg-info`` setuptools leaves there) as *(path, size, mtime, digest)*;
- every file opened for reading while the snippets ran (an audit hook on ``open``), outside the standard
  library and installed distributions, as a file too.

Over-approximating is fine (a figure that runs again too often is still right); missing one is not. The host
keeps these in the cache entry (see :mod:`~sphinx_modelvis.execution.manifest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from functools import lru_cache
from importlib import metadata
from typing import Any

__all__ = ["DependencyTracker", "FileState", "file_state", "warm_distributions", "warm_modules"]

#: A file as recorded: ``[size, mtime_ns, sha256]``.
FileState = list[Any]
#: This package: its own version is in every key, and the worker's own modules are no snippet's dependency.
_OWN = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")
_SYSTEM = tuple(os.path.join(folder, "") for folder in ("/dev", "/proc", "/sys"))


#: Files larger than this are not digested (model weights, datasets): a change of their size or mtime is a change.
DIGEST_LIMIT = 64 << 20


def file_state(path: str) -> FileState:
    """``[size, mtime_ns, sha256]`` of the file at ``path`` (``""`` for the digest of a file over
    :data:`DIGEST_LIMIT`); ``OSError`` if it cannot be read."""
    info = os.stat(path)
    if info.st_size > DIGEST_LIMIT:
        return [info.st_size, info.st_mtime_ns, ""]
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return [info.st_size, info.st_mtime_ns, digest.hexdigest()]


@lru_cache(maxsize=1)
def _standard_library() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The standard library's folders, and the site-packages folders (which may lie inside them)."""
    paths = sysconfig.get_paths()
    stdlib = {os.path.realpath(paths[name]) for name in ("stdlib", "platstdlib") if paths.get(name)}
    sites = {os.path.realpath(paths[name]) for name in ("purelib", "platlib") if paths.get(name)}
    with contextlib.suppress(AttributeError):
        import site

        sites.update(os.path.realpath(folder) for folder in site.getsitepackages())
    return tuple(os.path.join(folder, "") for folder in stdlib), tuple(os.path.join(folder, "") for folder in sites)


def _installed(real: str) -> bool:
    """Whether ``real`` lies in a site-packages folder or a distribution's metadata (versioned, not digested)."""
    if real.startswith(_standard_library()[1]):
        return True
    return os.path.basename(os.path.dirname(real)).endswith((".dist-info", ".egg-info"))


def _in_standard_library(real: str) -> bool:
    stdlib, sites = _standard_library()
    if not real.startswith(stdlib) or real.startswith(sites):
        return False
    # Third-party folders inside the standard library's (Debian's dist-packages, a venv made inside it).
    return "site-packages" not in real and "dist-packages" not in real


def installed_as(distribution: metadata.Distribution) -> str:
    """What an installed distribution counts as: its version, and, when its ``RECORD`` lists its files' hashes (as
    pip writes it), a digest of that list (``1.0 (files 3f2a9c1b0d4e)``). A reinstall of the same version with
    other files (``pip install .`` of the library a site documents, its version string not bumped) is a change."""
    version = distribution.version
    try:
        record = distribution.read_text("RECORD")
    except Exception:  # unreadable metadata: the version alone
        record = None
    if not record or "sha256=" not in record:
        return version
    return f"{version} (files {hashlib.sha256(record.encode()).hexdigest()[:12]})"


def _site_folder(folder: str) -> bool:
    """Whether ``folder`` (a real path) is where an installer puts distributions (a site-packages folder)."""
    return os.path.join(folder, "") in _standard_library()[1] or os.path.basename(folder) in (
        "site-packages",
        "dist-packages",
    )


#: Per ``sys.path`` folder (real path): the top-level names its distributions install, and their (name,
#: :func:`installed_as`).
_DISTRIBUTIONS: dict[str, dict[str, list[tuple[str, str]]]] = {}


def _distributions_in(folder: str) -> dict[str, list[tuple[str, str]]]:
    """The distributions whose ``.dist-info`` (or ``.egg-info``) lies in ``folder``, by top-level name."""
    known = _DISTRIBUTIONS.get(folder)
    if known is not None:
        return known
    names: dict[str, list[tuple[str, str]]] = {}
    try:
        found = list(metadata.distributions(path=[folder]))
    except Exception:  # an unreadable folder has no distributions we can tell
        found = []
    # An .egg-info outside site-packages is what `setup.py egg_info` (run by `pip install -e .`, `python -m build`)
    # left in a source tree: its modules are the sources themselves, counted by their contents, not its version.
    source_tree = not _site_folder(folder)
    for distribution in found:
        if source_tree and str(getattr(distribution, "_path", "")).endswith(".egg-info"):
            continue
        try:
            name, version = distribution.metadata["Name"], installed_as(distribution)
            tops = (distribution.read_text("top_level.txt") or "").split()
            if not tops:
                # The first part of each installed path, read from RECORD's text (``distribution.files`` makes an
                # object per line: five times slower over a site-packages folder).
                for line in (distribution.read_text("RECORD") or "").splitlines():
                    top = line.split(",", 1)[0].strip('"').split("/", 1)[0]
                    if top.endswith((".dist-info", ".egg-info", ".data", ".pth")) or top in ("", "..", "__pycache__"):
                        continue
                    tops.append(top.split(".")[0] if top.endswith((".py", ".so", ".pyd")) else top)
        except Exception:  # broken metadata: its modules count as plain files
            continue
        if not name:
            continue
        for top in set(tops):
            names.setdefault(top, []).append((name, version))
    _DISTRIBUTIONS[folder] = names
    return names


def warm_distributions(path: list[str]) -> None:
    """Read the distributions of every ``path`` folder now (the template, before it forks: once per build)."""
    for entry in path:
        with contextlib.suppress(OSError):
            _distributions_in(os.path.realpath(entry or "."))


def _owners(real: str, roots: list[str]) -> list[tuple[str, str]] | None:
    """The distributions that installed the file ``real``, if one of ``roots`` (``sys.path``) holds it as theirs."""
    for root in roots:
        if real.startswith(root):
            parts = real[len(root) :].split(os.sep)
            top = parts[0].split(".")[0] if len(parts) == 1 else parts[0]
            owners = _distributions_in(root.rstrip(os.sep) or os.sep).get(top)
            if owners:
                return owners
    return None


#: What each loaded module counts as, by (name, file): kept by the template, so forked workers only look at
#: the modules they import themselves.
_CLASSIFIED: dict[tuple[str, str], tuple[str, Any]] = {}


def _import_roots() -> list[str]:
    """The ``sys.path`` folders (real paths, ending in a separator), the longest first."""
    entries = {os.path.join(os.path.realpath(entry or "."), "") for entry in sys.path if isinstance(entry, str)}
    return sorted(entries, key=len, reverse=True)


def _classify(name: str, module: Any, roots: list[str]) -> tuple[str, Any]:
    """What a module counts as: ``("file", path)``, ``("distributions", {name: version})`` or ``("", None)``."""
    try:
        file = getattr(module, "__file__", None)
    except Exception:  # a lazy module that raises on attribute access
        return "", None
    if not isinstance(file, str):  # built in, frozen, or a namespace package (its modules have files)
        return "", None
    known = _CLASSIFIED.get((name, file))
    if known is not None:
        return known
    real = os.path.realpath(file)
    answer: tuple[str, Any]
    if real.startswith(_OWN) or _in_standard_library(real):
        answer = ("", None)
    else:
        owners = _owners(real, roots)
        answer = ("distributions", dict(owners)) if owners else ("file", os.path.abspath(file))
    _CLASSIFIED[(name, file)] = answer
    return answer


def warm_modules() -> None:
    """Classify every loaded module now (the template, after its imports: its workers inherit the answers)."""
    roots = _import_roots()
    for name, module in list(sys.modules.items()):
        _classify(name, module, roots)


class DependencyTracker:
    """Records what the snippets of the current namespace depended on; one per worker process.

    :meth:`start` begins a namespace; while :attr:`recording`, an audit hook notes the files opened for
    reading; :meth:`dependencies` lists all of it (the worker's own reads are made with :meth:`paused`).
    """

    def __init__(self) -> None:
        self.recording = False
        self.opened: set[str] = set()
        self.written: set[str] = set()
        self._states: dict[tuple[str, int, int], FileState] = {}
        self._hooked = False

    def start(self) -> None:
        """A new namespace: forget the files read in the last one (modules are looked at afresh each time)."""
        self.opened = set()
        self.written = set()
        if not self._hooked:
            sys.addaudithook(self._audit)  # for good: an audit hook cannot be removed
            self._hooked = True

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Record the files opened while a snippet runs."""
        self.recording = True
        try:
            yield
        finally:
            self.recording = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The worker's own reads (digests, metadata), not the snippet's."""
        recording, self.recording = self.recording, False
        try:
            yield
        finally:
            self.recording = recording

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not self.recording:
            return
        path, mode, flags = (*args, None, None, None)[:3]
        if isinstance(path, int) or path is None:
            return
        if mode is None:  # os.open
            writes = isinstance(flags, int) and flags & os.O_ACCMODE != os.O_RDONLY
        else:
            writes = any(letter in mode for letter in "wax+")
        try:
            absolute = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        # A file the snippets write is their output, not an input: what they read back from it is theirs.
        (self.written if writes else self.opened).add(absolute)

    def dependencies(self) -> tuple[dict[str, FileState], dict[str, str]]:
        """``(files, distributions)``: local files by absolute path with their state, distributions' versions."""
        with self.paused():
            roots = _import_roots()
            files: dict[str, FileState] = {}
            distributions: dict[str, str] = {}
            for name, module in list(sys.modules.items()):
                kind, value = _classify(name, module, roots)
                if kind == "file":
                    self._add_file(files, value)
                elif kind == "distributions":
                    distributions.update(value)
            for path in self.opened - self.written:
                real = os.path.realpath(path)
                if real.startswith(_SYSTEM) or real.startswith(_OWN) or _bytecode(real):
                    continue
                if _in_standard_library(real) or _installed(real) or _owners(real, roots) or not os.path.isfile(real):
                    continue
                self._add_file(files, path)
        return files, distributions

    def _add_file(self, files: dict[str, FileState], path: str) -> None:
        """Add ``path`` with its state (digests kept while size and mtime stay); an unreadable file is left out."""
        if path in files:
            return
        try:
            info = os.stat(path)
        except OSError:
            return
        known = self._states.get((path, info.st_size, info.st_mtime_ns))
        if known is None:
            try:
                known = file_state(path)
            except OSError:  # gone or unreadable now: nothing the figure can be checked against
                return
            self._states[(path, info.st_size, info.st_mtime_ns)] = known
        files[path] = known


def _bytecode(path: str) -> bool:
    """Whether ``path`` is a module's bytecode (in ``__pycache__``, or under ``PYTHONPYCACHEPREFIX``): the module
    counts by its source, and a fresh checkout has no bytecode until its first import."""
    prefix = sys.pycache_prefix
    return (
        os.sep + "__pycache__" + os.sep in path
        or path.endswith((".pyc", ".pyo"))
        or (prefix is not None and path.startswith(os.path.realpath(prefix) + os.sep))
    )
