"""Where a template kept warm between builds lives, who may use it, and what it must match to be reused.

A kept template is found through a folder named after the user and the cache folder
(``$TMPDIR/modelvis-warm-<uid>-<digest of the cache folder's real path>``): the next build of the same site
finds it there. The folder is checked on every use: a directory, owned by this user, closed to group and
others; one open to others is replaced (someone may have put a socket in it), one owned by someone else
is refused. The template's fingerprint (the Python, the installed distributions and their versions, this
package, ``pre_code``, the import path, the environment and working folder its workers inherit) is kept
next to its socket; a build whose fingerprint differs ends that template and starts another, so a kept
template never holds code older than what is installed, nor an environment other than the build's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .._version import __version__

__all__ = ["UnsafeFolder", "changed_parts", "fingerprint", "package_state", "private_folder", "warm_folder"]

#: A Unix socket's path holds at most 107 bytes (108 with its terminating NUL) on Linux.
SOCKET_PATH_LIMIT = 107
#: The longest name of a socket the folder holds: a checkpoint's (see :mod:`.checkpoints`), longer than its own.
LONGEST_NAME = "checkpoints/" + "0" * 24 + ".sock"
_PACKAGE = Path(__file__).resolve().parents[1]
#: Variables that differ from one shell command to the next without changing what a snippet sees that matters.
_VOLATILE = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES", "PYTEST_CURRENT_TEST"})


class UnsafeFolder(OSError):
    """The kept template's folder exists but is not private to this user: it is not used."""


def warm_folder(cache_dir: str | os.PathLike[str]) -> Path:
    """The folder of the template kept warm for the site whose figure cache is ``cache_dir``."""
    digest = hashlib.sha256(os.path.realpath(cache_dir).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    name = f"modelvis-warm-{os.getuid()}-{digest}"
    folder = Path(tempfile.gettempdir(), name)
    if len(os.fsencode(folder / LONGEST_NAME)) > SOCKET_PATH_LIMIT:
        folder = Path("/tmp", name)  # a long $TMPDIR (macOS has them) would make the socket's path too long
    return folder


def private_folder(folder: Path) -> Path:
    """Make ``folder`` (mode 0700) or check the one there: a directory of this user's, closed to others.

    One of this user's that group or others may enter, or that is no directory, is removed and made again
    (what it holds may not be ours); one owned by another user raises :class:`UnsafeFolder`.
    """
    for _attempt in range(3):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(folder)
        if info.st_uid != os.getuid():
            raise UnsafeFolder(f"{folder} belongs to user {info.st_uid}, not to this user: a kept template is not used")
        if stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o077:
            return folder
        # Ours, but a symbolic link, a file, or open to others: nothing in it can be trusted.
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(folder, ignore_errors=True)
        else:
            os.unlink(folder)
    raise UnsafeFolder(f"{folder} could not be made private to this user: a kept template is not used")


def _distributions() -> tuple[dict[str, str], dict[str, str]]:
    """The distributions on the import path: their versions, from their metadata folders' names alone
    (``torch-2.13.0.dist-info``), and when each was installed (its metadata folder's inode and time: a
    reinstall at the same version, ``pip install .`` of the library being documented, makes a new one).
    A directory listing per path entry, no metadata file read."""
    versions: dict[str, str] = {}
    installs: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = list(os.scandir(entry or "."))
        except OSError:
            continue
        for item in listing:
            if item.name.endswith((".dist-info", ".egg-info")):
                project, _, version = item.name.rsplit(".", 1)[0].partition("-")
                name = project.lower().replace("-", "_")
                if name in versions:
                    continue  # shadowed by the one earlier on the path
                versions[name] = version.split("-")[0]
                try:
                    info = item.stat()
                except OSError:
                    continue
                installs[name] = f"{info.st_ino}-{info.st_mtime_ns}"
    return versions, installs


def package_state() -> str:
    """This package's version and its code and static files' sizes and times: an edited sphinx-modelvis (an
    editable install being worked on) is a new template too, since the template has imported the worker's code;
    the same state names the figures' drawn markup and the page's files (the script and stylesheets)."""
    sha = hashlib.sha256(__version__.encode())
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".js", ".css"):
            continue
        try:
            info = path.stat()
        except OSError:
            continue
        sha.update(f"{path.relative_to(_PACKAGE)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return f"{__version__} ({sha.hexdigest()[:12]})"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def fingerprint(python: str, pre_code: str) -> dict[str, object]:
    """What a kept template must have been started with to be reused by this build.

    Its workers inherit its environment and working folder, so those count too (each variable by a digest
    of its value: the file holds no secret).
    """
    versions, installs = _distributions()
    return {
        "python": f"{os.path.realpath(python)} {sys.version.split()[0]}",
        "sphinx-modelvis": package_state(),
        "pre_code": _digest(pre_code),
        "import path": [entry for entry in sys.path if entry],
        "working folder": os.getcwd(),
        "distributions": versions,
        "installed": installs,
        "environment": {name: _digest(value) for name, value in os.environ.items() if name not in _VOLATILE},
    }


def changed_parts(old: Mapping[str, object] | None, new: Mapping[str, object]) -> str:
    """Why a template started with ``old`` cannot serve ``new``, in words (empty: it can)."""
    if old is None:
        return "its fingerprint is unreadable"
    parts = []
    for part, value in new.items():
        before = old.get(part)
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            names = sorted(name for name in before.keys() | value.keys() if before.get(name) != value.get(name))
            if part == "distributions":
                moved = [f"{name} {before.get(name, 'none')} -> {value.get(name, 'none')}" for name in names]
            elif part == "installed":
                # Only those at the same version: the versions said the others changed.
                was, now = old.get("distributions"), new.get("distributions")
                if not (isinstance(was, dict) and isinstance(now, dict)):
                    continue
                same = [name for name in names if was.get(name) == now.get(name)]
                if not same:
                    continue
                moved = [f"{name} installed again" for name in same]
            else:
                moved = [f"{part}: {name}" for name in names]  # the names only: values may be secrets
            parts.append(", ".join(moved[:3]) + (f" and {len(moved) - 3} more" if len(moved) > 3 else ""))
        else:
            parts.append(f"{part} changed")
    if not parts and dict(old) != dict(new):
        parts.append("its fingerprint changed")  # never reused on a difference, said in words or not
    return "; ".join(parts)


def read_fingerprint(path: Path) -> dict[str, object] | None:
    """The fingerprint kept in ``path``, or ``None``."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
