"""The messages between a build, its template process and its workers: typed, written and read in one place.

Every message is a frozen dataclass with an ``op`` tag; :func:`encode` writes it as JSON and :func:`decode`
reads it back as the same class, so a field added to a message cannot be dropped by a hand-written dict on
one side. Workers get their messages on private pipes (``multiprocessing`` connections, one message a
frame); the template gets its own on a Unix socket, framed by :func:`send` and :func:`receive`, which pass
file descriptors along (``SCM_RIGHTS``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .snippet import TreeSettings

__all__ = [
    "ExitRequest",
    "ForkFailed",
    "ForkRequest",
    "Forked",
    "Message",
    "Reply",
    "ResetRequest",
    "RunRequest",
    "SetupRequest",
    "WorkerExited",
    "decode",
    "encode",
    "receive",
    "send",
]


# -- a worker's requests and its reply --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """The first request of a worker: the build's import path, put in front of the worker's own, and the number of
    threads torch should use (``None``: its default; see :func:`~sphinx_modelvis.execution.processes.thread_share`)."""

    op: ClassVar[str] = "setup"
    sys_path: tuple[str, ...] = ()
    threads: int | None = None


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """A new, empty namespace, its snippets run in ``cwd`` (the page's folder) and importing from there."""

    op: ClassVar[str] = "reset"
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Run one snippet in the namespace: its figure, or (``replay``) only its effect on the namespace.

    ``first_line`` is the snippet's first line in ``filename`` (its page), ``expr`` the figure's argument,
    written at ``expr_line``; ``settings``, ``device``, ``columns`` and ``max_lines`` shape what is shown.
    ``checkpoint``, if not empty, is the socket path a checkpoint of the namespace after this snippet listens on
    (see :mod:`~sphinx_modelvis.execution.checkpoints`).
    """

    op: ClassVar[str] = "run"
    code: str
    filename: str
    first_line: int
    expr: str | None = None
    expr_line: int | None = None
    settings: TreeSettings = field(default_factory=TreeSettings)
    device: str | None = None
    columns: int = 100
    max_lines: int = 0
    replay: bool = False
    checkpoint: str = ""


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """End the worker now."""

    op: ClassVar[str] = "exit"


@dataclass(frozen=True, slots=True)
class Reply:
    """A worker's answer to one request.

    ``capture`` is the figure's capture as JSON (``None`` for a replay); ``imported`` names the installed
    modules the snippet imported, for the next worker's template. A figure's reply lists what the namespace's
    snippets depended on so far: ``files`` (absolute path to ``[size, mtime_ns, sha256]``) and
    ``distributions`` (name to version); see :mod:`~sphinx_modelvis.execution.dependencies`.
    A failure has ``ok`` false, a ``kind`` (see :data:`~sphinx_modelvis.execution.results.FAILURE_KINDS`),
    a ``message``, the snippet's own ``traceback`` and the docs ``line`` to report (``None``: the snippet's first).
    A run that asked for a checkpoint lists ``files`` and ``distributions`` for a replay too (the checkpoint's
    manifest; it is taken after the reply); ``checkpoint_error`` says why the last checkpoint could not be taken.
    ``threads`` is torch's thread count when torch is imported (the answer to ``setup``).
    """

    op: ClassVar[str] = "reply"
    ok: bool = True
    seconds: float = 0.0
    capture: str | None = None
    imported: tuple[str, ...] = ()
    files: dict[str, list[Any]] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    kind: str = ""
    message: str = ""
    traceback: str = ""
    line: int | None = None
    checkpoint_error: str = ""
    threads: int | None = None


# -- the template's request and answers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForkRequest:
    """Fork a worker (its two pipes and its log ride along), after importing what the page's snippets need.

    ``statements`` are import statements of installed packages, ``modules`` installed modules earlier
    workers imported; ``sys_path`` is the build's import path.
    """

    op: ClassVar[str] = "fork"
    sys_path: tuple[str, ...] = ()
    statements: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Forked:
    """The worker was forked: its ``pid``, and how long the fork itself took (not the imports before it)."""

    op: ClassVar[str] = "forked"
    pid: int
    forking: float = 0.0


@dataclass(frozen=True, slots=True)
class ForkFailed:
    """No worker: why."""

    op: ClassVar[str] = "fork-failed"
    error: str


@dataclass(frozen=True, slots=True)
class WorkerExited:
    """A worker the template forked has ended with this exit status (negative: the signal that killed it)."""

    op: ClassVar[str] = "exited"
    status: int


Message = (
    SetupRequest | ResetRequest | RunRequest | ExitRequest | Reply | ForkRequest | Forked | ForkFailed | WorkerExited
)
_CLASSES: dict[str, type[Any]] = {
    kind.op: kind
    for kind in (
        SetupRequest,
        ResetRequest,
        RunRequest,
        ExitRequest,
        Reply,
        ForkRequest,
        Forked,
        ForkFailed,
        WorkerExited,
    )
}


def encode(message: Message) -> bytes:
    """``message`` as JSON bytes, tagged with its ``op``."""
    data = {"op": message.op, **{item.name: getattr(message, item.name) for item in dataclasses.fields(message)}}
    if isinstance(message, RunRequest):
        data["settings"] = dataclasses.asdict(message.settings)
    return json.dumps(data).encode("utf-8")


def decode(data: bytes) -> Message:
    """The message :func:`encode` wrote; ``ValueError`` for anything else."""
    try:
        values = json.loads(data)
        kind = _CLASSES[values.pop("op")]
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a modelvis message: {data[:200]!r}") from exc
    for item in dataclasses.fields(kind):
        if item.name in values and isinstance(values[item.name], list):
            values[item.name] = tuple(values[item.name])  # JSON has no tuples
    if kind is RunRequest and "settings" in values:
        values["settings"] = TreeSettings(**values["settings"])
    try:
        message: Message = kind(**values)
    except TypeError as exc:
        raise ValueError(f"not a modelvis {kind.op} message: {exc}") from exc
    return message


# -- framing on the template's socket: a 4-byte length, then the message; descriptors ride with the length ----

_HEADER = struct.Struct(">I")


def send(sock: socket.socket, message: Message, fds: Iterable[int] = ()) -> None:
    """Send one message, with ``fds`` passed along."""
    data = encode(message)
    socket.send_fds(sock, [_HEADER.pack(len(data))], list(fds))
    sock.sendall(data)


def receive(sock: socket.socket, *, max_fds: int = 0) -> tuple[Message, list[int]]:
    """Receive one message and the descriptors passed with it; ``EOFError`` when the other side closed."""
    header, fds, _flags, _address = socket.recv_fds(sock, _HEADER.size, max_fds)
    header += _exactly(sock, _HEADER.size - len(header)) if header else b""
    if len(header) < _HEADER.size:
        for fd in fds:
            os.close(fd)
        raise EOFError("the connection was closed")
    (length,) = _HEADER.unpack(header)
    return decode(_exactly(sock, length)), fds


def _exactly(sock: socket.socket, count: int) -> bytes:
    chunks = []
    while count > 0:
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            raise EOFError("the connection was closed")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)
