"""Workers forked on request, and what their clients are owed: the worker's pid, then its exit status, on the
connection that asked for it. The template and each checkpoint (:mod:`~sphinx_modelvis.execution.checkpoints`)
fork workers this way; they differ in what the child then serves."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from typing import NoReturn

from .wire import Forked, ForkFailed, ForkRequest, WorkerExited, receive, send

__all__ = ["ForkedWorkers", "fork_request"]

#: What a forked worker runs, given its request and response pipes (it does not return).
Serve = Callable[[int, int], object]
#: The sockets of the forking process that a forked worker closes.
Sockets = Iterable[socket.socket]


def fork_request(connection: socket.socket, *, bare: bool = False) -> tuple[ForkRequest, list[int]] | None:
    """The fork request on ``connection`` and the worker's pipes and log it carries; ``None`` for anything else
    (the client told, the connection closed). ``bare``: a request without them is taken too (the template's
    "import this, fork nothing")."""
    try:
        request, fds = receive(connection, max_fds=3)
    except (EOFError, OSError, ValueError):
        connection.close()
        return None
    if isinstance(request, ForkRequest) and (len(fds) == 3 or (bare and not fds)):
        return request, fds
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        send(connection, ForkFailed("unknown request"))
    connection.close()
    return None


class ForkedWorkers:
    """The workers a process forked and the connection each one's exit status goes to, watched by ``selector``
    (a client that closes its connection is done with the worker: its exit is then nobody's business)."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        #: Each worker's pid and the connection its exit status goes to, while its client listens.
        self.connections: dict[int, socket.socket] = {}

    def fork(self, connection: socket.socket, fds: list[int], serve: Serve, own: Sockets) -> int | None:
        """Fork a worker for the client on ``connection``; the child drops this process's parts (the selector, the
        sockets ``own`` and every client's connection), takes the log of ``fds`` as its stdout and stderr and runs
        ``serve`` on the request and response pipes of ``fds`` (which the parent then closes); it never returns.
        The client is answered with the worker's pid (or why there is none), then, when it ends, with its exit
        status. The pid, or ``None``."""
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as error:  # out of memory or processes: the client starts its worker another way
            failure = f"fork failed: {error}"
            pid = -1
        if pid == 0:
            self._become_worker(connection, fds, serve, own)
        for fd in fds:
            os.close(fd)
        try:
            send(connection, Forked(pid, time.perf_counter() - started) if pid > 0 else ForkFailed(failure))
        except OSError:
            connection.close()
            return pid if pid > 0 else None
        if pid < 0:
            connection.close()
            return None
        self.connections[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ)
        return pid

    def _become_worker(self, connection: socket.socket, fds: list[int], serve: Serve, own: Sockets) -> NoReturn:
        """In the forked child: drop the parent's parts, take the log as stdout and stderr, serve requests."""
        try:
            os.setsid()  # a group of its own: a timeout kills it and what it started, not its parent
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(number, signal.SIG_DFL)
            self.selector.close()
            for sock in (*own, connection, *self.connections.values()):
                sock.close()
            requests, responses, log = fds
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            serve(requests, responses)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(70)  # serve() never returns; nothing here may go back to the parent's loop

    def reap(self) -> list[int]:
        """Reap every child that has ended, tell each worker's client its exit status; the pids reaped."""
        reaped: list[int] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return reaped
            if pid == 0:
                return reaped
            reaped.append(pid)
            connection = self.connections.pop(pid, None)
            if connection is not None:
                with contextlib.suppress(OSError):
                    send(connection, WorkerExited(os.waitstatus_to_exitcode(status)))
                self.forget(connection)

    def forget(self, connection: socket.socket) -> None:
        """Stop watching ``connection`` and close it (its worker, if still running, is still reaped)."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(connection)
        for pid, known in list(self.connections.items()):
            if known is connection:
                del self.connections[pid]
        connection.close()
