"""The warm template process of a build: it imports what snippets import, once, and forks page workers from itself.

Starting a worker as a new Python process costs the imports of torch and transformers again (seconds); forking
it from a process that has them costs milliseconds. One template serves every process of a build: Sphinx reads
pages in forked processes (``-j``), and each asks the same template for its workers, through a Unix socket in
a folder the build made before forking (:class:`TemplateLink`). The first process that needs a worker starts
the template (``python -m sphinx_modelvis.execution.template FOLDER OWNER_PID [IDLE]``); it lives until the
build closes it, or its owner (the build's first process) is gone. A template kept warm between builds (an
author's ``sphinx-autobuild`` or ``mkdocs serve``) is owned by that server, if any (``OWNER_PID`` 0: none): it
ends with it, after ``IDLE`` seconds with no request and no live worker, when its folder goes, or when a
build with another fingerprint replaces it
(:class:`~sphinx_modelvis.execution.link.TemplateLink`). It only ever imports installed packages, so what it
holds does not go stale while the author edits the code next to the pages.

A worker is asked for on a connection of its own, with the worker's two pipes and its log file passed along
(``SCM_RIGHTS``). The template first imports what the request names (the import statements of the page's
snippets and ``pre_code`` that name installed packages, and the installed modules earlier workers imported),
then forks: the child becomes the worker (a session of its own, its output in the log, serving
:func:`~sphinx_modelvis.execution.worker.serve`), and the template answers with its pid, then, when it has
reaped it, with its exit status. The template itself never runs a snippet. (The messages are those of
:mod:`~sphinx_modelvis.execution.wire`; what may be imported ahead is decided by
:mod:`~sphinx_modelvis.execution.preload`.)
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import selectors
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .checkpoints import end_checkpoints
from .dependencies import warm_distributions, warm_modules
from .forked import ForkedWorkers, fork_request
from .link import SOCKET_NAME, TemplateLink, forking_supported
from .processes import alive
from .wire import ForkRequest

__all__ = ["TemplateLink", "forking_supported", "main"]

#: How often the template checks that its owner is alive, in seconds.
OWNER_POLL = 1.0
#: How long an ending template waits for its workers to exit before it kills them, in seconds.
WORKER_GRACE = 2.0


# -- the template process --------------------------------------------------------------------------


class _Template:
    """The template's state: its listening socket, the connection of each worker it forked, what it imported."""

    def __init__(self, folder: Path, owner: int, idle: float = 0.0) -> None:
        self.folder = folder
        #: The build that started it (0: none, a kept template), and how long it may idle (0: for ever).
        self.owner = owner
        self.idle = idle
        self.folder_id = _identity(folder)
        self.last_active = time.monotonic()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(folder / SOCKET_NAME))
        (folder / "template.pid").write_text(str(os.getpid()))  # before it listens: a build that connects reads it
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = socket.socketpair()
        for end in (self.wake_read, self.wake_write):
            end.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        #: Each worker's client, told when it ends.
        self.exits = ForkedWorkers(self.selector)
        #: Every worker not yet reaped.
        self.children: set[int] = set()
        self.done: set[str] = set()
        self.stopping = False
        self.removed = False

    def serve(self) -> None:
        _adopt_orphans()
        signal.set_wakeup_fd(self.wake_write.fileno())
        signal.signal(signal.SIGCHLD, lambda number, frame: None)  # wakes the selector through the fd above
        signal.signal(signal.SIGTERM, self._stop)
        while not self.stopping:
            for key, _events in self.selector.select(timeout=OWNER_POLL):
                if key.fileobj is self.listener:
                    connection, _address = self.listener.accept()
                    self.last_active = time.monotonic()
                    self._answer(connection)
                elif key.fileobj is self.wake_read:
                    with contextlib.suppress(OSError):
                        while self.wake_read.recv(4096):
                            pass
                else:  # a client closed the connection of a worker (it is done with it)
                    self.exits.forget(key.fileobj)  # type: ignore[arg-type]
            self._reap()
            if self.owner and not alive(self.owner):
                break
            if _identity(self.folder) != self.folder_id:  # its folder is gone (or another took its place)
                break
            if self.children:
                self.last_active = time.monotonic()
            elif self.idle and time.monotonic() - self.last_active >= self.idle and self.remove_folder():
                break
        self._end_workers()

    def remove_folder(self) -> bool:
        """A kept template that ends (idle for long enough, or asked to): remove its folder, unless a build is
        connecting now or replacing it (it holds the folder's lock); then say so (``False``)."""
        try:
            lock = open(self.folder / "lock", "a")
        except OSError:
            return True
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.last_active = time.monotonic()
                return False
            self.listener.close()  # from now on a build finds nobody listening, and starts a template anew
            shutil.rmtree(self.folder, ignore_errors=True)
            self.removed = True
        return True

    def _end_workers(self) -> None:
        """Reap the workers still running (their clients have told them to exit); kill those that do not.

        Their checkpoints are ended first (they would notice the template gone, within a second).
        """
        end_checkpoints(self.folder)
        deadline = time.monotonic() + WORKER_GRACE
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)
        for pid in list(self.children):  # left behind by a build that ended abruptly
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def _stop(self, number: int, frame: Any) -> None:
        self.stopping = True

    def _answer(self, connection: socket.socket) -> None:
        asked = fork_request(connection, bare=True)
        if asked is None:
            return
        request, fds = asked
        if not fds:
            # No worker to fork: a build that ends asks its kept template to import, while it waits for the
            # next build, what the build's workers imported (installed modules only, as ever).
            connection.close()
            self._prepare(request)
            return
        self._prepare(request)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = self.exits.fork(connection, fds, _serve, (self.listener, self.wake_read, self.wake_write))
        if pid is not None:
            self.children.add(pid)

    def _prepare(self, request: ForkRequest) -> None:
        """Take on the client's import path and import what the request names (once; failures are the worker's)."""
        missing = [entry for entry in request.sys_path if entry not in sys.path]
        sys.path[:0] = missing  # as the worker's own setup does: the build's path first
        # Which distribution owns which module, read once here rather than by every forked worker.
        warm_distributions(sys.path)
        for statement in request.statements:
            if statement not in self.done:
                self.done.add(statement)
                _quietly(exec, compile(statement, "<preload>", "exec"), {"__name__": "__modelvis_preload__"})
        for name in request.modules:
            if name not in sys.modules and name not in self.done:
                self.done.add(name)
                _quietly(importlib.import_module, name)
        # And what each module it has loaded counts as (its distribution), for the same reason.
        warm_modules()

    def _reap(self) -> None:
        self.children.difference_update(self.exits.reap())


