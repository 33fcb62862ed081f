"""The host side of the worker process: started lazily, spoken to on private pipes, killed at a timeout, replaced."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from ..errors import ExecutionCrashed, ExecutionTimeout
from .template import TemplateLink, receive, send

__all__ = ["WorkerClient", "WorkerCrashed", "WorkerTimeout", "frames_in"]

#: How long a timed-out worker gets to write where it was before it is killed.
DUMP_GRACE = 0.5
#: How often a waiting request checks that the worker is still alive, in seconds.
POLL_INTERVAL = 0.2
#: How long a worker may take to be forked: the template may first import torch, transformers, ...
TEMPLATE_TIMEOUT = 300.0
_FRAME = re.compile(r'File "(?P<file>.+)", line (?P<line>\d+)')


class WorkerTimeout(ExecutionTimeout):
    """A request ran past its timeout; the worker was killed. ``output`` is what it wrote to stderr meanwhile."""

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class WorkerCrashed(ExecutionCrashed):
    """The worker died during a request. ``output`` is what it wrote to stderr meanwhile (a fault dump, say)."""

    def __init__(self, message: str, *, output: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.output = output
        self.returncode = returncode


def frames_in(output: str, filename: str) -> list[int]:
    """Line numbers of ``filename``'s frames in a faulthandler dump, innermost first."""
    return [int(match["line"]) for match in _FRAME.finditer(output) if match["file"] == filename]


