"""The host side of the worker process: started lazily, spoken to on private pipes, killed at a timeout, replaced.

The client knows which namespace its worker holds and how many of that namespace's snippets it has run;
starting, resetting, running, killing the worker and resuming one from a checkpoint keep that right, so a page
session only asks it to run what it has not run yet.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable
from multiprocessing.connection import Connection
from typing import IO

from ..errors import ExecutionCrashed, ExecutionTimeout
from .processes import ForkedWorker, SpawnedWorker, WorkerProcess, describe_exit, python_environment, thread_share
from .template import TemplateLink
from .wire import (
    ExitRequest,
    Forked,
    ForkFailed,
    ForkRequest,
    Reply,
    ResetRequest,
    RunRequest,
    SetupRequest,
    decode,
    encode,
    receive,
    send,
)

__all__ = ["WorkerClient", "WorkerCrashed", "WorkerTimeout", "frames_in"]

#: How long a timed-out worker gets to write where it was before it is killed.
DUMP_GRACE = 0.5
#: How often a waiting request checks that the worker is still alive, in seconds.
POLL_INTERVAL = 0.2
#: How long a worker may take to be forked: the template may first import torch, transformers, ...
TEMPLATE_TIMEOUT = 300.0
#: How long requests that run no user code (the setup, a new namespace) may take, in seconds.
HOUSEKEEPING_TIMEOUT = 60.0
#: What a waiting request reports: every ``interval`` seconds, ``report(seconds it has run)``.
Waiting = tuple[float, Callable[[float], None]]
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


def _connect(path: str) -> socket.socket:
    """A connection to the Unix socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def frames_in(output: str, filename: str) -> list[int]:
    """Line numbers of ``filename``'s frames in a faulthandler dump, innermost first."""
    return [int(match["line"]) for match in _FRAME.finditer(output) if match["file"] == filename]