def _serve(requests: int, responses: int) -> None:
    """In the forked worker: the page's requests, from its first snippet."""
    from .worker import serve

    serve(requests, responses)


def _adopt_orphans() -> None:
    """Become the parent of the processes the template's workers leave behind (Linux), so they are reaped here:
    a page worker's checkpoints outlive the worker that forked them."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _quietly(action: Any, *args: Any) -> None:
    try:
        action(*args)
    except BaseException as error:  # an import that fails here fails again, reported, in the worker
        if isinstance(error, KeyboardInterrupt):
            raise
        print(f"modelvis template: not preloaded: {type(error).__name__}: {error}", file=sys.stderr)


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder ``folder`` is (device and inode), or ``None`` when there is none."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def main(argv: list[str] | None = None) -> int:
    """``python -m sphinx_modelvis.execution.template FOLDER OWNER_PID [IDLE_SECONDS]``: serve until stopped,
    orphaned (``OWNER_PID`` 0: never), idle for ``IDLE_SECONDS`` (0: never) or its folder is gone."""
    args = sys.argv[1:] if argv is None else argv
    template = _Template(Path(args[0]), int(args[1]), float(args[2]) if len(args) > 2 else 0.0)
    from . import worker  # noqa: F401 - imported once here rather than by every forked worker

    try:
        template.serve()
    finally:
        # Its folder goes with it (the owner removes it too when it stops the template; an owner that ended
        # without doing so leaves it to the template). A kept template asked to end by a build that replaces
        # it leaves the folder to that build, which holds its lock; asked by anyone else, it removes it.
        if not template.idle:
            shutil.rmtree(template.folder, ignore_errors=True)
        elif not template.removed and _identity(template.folder) == template.folder_id:
            template.remove_folder()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # like a worker: no interpreter clean-up of torch and friends


if __name__ == "__main__":
    sys.exit(main())
