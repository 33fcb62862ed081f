"""The processes a build starts (template, workers): how they are launched, how to tell one still runs, how it ended."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

from .wire import WorkerExited, receive

__all__ = [
    "ForkedWorker",
    "SpawnedWorker",
    "WorkerProcess",
    "alive",
    "describe_exit",
    "python_environment",
    "thread_share",
]

#: The folder that holds the ``sphinx_modelvis`` package, put on a new process's import path.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def python_environment() -> dict[str, str]:
    """The environment of a Python process the build starts: this one's, able to import this very package,
    with faulthandler on (a crash writes where it was to the log the host reads)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH", "")]))
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


#: The environment variables that set torch's (OpenMP's, MKL's) thread count when torch is imported.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def thread_share(jobs: int) -> int | None:
    """How many threads each of ``jobs`` workers running at once should give torch: its share of the cores this
    process may use (at least one), or ``None`` to leave torch's default (one job, or ``OMP_NUM_THREADS`` set by
    the user, whose choice stands). Without it, ``-j 2`` on two cores runs two workers of two threads each,
    which is slower than one job (issue 21: 12.3-14.3 s against 7.8-9.5 s for eight small BERT pages)."""
    if jobs <= 1 or any(os.environ.get(name) for name in THREAD_VARIABLES):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // jobs)


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: it exists, and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc here: existing is all we can tell
        return True
    return state != "Z"


def describe_exit(returncode: int | None) -> str:
    """How a process ended, from its exit status (negative: the signal that killed it; ``None``: unknown)."""
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


class SpawnedWorker:
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


class ForkedWorker:
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
        if self.returncode is None and self._gone and not alive(self.pid):
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
        if isinstance(message, WorkerExited):
            self.returncode = message.status

    def close(self) -> None:
        self.connection.close()


WorkerProcess = SpawnedWorker | ForkedWorker
