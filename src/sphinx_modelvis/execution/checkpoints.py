"""Checkpoints: a paused copy of a page's worker after each snippet, so that an edited figure resumes from the one
before it instead of replaying the page.

While the build's template is kept warm between builds (an author's ``mkdocs serve`` or ``sphinx-autobuild``), a
page worker asked to (a run request's ``checkpoint``) forks after the snippet: the child, the *checkpoint*, holds
the namespace as it was after that snippet and waits on a Unix socket in the template's private folder
(``checkpoints/NAME.sock``, its pid in ``NAME.pid``). When a later build must run snippet *k* of the page, the
host asks the newest checkpoint before *k* for a worker, as it asks the template (the worker's pipes and log
passed along, ``SCM_RIGHTS``); the checkpoint forks, and the child serves the host from that namespace: only
snippet *k* and what follows it run.

A checkpoint's ``NAME`` is a digest of what decides its state: the page's key chain up to its snippet (the chain
the figure cache uses: site settings, versions, ``pre_code``, folder, each snippet's code and options) and where
each of those snippets sits (tracebacks name it), so that an edit anywhere before it makes it unreachable. The
host keeps the dependency manifest of its snippets (``NAME.json``, see
:mod:`~sphinx_modelvis.execution.manifest`) and checks it before resuming: a stale checkpoint is ended.
Checkpoints end when the template is gone or their folder removed, and the template ends them when it stops;
the host ends the oldest when their memory (each one's private pages: forks share the rest) exceeds the bound
(see :mod:`~sphinx_modelvis.execution.checkpoint_memory`).

GNU OpenMP is not fork-safe: a process forked after torch ran a parallel operation hangs at its next one. A
worker resumed from a checkpoint therefore runs torch on one thread (:func:`hold_one_thread`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import traceback
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint_memory import private_memory, resident_memory
from .forked import ForkedWorkers, fork_request
from .processes import alive

__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "Checkpoints",
    "checkpoint_name",
    "end_checkpoints",
    "hold_one_thread",
    "take",
]

#: The checkpoints' folder, inside the template's private folder.
CHECKPOINTS = "checkpoints"
#: How often a checkpoint checks that its template and its socket are still there, in seconds.
POLL = 1.0
#: Hex digits of a checkpoint's name: short enough for a Unix socket's path (at most 107 bytes).
NAME_LENGTH = 24

#: ``resume(requests_fd, responses_fd)``: serve a host from the checkpoint's namespace (never returns).
Resume = Callable[[int, int], typing.NoReturn]


def checkpoint_name(key: str, places: Iterable[str]) -> str:
    """The name of the checkpoint after the snippets whose key chain ends in ``key``, at ``places`` (``page:line``)."""
    text = json.dumps([key, list(places)], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:NAME_LENGTH]


# -- in the worker: taking a checkpoint, keeping it, resuming from it -----------------------------------


def take(path: str, channels: tuple[int, int], resume: Resume) -> int:
    """Fork a checkpoint of this worker that listens on ``path``; its pid (also written next to the socket, where
    hosts read it). ``OSError`` if none can be made.

    ``channels`` are the worker's own request and response pipes (the checkpoint closes its copies).
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a checkpoint of the same name that was ended
        listener.bind(path)
        listener.listen(8)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except BaseException:
        listener.close()
        raise
    if pid == 0:
        try:
            _Keeper(listener, Path(path), channels, resume).serve()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(70)  # nothing here may go back to the worker's loop
    # Out of the worker's process group at once (the child does the same: whichever runs first), so that the
    # worker's end, which kills its group, cannot catch the checkpoint before it has left.
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    listener.close()
    _write(Path(path).with_suffix(".pid"), str(pid))
    return pid


class _Keeper:
    """The checkpoint process: waits for hosts that ask for a worker, forks one for each, reports its exit."""

    def __init__(self, listener: socket.socket, path: Path, channels: tuple[int, int], resume: Resume) -> None:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # not in the worker's group: the worker's end (which kills its group) leaves it alone
        # A collection would touch every object, and copy-on-write would make them this process's own.
        gc.disable()
        for fd in channels:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        self.listener = listener
        self.path = path
        self.inode = os.stat(path).st_ino
        self.resume = resume
        try:
            self.template = int((path.parent.parent / "template.pid").read_text())
        except (OSError, ValueError):
            self.template = os.getppid()
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = socket.socketpair()
        for end in (self.wake_read, self.wake_write):
            end.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        #: Each resumed worker's client, told when it ends.
        self.exits = ForkedWorkers(self.selector)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_write.fileno())
        signal.signal(signal.SIGCHLD, lambda number, frame: None)  # wakes the selector through the fd above
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        while self._reachable() and alive(self.template):
            for key, _events in self.selector.select(timeout=POLL):
                if key.fileobj is self.listener:
                    with contextlib.suppress(OSError):
                        connection, _address = self.listener.accept()
                        self._answer(connection)
                elif key.fileobj is self.wake_read:
                    with contextlib.suppress(OSError):
                        while self.wake_read.recv(4096):
                            pass
                else:  # its client is done with the worker
                    self.exits.forget(key.fileobj)  # type: ignore[arg-type]
            self.exits.reap()

    def _reachable(self) -> bool:
        """Whether hosts can still reach it: its socket is in place (not removed, nor taken by another)."""
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def _answer(self, connection: socket.socket) -> None:
        asked = fork_request(connection)
        if asked is None:
            return
        _request, fds = asked
        self.exits.fork(connection, fds, self._serve, (self.listener, self.wake_read, self.wake_write))

    def _serve(self, requests: int, responses: int) -> None:
        """In the forked worker: collection back on, one torch thread, then the page's requests from here on."""
        gc.enable()
        hold_one_thread()
        self.resume(requests, responses)