class WorkerClient:
    """One worker process, started on first use and again after it died.

    With a ``template`` link, workers are forked from the build's template process (milliseconds, with the
    imports already done); without one, or if the template fails, each is started as a new Python process.
    The worker belongs to the process that started it: after a ``fork`` (Sphinx's parallel
    reading), the child starts its own instead of talking to its parent's.

    :attr:`namespace` and :attr:`position` say what the worker holds: the namespace it was last
    :meth:`reset` to and how many of its snippets :meth:`run` has run there. A worker that is started,
    killed, or whose namespace's prelude failed holds none (``None``).
    """

    def __init__(
        self,
        *,
        python: str | None = None,
        template: TemplateLink | None = None,
        jobs: int = 1,
        build_pid: int | None = None,
    ) -> None:
        self.python = python or sys.executable
        self.template = template
        #: How many processes of the build run workers at once (Sphinx's ``-j``), and the build's first process:
        #: a worker started from another one (a parallel reader) gets its share of the cores (:meth:`_start`).
        self.jobs = jobs
        self.build_pid = build_pid
        #: The thread count the latest worker was given (``None``: torch's default).
        self.thread_share: int | None = None
        self.starts = 0
        #: What the next forked worker should find imported: import statements, then module names (in order).
        self.preload_statements: dict[str, None] = {}
        self.preload_modules: dict[str, None] = {}
        #: Why the template is not used (it failed), or ``None``.
        self.template_failure: str | None = None
        #: How long the latest forked worker waited for the template (importing for it or for others), in seconds.
        self.waited = 0.0
        #: torch's thread count in the latest worker, as it started (``None``: torch not imported then).
        self.threads: int | None = None
        self._process: WorkerProcess | None = None
        self._owner = 0
        self._requests: Connection | None = None
        self._responses: Connection | None = None
        self._log: IO[bytes] | None = None
        self._namespace: Hashable | None = None
        self._position = 0
        self._used = False

    @property
    def namespace(self) -> Hashable | None:
        """The namespace the worker holds (as given to :meth:`reset`), or ``None``."""
        return self._namespace if self.running else None

    @property
    def position(self) -> int:
        """How many snippets of :attr:`namespace` the worker has run (0 without a namespace)."""
        return self._position if self.namespace is not None else 0

    @property
    def used(self) -> bool:
        """Whether the running worker has run any code since it started (a fresh process has not)."""
        return self._used and self.running

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

    def _start(self, checkpoint: str | None = None) -> None:
        """Start a worker: forked by the template (or by the checkpoint listening on ``checkpoint``, which raises
        ``OSError`` if it cannot), else a new process."""
        self.waited = 0.0
        self.threads = None
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        self._log = tempfile.TemporaryFile(prefix="modelvis-worker-")
        try:
            process: WorkerProcess | None
            if checkpoint is not None:
                process = self._fork_from(lambda: _connect(checkpoint), request_read, response_write)
            else:
                process = self._fork(request_read, response_write) if self.forks else None
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
        # Parallel readers run their workers at once: each gets its share of the cores. A build that reads its
        # pages in its first process (one job, or too few pages for Sphinx to read them in parallel) does not.
        parallel = self.build_pid is not None and os.getpid() != self.build_pid
        self.thread_share = thread_share(self.jobs) if parallel else None
        setup = SetupRequest(tuple(sys.path), threads=self.thread_share)
        reply = self._request(setup, timeout=2 * HOUSEKEEPING_TIMEOUT)
        self.threads = reply.threads

    def _spawn(self, request_read: int, response_write: int) -> SpawnedWorker:
        assert self._log is not None
        return SpawnedWorker(
            subprocess.Popen(
                [self.python, "-m", "sphinx_modelvis.execution.worker", str(request_read), str(response_write)],
                pass_fds=(request_read, response_write),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                env=python_environment(),
                start_new_session=True,  # so a timeout kills whatever the snippet started too
            )
        )

    def _fork(self, request_read: int, response_write: int) -> ForkedWorker | None:
        """A worker forked by the template; ``None`` (and no template from now on) if the template fails."""
        assert self.template is not None
        try:
            return self._fork_from(self.template.connect, request_read, response_write)
        except (OSError, EOFError, ValueError) as exc:
            self.template_failure = f"{type(exc).__name__}: {exc}"
            return None

    def _fork_from(self, connect: Callable[[], socket.socket], request_read: int, response_write: int) -> ForkedWorker:
        """A worker forked by the process ``connect`` reaches (the template, a checkpoint); raises if it fails."""
        assert self._log is not None
        connection: socket.socket | None = None
        try:
            connection = connect()
            message = ForkRequest(tuple(sys.path), tuple(self.preload_statements), tuple(self.preload_modules))
            asked = time.perf_counter()
            send(connection, message, [request_read, response_write, self._log.fileno()])
            # The template imports what the message names before it forks: the first worker of a build waits
            # for torch and friends, as a worker started on its own would.
            ready, _, _ = select.select([connection], [], [], TEMPLATE_TIMEOUT)
            if not ready:
                raise OSError(f"it did not answer within {TEMPLATE_TIMEOUT:g} s")
            reply, _fds = receive(connection)
            if isinstance(reply, ForkFailed):
                raise OSError(reply.error)
            if not isinstance(reply, Forked):
                raise OSError(f"unexpected answer {reply!r}")
            self.waited = max(0.0, time.perf_counter() - asked - reply.forking)
            return ForkedWorker(reply.pid, connection)
        except BaseException:
            if connection is not None:
                connection.close()
            raise

    def resume(self, checkpoint: str, namespace: Hashable, position: int) -> None:
        """Replace the worker with one forked by the checkpoint listening on ``checkpoint``: it holds
        ``namespace`` with its first ``position`` snippets run. Raises ``OSError``, ``EOFError`` or ``ValueError``
        (the checkpoint is gone or failed to fork), or as :meth:`run` does; the worker then holds no namespace."""
        self.close()
        self._discard()
        self._owner = os.getpid()
        self._start(checkpoint)
        self._namespace, self._position, self._used = namespace, position, True

    def reset(self, namespace: Hashable, *, cwd: str | None) -> None:
        """Give the worker a new, empty namespace, known as ``namespace``, its snippets run in ``cwd``.

        Raises as :meth:`run` does (the worker then holds no namespace).
        """
        self._request(ResetRequest(cwd), timeout=HOUSEKEEPING_TIMEOUT)
        self._namespace, self._position = namespace, 0

    def run(
        self, request: RunRequest, *, timeout: float, prelude: bool = False, waiting: Waiting | None = None
    ) -> Reply:
        """Run one snippet in the worker's namespace and return the reply, within ``timeout`` seconds.

        A snippet that ran (or raised) has its effects in the namespace: :attr:`position` moves past it.
        A ``prelude`` (``pre_code``) is part of the namespace's start, not one of its snippets: the
        position stays, and if it fails the worker holds no namespace (the next :meth:`reset` runs it again).
        Raises :class:`WorkerTimeout` (the worker is killed) or :class:`WorkerCrashed` (it died); either
        way the worker then holds no namespace, and the next request starts a new one. ``waiting``, if given,
        is ``(interval, report)``: ``report(seconds)`` is called every ``interval`` seconds the snippet runs.
        """
        reply = self._request(request, timeout=timeout, waiting=waiting)
        self._used = True
        if prelude and not reply.ok:
            self._namespace = None
        elif not prelude:
            self._position += 1
        return reply

    def _request(
        self, message: SetupRequest | ResetRequest | RunRequest, *, timeout: float, waiting: Waiting | None = None
    ) -> Reply:
        """Send one request and wait for its reply, at most ``timeout`` seconds (see :meth:`run`)."""
        if not self.running:
            self.ensure_started()
        assert self._requests is not None and self._responses is not None and self._log is not None
        mark = self._log.seek(0, os.SEEK_END)
        try:
            self._requests.send_bytes(encode(message))
            if not self._wait_for_reply(timeout, waiting):
                self._dump_stack()
                output = self._output_since(mark)
                self._kill()
                raise WorkerTimeout(f"it ran for more than {timeout:g} s and was stopped", output=output)
            reply = decode(self._responses.recv_bytes())
        except (EOFError, OSError):
            returncode = self._wait_for_exit()
            output = self._output_since(mark)
            self._kill()  # what the snippet started (a forked child, say) goes with the worker
            death = f"the worker process {describe_exit(returncode)}"
            raise WorkerCrashed(death, output=output, returncode=returncode) from None
        if not isinstance(reply, Reply):
            self._kill()
            raise WorkerCrashed(f"the worker process answered {reply!r}", output=self._output_since(mark))
        return reply

    def _wait_for_reply(self, timeout: float, waiting: Waiting | None = None) -> bool:
        """Whether a reply came within ``timeout``; raises ``EOFError`` as soon as the worker is dead.

        The reply pipe alone would not tell: a child the snippet forked holds it open after the worker died.
        ``waiting`` reports how long the request has run, at its interval (see :meth:`run`).
        """
        assert self._responses is not None and self._process is not None
        started = time.monotonic()
        deadline = started + timeout
        interval, report = waiting if waiting is not None else (float("inf"), None)
        next_report = started + interval
        while True:
            now = time.monotonic()
            if report is not None and now >= next_report:
                report(now - started)
                next_report += interval * max(1, int((now - next_report) // interval) + 1)
            remaining = deadline - now
            if self._responses.poll(max(0.0, min(remaining, POLL_INTERVAL, next_report - now))):
                return True
            if self._process.poll() is not None:
                if self._responses.poll(0):
                    return True
                raise EOFError("the worker process ended")
            if time.monotonic() >= deadline:
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

    def _close_pipes(self) -> None:
        """Close this process's ends of the worker's pipes and its log."""
        for connection in (self._requests, self._responses):
            if connection is not None:
                connection.close()
        if self._log is not None:
            self._log.close()

    def _discard(self) -> None:
        """Close this process's ends of the pipes (the worker, if alive, sees the end of its requests)."""
        self._close_pipes()
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
        self._namespace, self._position, self._used = None, 0, False

    def _forget(self) -> None:
        """After a fork: drop the parent's worker without touching it (its pipes' copies here are closed)."""
        self._close_pipes()
        if self._process is not None:
            self._process.close()
        self._requests = self._responses = None
        self._process = None
        self._log = None
        self._owner = os.getpid()
        self.starts = 0
        self._namespace, self._position, self._used = None, 0, False

    def close(self) -> None:
        """Ask the worker to exit and wait for it (killing it if it does not)."""
        if self._owner != os.getpid():
            self._forget()
            return
        if self._process is None:
            return
        if self._requests is not None and self._process.poll() is None:
            try:
                self._requests.send_bytes(encode(ExitRequest()))
            except OSError:
                pass
        self._discard()
