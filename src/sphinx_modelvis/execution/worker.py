"""The worker process that runs snippets (``python -m sphinx_modelvis.execution.worker REQUESTS_FD RESPONSES_FD``).

It reads requests and writes replies as JSON messages on two private pipes, never on stdout:
snippets and C extensions may write to file descriptor 1 and 2 as they like (the client sends both
to a log file it reads when the worker crashes). One namespace at a time: ``reset`` starts a new one.
A worker is started as a new process, or forked from the build's template process (see ``template.py``), or
from a checkpoint of a worker (see ``checkpoints.py``): after a run that asks for one, the worker forks a paused
copy of itself that can later fork workers holding the namespace as it was then. Either way it ends when its
client is gone.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import select
import signal
import sys
import threading
import time
import traceback
import typing
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import ForwardError, NotAModule, SnippetError
from .checkpoints import take
from .dependencies import DependencyTracker
from .preload import is_installed_file
from .processes import THREAD_VARIABLES
from .snippet import captured_output, run_snippet, show_snippet
from .wire import ExitRequest, Reply, ResetRequest, RunRequest, SetupRequest, decode, encode

__all__ = ["Worker", "main"]


class Worker:
    """The state of a worker: the current page's namespace and working directory."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        #: The page folder this worker put at the front of ``sys.path``, if any.
        self.page_path: str | None = None
        self.tracker = DependencyTracker()
        #: The file descriptors of the pipes it serves on (a checkpoint closes its copies).
        self.channels: tuple[int, int] = (-1, -1)
        #: Where to take a checkpoint once the reply is sent (see :meth:`after_reply`), and why the last failed.
        self.checkpoint = ""
        self.checkpoint_error = ""
        #: Held from a reply to the fork of the checkpoint that follows it: a client gone meanwhile (it may close
        #: the pipes as soon as it has the reply) ends the worker's group after the fork, which the checkpoint left.
        self.forking = threading.Lock()

    def handle(self, request: SetupRequest | ResetRequest | RunRequest) -> Reply:
        """Answer one request (``setup``, ``reset`` or ``run``)."""
        if isinstance(request, SetupRequest):
            missing = [entry for entry in request.sys_path if entry not in sys.path]
            sys.path[:0] = missing
            torch = sys.modules.get("torch")
            if request.threads is not None:
                _share_cores(request.threads, torch)
            threads = torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None
            return Reply(pid=os.getpid(), threads=request.threads if threads is None else threads)
        if isinstance(request, ResetRequest):
            _end_children()  # what the last page's snippets started ends with that page
            self.namespace = {"__name__": "__main__"}
            self.tracker.start()
            if request.cwd:
                os.chdir(request.cwd)
            self._import_from(request.cwd)
            return Reply()
        return self.run(request)

    def _import_from(self, folder: str | None) -> None:
        """Make modules next to the page importable, as `python page.py` would, wherever the build started."""
        if self.page_path is not None and self.page_path in sys.path:
            sys.path.remove(self.page_path)
        self.page_path = None
        if folder and folder not in sys.path:
            sys.path.insert(0, folder)
            self.page_path = folder

    def run(self, request: RunRequest) -> Reply:
        """Run one snippet in the namespace; a replay runs it only for its effect on the namespace.

        A reply that succeeds names the installed modules the snippet imported (``imported``): the template
        imports them too, so that the next worker starts with them. A figure's reply lists what the namespace's
        snippets depended on so far (``files``, ``distributions``); so does one that asked for a checkpoint, which
        is taken once the reply is sent (:meth:`after_reply`). A reply says why the last checkpoint failed, if it did.
        """
        before = set(sys.modules)
        with self.tracker.running():
            reply = self._run(request)
        if (reply.ok and not request.replay) or (request.checkpoint and reply.kind != "internal"):
            files, distributions = self.tracker.dependencies()
            reply = replace(reply, files=files, distributions=distributions)
        if reply.ok:
            # Listed first: looking at a module's file may import something (and change ``sys.modules``).
            new = [(name, module) for name, module in list(sys.modules.items()) if name not in before]
            imported = tuple(name for name, module in new if _installed(module))
            if imported:
                reply = replace(reply, imported=imported)
        if self.checkpoint_error:
            reply, self.checkpoint_error = replace(reply, checkpoint_error=self.checkpoint_error), ""
        if request.checkpoint and reply.kind != "internal":
            self.checkpoint = request.checkpoint
        return reply

    def after_reply(self) -> None:
        """Take the checkpoint the last run asked for: after its reply, so that forking a worker that holds a
        model (tens of milliseconds) does not delay the figure. Called holding :attr:`forking`."""
        path, self.checkpoint = self.checkpoint, ""
        if not path:
            return
        if _cuda_in_use():
            self.checkpoint_error = "CUDA is in use, and a forked process cannot use it: no checkpoints for this page"
            return
        with self.tracker.paused():
            try:
                take(path, self.channels, self._resume)
            except OSError as error:
                self.checkpoint_error = f"{type(error).__name__}: {error}"

    def _resume(self, requests_fd: int, responses_fd: int) -> typing.NoReturn:
        """In a worker forked from a checkpoint of this one: serve a new client, the namespace as it was."""
        serve(requests_fd, responses_fd, worker=self)

    def _run(self, request: RunRequest) -> Reply:
        started = time.perf_counter()
        try:
            if request.replay:
                with captured_output(columns=request.columns, max_lines=request.max_lines):
                    run_snippet(
                        request.code,
                        self.namespace,
                        filename=request.filename,
                        first_line=request.first_line,
                        device=request.device,
                    )
                capture_json = None
            else:
                capture = show_snippet(
                    request.code,
                    self.namespace,
                    filename=request.filename,
                    first_line=request.first_line,
                    expr=request.expr,
                    expr_line=request.expr_line,
                    settings=request.settings,
                    device=request.device,
                    columns=request.columns,
                    max_lines=request.max_lines,
                )
                capture_json = capture.to_json()
        except ForwardError as exc:
            return _failure("forward", str(exc), exc.traceback, exc.line, started)
        except SnippetError as exc:
            return _failure("snippet", str(exc), exc.traceback, exc.line, started)
        except NotAModule as exc:
            line = request.expr_line if request.expr else None
            return _failure("not-a-module", str(exc), "", line, started)
        except BaseException as exc:  # a bug of ours (what the snippet raises comes as a SnippetError)
            summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return _failure("internal", summary, traceback.format_exc(), None, started)
        return Reply(capture=capture_json, seconds=time.perf_counter() - started)