def hold_one_thread() -> None:
    """Run torch (if imported) on one thread from now on, whatever a snippet asks.

    GNU OpenMP keeps its thread pool across a fork without its threads: the child's next parallel operation waits
    for them for ever. With one thread, torch never enters the pool.
    """
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "set_num_threads"):
        return
    set_threads = torch.set_num_threads
    set_threads(1)

    def set_num_threads(count: int) -> None:
        """Held at 1 in a worker resumed from a checkpoint (GNU OpenMP hangs beyond one thread after a fork)."""
        set_threads(1)

    setattr(torch, "set_num_threads", set_num_threads)  # noqa: B010 - a module mypy cannot see into


# -- in the host: finding, checking, recording and ending checkpoints ---------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A live checkpoint as its record says: its name, pid, the ``page:line`` of its snippet and its manifest."""

    name: str
    pid: int
    place: str
    manifest: dict[str, Any]


class Checkpoints:
    """The checkpoints of one template, as a host sees them: ``folder`` is the template's, ``bound`` in bytes."""

    def __init__(self, folder: Path, bound: int) -> None:
        self.folder = folder / CHECKPOINTS
        self.bound = bound

    def socket_path(self, name: str) -> str:
        """Where the checkpoint ``name`` listens (made when it is asked for)."""
        self.folder.mkdir(mode=0o700, exist_ok=True)
        return str(self.folder / f"{name}.sock")

    def _pid(self, name: str) -> int | None:
        try:
            return int((self.folder / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def live(self, name: str) -> bool:
        """Whether a checkpoint ``name`` runs (its record may not be written yet)."""
        pid = self._pid(name)
        return pid is not None and alive(pid) and (self.folder / f"{name}.sock").exists()

    def record(self, name: str, place: str, manifest: Mapping[str, Any]) -> None:
        """Keep what the checkpoint ``name`` (after the snippet at ``place``, being taken) depends on."""
        _write(self.folder / f"{name}.json", json.dumps({"place": place, "manifest": dict(manifest)}))

    def find(self, name: str) -> Checkpoint | None:
        """The live checkpoint ``name`` with its record, or ``None`` (a dead one's files are removed)."""
        try:
            data = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
            place, manifest = str(data["place"]), dict(data["manifest"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        pid = self._pid(name)
        if pid is None or not self.live(name):
            if pid is not None:
                self.end(name)
            return None
        return Checkpoint(name, pid, place, manifest)

    def end(self, name: str) -> None:
        """End the checkpoint ``name`` (if it runs) and remove its files."""
        pid = self._pid(name)
        if pid is not None:
            _end(pid)
        for suffix in (".sock", ".json", ".pid"):
            with contextlib.suppress(OSError):
                (self.folder / f"{name}{suffix}").unlink()

    def usage(self, measure: Callable[[int], int | None] = private_memory) -> list[tuple[str, int]]:
        """Each live checkpoint's name and private memory in bytes (or what ``measure`` says), the oldest first."""
        found = []
        with contextlib.suppress(OSError), os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.endswith(".pid"):
                    with contextlib.suppress(OSError):
                        found.append((entry.stat().st_mtime_ns, entry.name[: -len(".pid")]))
        usage = []
        for _made, name in sorted(found):
            pid = self._pid(name)
            if pid is None or not alive(pid):
                self.end(name)  # gone: its files go too
                continue
            usage.append((name, measure(pid) or 0))  # no /proc here: the bound cannot be kept
        return usage

    def keep_bound(self) -> list[tuple[str, int]]:
        """End the oldest checkpoints while their memory exceeds the bound; the place and size of each ended one."""
        # Reading a process's private memory walks its page tables (milliseconds for a process holding a model);
        # its resident memory is one counter, and no less: while the resident total keeps the bound, so do they.
        if sum(size for _name, size in self.usage(resident_memory)) <= self.bound:
            return []
        usage = self.usage()
        total = sum(size for _name, size in usage)
        ended = []
        for name, size in usage:
            if total <= self.bound:
                break
            found = self.find(name)
            self.end(name)
            ended.append((found.place if found is not None else name, size))
            total -= size
        return ended


def end_checkpoints(folder: Path) -> None:
    """End every checkpoint of the template whose private folder is ``folder`` (the template, as it stops)."""
    with contextlib.suppress(OSError), os.scandir(folder / CHECKPOINTS) as entries:
        for entry in entries:
            if entry.name.endswith(".pid"):
                with contextlib.suppress(OSError, ValueError):
                    _end(int(Path(entry.path).read_text()))


def _end(pid: int) -> None:
    """Kill the checkpoint ``pid`` (it leads a process group of its own; its resumed workers lead theirs)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once (renamed into place: a reader never sees half of it)."""
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
