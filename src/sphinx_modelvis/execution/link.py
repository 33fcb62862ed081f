"""The host side of a template process: where a build (or the next build) finds it, starting it when needed.

See :mod:`~sphinx_modelvis.execution.template` for the process itself, and
:mod:`~sphinx_modelvis.execution.warm` for the folder and fingerprint of a template kept between builds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .warm import changed_parts, fingerprint, private_folder, read_fingerprint, warm_folder

__all__ = ["SOCKET_NAME", "TemplateLink", "forking_supported"]

SOCKET_NAME = "template.sock"
#: How long the first process waits for a template it started to listen.
LISTEN_TIMEOUT = 30.0
#: How long a build waits for a template it asked to end before it kills it, in seconds.
END_WAIT = 5.0


def forking_supported() -> bool:
    """Whether workers can be forked from a template here (POSIX with fd passing; not macOS, where forking
    a process that has loaded system frameworks is unsafe)."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "darwin"


class TemplateLink:
    """Where a build's template is found: a private folder made before the build forks, shared by its processes.

    Nothing runs until :meth:`connect` is first called; that starts the template if no process did yet
    (a lock file keeps two processes from starting two). :meth:`stop` (by the process that made the link)
    ends the template and removes the folder.

    With ``keep_warm`` seconds (more than 0) the link is :attr:`kept`: its folder is the one of the site's
    cache folder ``cache_dir`` (:func:`~sphinx_modelvis.execution.warm.warm_folder`), the template outlives
    the build and the next build reuses it, unless its fingerprint (the Python, the installed versions, this
    package, ``pre_code``, the environment) differs, when it is ended and another started. A kept template
    exits by itself after ``keep_warm`` seconds with no request and no live worker, when its folder goes, or
    when the process ``warm_owner`` (if not 0: the author's server) is gone. ``report`` receives a line
    saying whether this process started, reused or restarted it.
    """

    def __init__(
        self,
        *,
        python: str | None = None,
        keep_warm: float = 0.0,
        cache_dir: str | os.PathLike[str] | None = None,
        pre_code: str = "",
        report: Callable[[str], None] | None = None,
        warm_owner: int = 0,
    ) -> None:
        self.python = python or sys.executable
        self.keep_warm = keep_warm
        self.pre_code = pre_code
        self.report: Callable[[str], None] = report or (lambda line: None)
        if keep_warm > 0:
            self.folder = warm_folder(cache_dir if cache_dir is not None else os.getcwd())
            self.owner = warm_owner  # not the build: the server that runs the builds, if any
        else:
            # Named now (the processes a build forks inherit the name), made when first needed: a build whose
            # figures all come from the cache leaves nothing behind. The random part keeps the name unguessable.
            self.folder = Path(tempfile.gettempdir(), f"modelvis-template-{uuid.uuid4().hex}")
            self.owner = os.getpid()
        self._maker = os.getpid()
        self._process: subprocess.Popen[bytes] | None = None
        #: The process that checked the kept template's fingerprint (each process of a build checks once).
        self._checked = 0

    @property
    def kept(self) -> bool:
        """Whether the template is kept warm between builds (and so outlives this one)."""
        return self.keep_warm > 0

    @property
    def socket_path(self) -> Path:
        return self.folder / SOCKET_NAME

    def connect(self) -> socket.socket:
        """A new connection to the template, started first if none is listening (or, kept, if it differs)."""
        if self.kept:
            private_folder(self.folder)  # every time: a folder someone else made or opened is never used
        if not self.kept or self._checked == os.getpid():
            sock = self._try_connect()
            if sock is not None:
                return sock
        with self._lock():
            sock = self._try_connect()
            if self.kept and self._checked != os.getpid():
                sock = self._check(sock)
            if sock is None:
                # Nobody listens (none started, or it died): its socket file, if any, is stale.
                with contextlib.suppress(FileNotFoundError):
                    self.socket_path.unlink()
                sock = self._wait_for_listener(self._start())
        return sock

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the folder's lock file (made again if an idle template removed the folder meanwhile)."""
        while True:
            if self.kept:
                private_folder(self.folder)
            else:
                self.folder.mkdir(mode=0o700, exist_ok=True)
            with open(self.folder / "lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    same = os.fstat(lock.fileno()).st_ino == os.stat(self.folder / "lock").st_ino
                except OSError:
                    same = False
                if same:
                    yield
                    return

    def _check(self, sock: socket.socket | None) -> socket.socket | None:
        """The first use of a kept template by this process: reuse it if its fingerprint is ours, else end it."""
        self._checked = os.getpid()
        mine = fingerprint(self.python, self.pre_code)
        saved = self.folder / "fingerprint.json"
        pid = self.pid()
        why = ""
        if sock is not None:
            why = changed_parts(read_fingerprint(saved), mine)
            if not why:
                self.report(f"modelvis: reused the warm template process (pid {pid}), kept {self.keep_warm:g} s idle")
                return sock
            sock.close()
            self._end(pid)
        elif pid is not None:
            why = "the template process had ended (crashed or killed)"
        saved.write_text(json.dumps(mine), encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # the ended (or crashed) template's
        sock = self._wait_for_listener(self._start())
        if why:
            self.report(f"modelvis: restarted the warm template process (pid {self.pid()}; was {pid}): {why}")
        else:
            self.report(f"modelvis: started a warm template process (pid {self.pid()}), kept {self.keep_warm:g} s idle")
        return sock

    def _try_connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket_path))
        except OSError:
            sock.close()
            return None
        return sock

    def _start(self) -> subprocess.Popen[bytes]:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "template.pid").unlink()
        from .processes import python_environment  # here: a build whose figures are all cached never starts one

        with open(self.folder / "template.log", "ab") as log:
            arguments = [str(self.folder), str(self.owner), f"{self.keep_warm:g}"]
            process = subprocess.Popen(
                [self.python, "-m", "sphinx_modelvis.execution.template", *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=python_environment(),
                # Its own session: a Ctrl-C or a killed worker's group leaves it alone; it ends with its owner.
                start_new_session=True,
            )
        if os.getpid() == self._maker and not self.kept:
            self._process = process  # else another process's child: it is reaped by whoever inherits it
        return process

    def _wait_for_listener(self, process: subprocess.Popen[bytes]) -> socket.socket:
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while time.monotonic() < deadline:
            sock = self._try_connect()
            if sock is not None:
                return sock
            if process.poll() is not None:
                log = (self.folder / "template.log").read_text(errors="replace").strip().splitlines()
                raise OSError(f"the template process exited with status {process.returncode}: {log[-1:] or ''}")
            time.sleep(0.01)
        raise OSError(errno.ETIMEDOUT, f"the template process did not listen within {LISTEN_TIMEOUT:g} s")

    def pid(self) -> int | None:
        """The template's process id, if it was started."""
        try:
            return int((self.folder / "template.pid").read_text())
        except (OSError, ValueError):
            return None

    def prepare(self, statements: Iterable[str], modules: Iterable[str]) -> None:
        """Have a running kept template import ``statements`` and ``modules`` (installed packages: what this
        build's workers imported) while it waits, so the next build's first worker need not wait for them."""
        if not self.kept or self._checked != os.getpid():
            return  # only a template this process checked (and so knows to be current) is asked
        sock = self._try_connect()
        if sock is None:
            return
        from .wire import ForkRequest, send

        with sock, contextlib.suppress(OSError):
            send(sock, ForkRequest(tuple(sys.path), tuple(statements), tuple(modules)))

    def stop(self) -> None:
        """At the end of a build: end the template (if this process made the link) and remove the folder;
        a kept template is left running for the next build."""
        if os.getpid() != self._maker or self.kept:
            return
        self.end()

    def end(self) -> None:
        """End the template now, kept or not, and remove its folder (``mkdocs serve`` ending, say)."""
        if self.kept:
            try:
                private_folder(self.folder)
            except OSError:
                return  # not ours: nothing in it is ours to signal
        self._end(self.pid())
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def _end(self, pid: int | None) -> None:
        """Ask template ``pid`` to end, and wait (a bounded time) until it has, killing it if it does not."""
        if pid is None or pid <= 0:
            return
        from .processes import alive

        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        for _poll in range(int(END_WAIT / 0.02)):
            if self._process is not None and self._process.pid == pid:
                self._process.poll()  # our child: reap it, else it stays a zombie and looks alive
            if not alive(pid):
                return
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