def _death(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == getattr(signal, "SIGKILL", 9):
            return f"was killed by {name} (the system may have run out of memory)"
        if -returncode == getattr(signal, "SIGSEGV", 11):
            return f"crashed with {name} (segmentation fault)"
        return f"was killed by {name}"
    return f"exited with status {returncode} (os._exit, or an extension aborting the interpreter)"


class _Spawned:
    """A worker started as a new Python process (our child)."""

    forked = False

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        pass


class _Forked:
    """A worker forked by the template: not our child, so its exit status comes from the template, on its connection."""

    forked = True

    def __init__(self, pid: int, connection: socket.socket) -> None:
        self.pid = pid
        self.connection = connection
        self.returncode: int | None = None
        self._gone = False

    def poll(self) -> int | None:
        if self.returncode is None and not self._gone:
            self._read(0.0)
        if self.returncode is None and self._gone and not _alive(self.pid):
            self.returncode = -signal.SIGKILL  # the template went away without saying: unknown, dead
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if self._gone:
                time.sleep(0.02)
            else:
                self._read(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline and self.returncode is None:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def _read(self, timeout: float | None) -> None:
        ready, _, _ = select.select([self.connection], [], [], timeout)
        if not ready:
            return
        try:
            message, _fds = receive(self.connection)
        except (EOFError, OSError, ValueError):
            self._gone = True
            return
        if "exit" in message:
            self.returncode = int(message["exit"])

    def close(self) -> None:
        self.connection.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_Process = _Spawned | _Forked


class WorkerClient:
    """One worker process, started on first use and again after it died.

    With a ``template`` link, workers are forked from the build's template process (milliseconds, with the
    imports already done); without one, or if the template fails, each is started as a new Python process.
    The worker belongs to the process that started it: after a ``fork`` (Sphinx's parallel
    reading), the child starts its own instead of talking to its parent's.
    """

    def __init__(self, *, python: str | None = None, template: TemplateLink | None = None) -> None:
        self.python = python or sys.executable
        self.template = template
        self.starts = 0
        #: What the next forked worker should find imported: import statements, then module names (in order).
        self.preload_statements: dict[str, None] = {}
        self.preload_modules: dict[str, None] = {}
        #: Why the template is not used (it failed), or ``None``.
        self.template_failure: str | None = None
        #: How long the latest forked worker waited for the template (importing for it or for others), in seconds.
        self.waited = 0.0
        self._process: _Process | None = None
        self._owner = 0
        self._requests: Connection | None = None
        self._responses: Connection | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether this process has a live worker."""
        return self._process is not None and self._owner == os.getpid() and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The worker's process id, if this process has one running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def forks(self) -> bool:
        """Whether new workers are forked from the template (cheap), rather than started as new processes."""
        return self.template is not None and self.template_failure is None

    def ensure_started(self) -> bool:
        """Start a worker unless one is running; returns whether one was started."""
        if self._owner != os.getpid():
            self._forget()
        if self.running:
            return False
        self._discard()
        self._start()
        return True

    def _start(self) -> None:
        self.waited = 0.0
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        self._log = tempfile.TemporaryFile(prefix="modelvis-worker-")
        try:
            process: _Process | None = self._fork(request_read, response_write) if self.forks else None
            if process is None:
                process = self._spawn(request_read, response_write)
        except BaseException:
            os.close(request_write)
            os.close(response_read)
            raise
        finally:
            os.close(request_read)
            os.close(response_write)
        self._process = process
        self._owner = os.getpid()
        self._requests = Connection(request_write, readable=False)
        self._responses = Connection(response_read, writable=False)
        self.starts += 1
        self.request({"op": "setup", "sys_path": list(sys.path)}, timeout=120.0)

    def _spawn(self, request_read: int, response_write: int) -> _Spawned:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
        env.setdefault("PYTHONFAULTHANDLER", "1")
        assert self._log is not None
        return _Spawned(
            subprocess.Popen(
                [self.python, "-m", "sphinx_modelvis.execution.worker", str(request_read), str(response_write)],
                pass_fds=(request_read, response_write),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                env=env,
                start_new_session=True,  # so a timeout kills whatever the snippet started too
            )
        )

    def _fork(self, request_read: int, response_write: int) -> _Forked | None:
        """A worker forked by the template; ``None`` (and no template from now on) if the template fails."""
        assert self.template is not None and self._log is not None
        connection: socket.socket | None = None
        try:
            connection = self.template.connect()
            message = {
                "op": "fork",
                "sys_path": list(sys.path),
                "statements": list(self.preload_statements),
                "modules": list(self.preload_modules),
            }
            asked = time.perf_counter()
            send(connection, message, [request_read, response_write, self._log.fileno()])
            # The template imports what the message names before it forks: the first worker of a build waits
            # for torch and friends, as a worker started on its own would.
            ready, _, _ = select.select([connection], [], [], TEMPLATE_TIMEOUT)
            if not ready:
                raise OSError(f"it did not answer within {TEMPLATE_TIMEOUT:g} s")
            reply, _fds = receive(connection)
            if "pid" not in reply:
                raise OSError(str(reply.get("error", reply)))
            self.waited = max(0.0, time.perf_counter() - asked - float(reply.get("forking", 0.0)))
            return _Forked(int(reply["pid"]), connection)
        except (OSError, EOFError, ValueError) as exc:
            if connection is not None:
                connection.close()
            self.template_failure = f"{type(exc).__name__}: {exc}"
            return None

    def request(self, message: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Send one request and wait for its reply, at most ``timeout`` seconds.

        Raises :class:`WorkerTimeout` (the worker is killed) or :class:`WorkerCrashed` (it died);
        either way the next request starts a new worker.
        """
        if not self.running:
            self.ensure_started()
        assert self._requests is not None and self._responses is not None and self._log is not None
        mark = self._log.seek(0, os.SEEK_END)
        try:
            self._requests.send_bytes(json.dumps(message).encode("utf-8"))
            if not self._wait_for_reply(timeout):
                self._dump_stack()
                output = self._output_since(mark)
                self._kill()
                raise WorkerTimeout(f"it ran for more than {timeout:g} s and was stopped", output=output)
            return dict(json.loads(self._responses.recv_bytes()))
        except (EOFError, OSError):
            returncode = self._wait_for_exit()
            output = self._output_since(mark)
            self._kill()  # what the snippet started (a forked child, say) goes with the worker
            death = f"the worker process {_death(returncode)}"
            raise WorkerCrashed(death, output=output, returncode=returncode) from None

    def _wait_for_reply(self, timeout: float) -> bool:
        """Whether a reply came within ``timeout``; raises ``EOFError`` as soon as the worker is dead.

        The reply pipe alone would not tell: a child the snippet forked holds it open after the worker died.
        """
        assert self._responses is not None and self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self._responses.poll(max(0.0, min(remaining, POLL_INTERVAL))):
                return True
            if self._process.poll() is not None:
                if self._responses.poll(0):
                    return True
                raise EOFError("the worker process ended")
            if remaining <= POLL_INTERVAL:
                return False

    def _dump_stack(self) -> None:
        usr1 = getattr(signal, "SIGUSR1", None)
        if usr1 is None or self._process is None:
            return
        try:
            os.kill(self._process.pid, usr1)
        except OSError:
            return
        time.sleep(DUMP_GRACE)

    def _output_since(self, mark: int) -> str:
        if self._log is None:
            return ""
        self._log.seek(mark)
        data = self._log.read()
        return data[-20000:].decode("utf-8", "replace")

    def _wait_for_exit(self) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            return None

    def _kill(self) -> None:
        """Kill the worker and its whole session (whatever the snippet started), even when the worker is gone."""
        process = self._process
        if process is not None and self._owner == os.getpid():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (OSError, AttributeError):  # no such group left, or no process groups here
                if process.poll() is None:
                    with contextlib.suppress(OSError):
                        os.kill(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self._discard()

    def _discard(self) -> None:
        """Close this process's ends of the pipes (the worker, if alive, sees the end of its requests)."""
        for connection in (self._requests, self._responses):
            if connection is not None:
                connection.close()
        if self._log is not None:
            self._log.close()
        process = self._process
        # A forked worker is the template's child: it is reaped there, so a new worker need not wait for an
        # old one to free its memory. A worker started here is reaped here.
        if process is not None and self._owner == os.getpid() and not process.forked:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        if process is not None:
            process.close()
        self._requests = self._responses = None
        self._log = None
        self._process = None

    def _forget(self) -> None:
        """After a fork: drop the parent's worker without touching it (its pipes' copies here are closed)."""
        for connection in (self._requests, self._responses):
            if connection is not None:
                connection.close()
        if self._log is not None:
            self._log.close()
        if self._process is not None:
            self._process.close()
        self._requests = self._responses = None
        self._process = None
        self._log = None
        self._owner = os.getpid()
        self.starts = 0

    def close(self) -> None:
        """Ask the worker to exit and wait for it (killing it if it does not)."""
        if self._owner != os.getpid():
            self._forget()
            return
        if self._process is None:
            return
        if self._requests is not None and self._process.poll() is None:
            try:
                self._requests.send_bytes(b'{"op": "exit"}')
            except OSError:
                pass
        self._discard()