def _cuda_in_use() -> bool:
    """Whether torch has set CUDA up in this process (a forked child of it cannot use CUDA)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        return bool(cuda is not None and cuda.is_initialized())
    except Exception:  # an odd build of torch: assume the worst
        return True


def _failure(kind: str, message: str, trace: str, line: int | None, started: float) -> Reply:
    seconds = time.perf_counter() - started
    return Reply(ok=False, kind=kind, message=message, traceback=trace, line=line, seconds=seconds)


def _installed(module: Any) -> bool:
    return is_installed_file(getattr(module, "__file__", None))


def _share_cores(threads: int, torch: Any) -> None:
    """Run torch on ``threads`` threads: now if the template imported it, else when a snippet imports it (the
    environment variables it reads then). Before any snippet runs, so a snippet or ``pre_code`` that sets its
    own count still has the last word."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)


def _exit_when_orphaned(requests: int, forking: threading.Lock) -> None:
    """End the worker once no process can send it a request: its client is gone, even while a snippet runs.

    A parallel Sphinx reader ends with ``os._exit``, which runs no clean-up. The requests pipe then has no
    writer left, which ``poll`` reports as a hang-up on its reading end.
    """
    poller = select.poll()
    poller.register(requests, 0)  # no events asked for: hang-ups and errors are always reported
    while True:
        for _fd, events in poller.poll():
            if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                with forking:
                    _end_group()
                    os._exit(0)


