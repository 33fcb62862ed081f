"""The host side of the worker process: started lazily, spoken to on private pipes, killed at a timeout, replaced."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from ..errors import ExecutionCrashed, ExecutionTimeout

__all__ = ["WorkerClient", "WorkerCrashed", "WorkerTimeout", "frames_in"]

#: How long a timed-out worker gets to write where it was before it is killed.
DUMP_GRACE = 0.5
#: How often a waiting request checks that the worker is still alive, in seconds.
POLL_INTERVAL = 0.2
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


class WorkerClient:
    """One worker process, started on first use and again after it died.

    The worker belongs to the process that started it: after a ``fork`` (Sphinx's parallel
    reading), the child starts its own instead of talking to its parent's.
    """

    def __init__(self, *, python: str | None = None) -> None:
        self.python = python or sys.executable
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
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
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
        env.setdefault("PYTHONFAULTHANDLER", "1")
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        self._log = tempfile.TemporaryFile(prefix="modelvis-worker-")
        try:
            self._process = subprocess.Popen(
                [self.python, "-m", "sphinx_modelvis.execution.worker", str(request_read), str(response_write)],
                pass_fds=(request_read, response_write),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                env=env,
                start_new_session=True,  # so a timeout kills whatever the snippet started too
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._owner = os.getpid()
        self._requests = Connection(request_write, readable=False)
        self._responses = Connection(response_read, writable=False)
        self.starts += 1
        self.request({"op": "setup", "sys_path": list(sys.path)}, timeout=120.0)

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
            self._process.send_signal(usr1)
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
                    process.kill()
            process.wait()
        self._discard()

    def _discard(self) -> None:
        """Close this process's ends of the pipes (the worker, if alive, sees the end of its requests)."""
        for connection in (self._requests, self._responses):
            if connection is not None:
                connection.close()
        if self._log is not None:
            self._log.close()
        if self._process is not None and self._owner == os.getpid():
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
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
