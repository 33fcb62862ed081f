"""What a process that forks workers owes their clients: each worker's exit status, told on the connection that
asked for it. The template and each checkpoint (:mod:`~sphinx_modelvis.execution.checkpoints`) fork workers on
request, reap them, and report their ends the same way."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket

from .wire import WorkerExited, send

__all__ = ["WorkerExits"]


class WorkerExits:
    """The workers a process forked and the connection each one's exit status goes to, watched by ``selector``
    (a client that closes its connection is done with the worker: its exit is then nobody's business)."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        #: Each worker's pid and the connection its exit status goes to, while its client listens.
        self.connections: dict[int, socket.socket] = {}

    def watch(self, pid: int, connection: socket.socket) -> None:
        """Tell ``connection`` when the worker ``pid`` ends."""
        self.connections[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ)

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