def _report_exits() -> None:
    """Make ``os._exit`` in the worker write where it was called from, like a crash does."""
    real_exit = os._exit
    worker = os.getpid()

    def _exit(status: int) -> typing.NoReturn:
        if os.getpid() == worker:
            faulthandler.dump_traceback(file=sys.stderr, all_threads=False)
        real_exit(status)

    os._exit = _exit


#: ``os._exit`` itself, before :func:`_report_exits` wraps it.
_EXIT = os._exit


def _end_group() -> None:
    """End what the snippets started (``subprocess.Popen``, a forked child), and the worker with it.

    The worker leads a process group of its own (started in a new session, or ``setsid`` after the fork), which
    its snippets' children join: killing the group ends them all, however the build ends (the page done, the
    build over, Ctrl-C: the client gone). A child that made a session of its own is out of reach. A worker
    that leads no group (run by hand) leaves its group alone.
    """
    if os.getpgrp() == os.getpid():
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)


def _end_children() -> None:
    """Kill the other processes of the worker's group (what earlier snippets started), keeping the worker.

    Read from ``/proc`` (Linux); elsewhere they end with the worker (:func:`_end_group`).
    """
    me = os.getpid()
    if os.getpgrp() != me:
        return
    try:
        names = [name for name in os.listdir("/proc") if name.isdigit() and int(name) != me]
    except OSError:
        return
    for name in names:
        try:
            stat = Path("/proc", name, "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) != me:  # its process group
                continue
            os.kill(int(name), signal.SIGKILL)
            if int(stat[1]) == me:  # our child: reaped here, not left a zombie
                os.waitpid(int(name), 0)
        except (OSError, IndexError, ValueError, ChildProcessError):
            continue


def _leave() -> typing.NoReturn:
    """End the worker at once, skipping the interpreter's clean-up, and the processes its snippets started.

    With torch, a model and its libraries loaded, that clean-up (module teardown, freeing every
    object one by one) takes a second or more, which a build would spend waiting at its end. The
    worker owns nothing that needs it: its replies are sent, and its output goes to a file. (A
    snippet's ``atexit`` handlers do not run.)
    """
    sys.stdout.flush()
    sys.stderr.flush()
    _end_group()
    _EXIT(0)


def main(argv: list[str] | None = None) -> int:
    """Serve requests until the client says ``exit`` or goes away."""
    args = sys.argv[1:] if argv is None else argv
    serve(int(args[0]), int(args[1]))


def serve(requests_fd: int, responses_fd: int, *, worker: Worker | None = None) -> typing.NoReturn:
    """Answer requests read from ``requests_fd`` on ``responses_fd`` until told to exit or orphaned; never returns.

    ``worker`` is the state to go on from (a worker resumed from a checkpoint); by default a new one.
    """
    requests = Connection(requests_fd, writable=False)
    responses = Connection(responses_fd, readable=False)
    # A crash or a timeout dump shows where the snippet was (the client reads stderr then).
    faulthandler.enable(file=sys.stderr, all_threads=False)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)
    _report_exits()
    worker = worker or Worker()
    worker.channels = (requests_fd, responses_fd)
    worker.forking = threading.Lock()  # a resumed worker's copy was held (by the fork of its checkpoint)
    threading.Thread(target=_exit_when_orphaned, args=(requests_fd, worker.forking), daemon=True).start()
    while True:
        try:
            request = decode(requests.recv_bytes())
        except (EOFError, OSError):
            _leave()
        if isinstance(request, ExitRequest):
            _leave()
        if isinstance(request, SetupRequest | ResetRequest | RunRequest):
            reply = worker.handle(request)
        else:
            reply = Reply(ok=False, kind="internal", message=f"unknown request {request.op!r}")
        sys.stderr.flush()
        with worker.forking:
            responses.send_bytes(encode(reply))
            worker.after_reply()


if __name__ == "__main__":
    sys.exit(main())
