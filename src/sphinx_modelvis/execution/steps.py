"""Running a page's snippets in the worker: bringing its namespace up to a figure, then running the figure.

The worker client knows which page namespace its worker holds and how many of its steps it has run, so
bringing it to a figure is: a new namespace (and ``pre_code``) if it holds another, then the page's steps it
has not run yet (replayed: run for their effect only), then the figure. Timeouts and crashes become
failures at the page's line; a step that caused one leaves the page's history, as replaying it would
cause it again.

While the template is kept warm between builds, the worker keeps a checkpoint after each step (a paused fork,
see :mod:`~sphinx_modelvis.execution.checkpoints`), and a worker that would replay steps is instead resumed from
the newest valid checkpoint before the figure: only the steps after it run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..capture import Capture
from ..config import FigureOptions, ModelvisConfig
from .cache import chain_key, format_size
from .checkpoint_memory import MemoryKeeper, memory_bound
from .checkpoints import Checkpoints, checkpoint_name
from .client import Waiting, WorkerClient, WorkerCrashed, WorkerTimeout, frames_in
from .history import PageHistory, RunnerStats, Step
from .manifest import DependencyChecker, declared_dependencies
from .preload import preload_statements
from .results import FigureFailure, Snippet
from .wire import Reply, RunRequest

__all__ = ["PageHistory", "Ran", "RunnerStats", "Step", "StepRunner"]

PRE_CODE_FILENAME = "<pre_code>"
#: A worker start that waited this long for its template, in seconds, says so in the log.
WAIT_NOTED = 0.05


def _run_request(snippet: Snippet, options: FigureOptions, *, replay: bool, checkpoint: str = "") -> RunRequest:
    return RunRequest(
        code=snippet.code,
        filename=snippet.filename,
        first_line=snippet.line,
        expr=options.expr,
        expr_line=snippet.expr_line,
        settings=options.tree,
        device=options.device,
        columns=options.columns,
        max_lines=options.max_lines,
        replay=replay,
        checkpoint=checkpoint,
    )


@dataclass(frozen=True, slots=True)
class Ran:
    """What running a figure's snippet came to: its capture or failure, its seconds, and (when it ran) what
    the page's snippets depended on so far, as the worker recorded it (see :class:`~.wire.Reply`)."""

    capture: Capture | None
    failure: FigureFailure | None
    seconds: float
    files: dict[str, list[Any]] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)


class StepRunner:
    """Runs steps of pages in one worker process, started (or forked from the template) when first needed.

    With a kept-warm template (and ``checker``, which checks a checkpoint's dependencies like a cache entry's;
    ``declared`` are the site's declared dependencies), the worker keeps checkpoints, and resumes from them.
    """

    def __init__(
        self,
        client: WorkerClient,
        config: ModelvisConfig,
        *,
        stats: RunnerStats,
        progress: Callable[[str], None],
        live: Callable[[str], None] | None = None,
        checker: DependencyChecker | None = None,
        declared: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.config = config
        self.stats = stats
        self.progress = progress
        #: Receives the lines said while a snippet runs (its start, ``still running``): ``progress`` by default.
        self.live = live or progress
        client.preload_statements.update(dict.fromkeys(preload_statements(config.pre_code)))
        self.checker = checker
        self.declared = list(declared)
        template = client.template
        bound = memory_bound(config.checkpoint_memory)
        keeps = template is not None and template.kept and checker is not None and bound > 0
        #: The template's checkpoints, when its workers keep them.
        self.checkpoints = Checkpoints(template.folder, bound) if keeps and template is not None else None
        #: Where the worker of the figure being run was resumed from, and how many steps it did not replay.
        self._resumed: tuple[str, int] | None = None
        self._checkpoint_failure = ""
        #: Keeps the checkpoints' memory bound, in a thread of its own.
        self.memory = MemoryKeeper(self._keep_bound)

    def run(self, history: PageHistory) -> Ran:
        """Run the last step of ``history`` after the ones before it."""
        step = history.steps[-1]
        failure = self._prepare(history, history.steps[:-1])
        if failure is not None:
            return Ran(None, failure, failure.seconds)
        self.stats.executed += 1
        capture, failure, seconds, reply = self._run(history, step, replay=False)
        self._resumed = None
        self._say_ended()
        if reply is None or failure is not None:
            return Ran(capture, failure, seconds)
        return Ran(capture, failure, seconds, reply.files, reply.distributions)

    def _ensure_worker(self) -> None:
        client = self.client
        forks = client.forks
        started = time.perf_counter()
        if not client.ensure_started():
            return
        seconds = time.perf_counter() - started
        self.stats.worker_starts += 1
        self.stats.start_seconds.append(seconds)
        if forks and not client.forks:
            self.progress(
                f"modelvis: no template process to fork workers from ({client.template_failure}); "
                "each worker is started as a new process"
            )
        if client.forks:
            # The first workers of a build wait for the template to import torch & co.; the others only fork.
            waited = client.waited
            note = f" ({waited:.2f} s of it waiting for the template to import)" if waited >= WAIT_NOTED else ""
            note += _share(client)
            self.progress(f"modelvis: forked a worker process (pid {client.pid}) in {seconds:.2f} s{note}")
        else:
            self.progress(f"modelvis: started a worker process (pid {client.pid}) in {seconds:.2f} s{_share(client)}")

    def _prepare(self, history: PageHistory, before: list[Step]) -> FigureFailure | None:
        """Bring the worker to just before this figure: the page's namespace, with what it has not run yet run."""
        client = self.client
        # What the template should import before it forks this page's worker: what its snippets import.
        for step in history.steps:
            client.preload_statements.update(dict.fromkeys(preload_statements(step.snippet.code)))
        self._resumed = None
        if not self._resume(history, before):
            try:
                self._ensure_worker()
            except (WorkerCrashed, WorkerTimeout) as exc:
                return self._lost_worker(exc, None, "starting the worker process")
            if client.namespace != history.namespace or client.position > len(before):
                failure = self._fresh_namespace(history)
                if failure is not None:
                    return failure
        for previous in before[client.position :]:
            _capture, failure, seconds, _reply = self._run(history, previous, replay=True)
            self.stats.replayed += 1
            self.progress(f"modelvis: {previous.snippet.location} ... {seconds:.1f} s (replayed)")
            if failure is not None and failure.kind in ("timeout", "crash"):
                return failure
        return None

    def _resume(self, history: PageHistory, before: list[Step]) -> bool:
        """Resume the worker from the newest valid checkpoint that saves replaying some of ``before``; whether it
        did. A checkpoint whose dependencies changed (or that cannot fork) is ended, and the next older one tried."""
        client, store = self.client, self.checkpoints
        if store is None or not client.forks:
            return False
        holds = client.namespace == history.namespace and client.position <= len(before)
        first = client.position if holds else 0
        for index in range(len(before) - 1, first - 1, -1):
            name = self._checkpoint_name(history, index)
            found = store.find(name)
            if found is None:
                continue
            assert self.checker is not None
            stale, _moved = self.checker.changed(found.manifest)
            if stale is not None:
                store.end(name)
                self.progress(f"modelvis: ended the checkpoint after {found.place}: {stale}")
                continue
            started = time.perf_counter()
            try:
                client.resume(store.socket_path(name), history.namespace, index + 1)
            except (WorkerCrashed, WorkerTimeout, OSError, EOFError, ValueError) as exc:
                store.end(name)
                self.progress(f"modelvis: ended the checkpoint after {found.place}: it could not resume ({exc})")
                continue
            seconds = time.perf_counter() - started
            self.stats.worker_starts += 1
            self.stats.start_seconds.append(seconds)
            threads = "" if client.threads is None else f"threads: {client.threads}, "
            self.progress(
                f"modelvis: resumed a worker process (pid {client.pid}) in {seconds:.2f} s "
                f"({threads}resumed from the checkpoint after {found.place})"
            )
            self._resumed = (found.place, index + 1 - first)
            return True
        return False

    def _checkpoint_name(self, history: PageHistory, index: int) -> str:
        """The name of the checkpoint after ``history.steps[index]``: the page's key chain up to it (the cache's,
        over the steps the namespace holds) and where each of those steps sits."""
        steps = history.steps[: index + 1]
        key = history.start
        for step in steps:
            key = chain_key(key, step.snippet.code, step.options.execution_key())
        return checkpoint_name(key, [step.snippet.location for step in steps])

    def _wanted_checkpoint(self, history: PageHistory, step: Step) -> tuple[int, str] | None:
        """The index and name of the checkpoint to take after ``step`` (about to run): ``None`` if the worker keeps
        none, or one of that name already runs."""
        store = self.checkpoints
        if store is None or not self.client.forks:
            return None
        index = next((number for number, known in enumerate(history.steps) if known is step), -1)
        if index != self.client.position or self.client.namespace != history.namespace:
            return None
        name = self._checkpoint_name(history, index)
        return None if store.live(name) else (index, name)

    def _keep_checkpoint(self, history: PageHistory, index: int, name: str, reply: Reply) -> None:
        """Record the checkpoint the worker takes after ``history.steps[index]`` (once it has replied), with the
        dependency manifest of the steps up to it; then end the oldest checkpoints while they hold more memory than
        the bound."""
        store, checker = self.checkpoints, self.checker
        assert store is not None and checker is not None
        steps = history.steps[: index + 1]
        declared = [*self.declared]
        for step in steps:
            declared.extend(declared_dependencies(step.options.depends, history.cwd))
        manifest = checker.manifest(reply.files, reply.distributions, declared)
        store.record(name, steps[-1].snippet.location, manifest)
        self.memory.ask()

    def _keep_bound(self) -> list[str]:
        """End the oldest checkpoints while they hold more memory than the bound (in the memory keeper's thread);
        what to say of each."""
        store = self.checkpoints
        assert store is not None
        bound = f"more than checkpoint_memory = {self.config.checkpoint_memory!r} ({format_size(store.bound)})"
        return [
            f"modelvis: ended the checkpoint after {place} ({format_size(size)}): the checkpoints held {bound}"
            for place, size in store.keep_bound()
        ]

    def _say_ended(self, lines: list[str] | None = None) -> None:
        """Say (in this thread: hosts log from theirs) which checkpoints the memory bound ended since last time."""
        for line in self.memory.said() if lines is None else lines:
            self.progress(line)

    def finish(self) -> None:
        """At the end of a build: let the memory bound be kept (a bounded wait), and say what it ended."""
        self._say_ended(self.memory.finish())

    def _fresh_namespace(self, history: PageHistory) -> FigureFailure | None:
        """The page's namespace, new: in a new worker when this one ran code (and workers fork), then pre_code."""
        client = self.client
        try:
            if client.forks and client.used:
                # A new namespace in a new worker, forked in milliseconds: nothing a page did (to modules,
                # to torch's settings) reaches the next, however Sphinx shares pages out among processes.
                client.close()
                self._ensure_worker()
            client.reset(history.namespace, cwd=history.cwd)
        except (WorkerCrashed, WorkerTimeout) as exc:
            return self._lost_worker(exc, None, "starting a new namespace")
        pre_code = self.config.pre_code
        if not pre_code.strip():
            return None
        snippet = Snippet(pre_code, PRE_CODE_FILENAME, 1)
        # With the site's settings (device, columns, timeout), as a figure that sets none runs.
        request = _run_request(snippet, FigureOptions.of_site(self.config), replay=True)
        started = time.perf_counter()
        failure: FigureFailure | None = None
        waiting = self._announce(f"pre_code for {history.page}", "running", self.config.timeout)
        try:
            reply = client.run(request, timeout=self.config.timeout, prelude=True, waiting=waiting)
        except (WorkerCrashed, WorkerTimeout) as exc:
            what = f"replaying the earlier snippet at {snippet.location}"
            failure = self._lost_worker(exc, snippet, what, seconds=time.perf_counter() - started)
        else:
            failure = None if reply.ok else self._failure(reply, snippet, replay=True)
        seconds = failure.seconds if failure is not None else reply.seconds
        self.progress(f"modelvis: pre_code for {history.page} ... {seconds:.1f} s")
        if failure is None:
            return None
        message = f"pre_code failed, so this page's figures cannot run: {failure.message}"
        return FigureFailure("pre-code", message, 0, failure.traceback, failure.seconds)

    def _run(
        self, history: PageHistory, step: Step, *, replay: bool
    ) -> tuple[Capture | None, FigureFailure | None, float, Reply | None]:
        """Run one snippet in the worker's namespace: its capture (none for a replay), failure, seconds and reply.

        A timeout or a crash is a failure too, and takes the step out of the page's history.
        """
        snippet = step.snippet
        started = time.perf_counter()
        timeout = step.options.timeout
        waiting = self._announce(snippet.location, "replaying" if replay else "running", timeout)
        wanted = self._wanted_checkpoint(history, step)
        try:
            path = "" if wanted is None or self.checkpoints is None else self.checkpoints.socket_path(wanted[1])
            request = _run_request(snippet, step.options, replay=replay, checkpoint=path)
            reply = self.client.run(request, timeout=timeout, waiting=waiting)
        except (WorkerCrashed, WorkerTimeout) as exc:
            history.steps.remove(step)
            what = "replaying the earlier snippet at " + snippet.location if replay else "running the snippet"
            failure = self._lost_worker(exc, snippet, what, seconds=time.perf_counter() - started)
            return None, failure, failure.seconds, None
        if reply.checkpoint_error and reply.checkpoint_error != self._checkpoint_failure:
            self._checkpoint_failure = reply.checkpoint_error  # said once, not after every snippet
            self.progress(f"modelvis: a checkpoint could not be kept: {reply.checkpoint_error}")
        if wanted is not None:
            self._keep_checkpoint(history, *wanted, reply)
        if not replay:
            note = ""
            if self._resumed is not None:
                place, skipped = self._resumed
                note = f" (resumed from the checkpoint after {place}; {skipped} snippet(s) not replayed)"
            self.progress(f"modelvis: {snippet.location} ... {reply.seconds:.1f} s{note}")
        self.client.preload_modules.update(dict.fromkeys(reply.imported))
        if not reply.ok:
            return None, self._failure(reply, snippet, replay=replay), reply.seconds, reply
        capture = None if replay or reply.capture is None else Capture.from_json(reply.capture)
        return capture, None, reply.seconds, reply

    def _announce(self, what: str, doing: str, timeout: float) -> Waiting:
        """Say that ``what`` starts (so a slow snippet does not look like a hung build); what the client then
        reports while it runs: a line every ``progress_interval`` seconds, with how long it ran and its timeout."""
        self.live(f"modelvis: {what} {doing} (timeout {timeout:g} s)")

        interval = self.config.progress_interval
        digits = 0 if interval >= 1 else 1

        def still(seconds: float) -> None:
            self.live(f"modelvis: {what} still {doing} after {seconds:.{digits}f} s (timeout {timeout:g} s)")

        return interval, still

    @staticmethod
    def _failure(reply: Reply, snippet: Snippet, *, replay: bool) -> FigureFailure:
        """The failure a worker reported, worded for the page."""
        kind, message = reply.kind, reply.message
        if kind == "snippet" and not message.startswith("the snippet called sys.exit("):
            message = f"the snippet raised {message}"
        elif kind == "internal":
            message = f"sphinx-modelvis failed while running the snippet (please report this): {message}"
        if replay and kind != "internal":
            message = f"replaying the earlier snippet at {snippet.location}: {message}"
        return FigureFailure(kind, message, int(reply.line or snippet.line), reply.traceback, reply.seconds)

    def _lost_worker(
        self, exc: WorkerCrashed | WorkerTimeout, snippet: Snippet | None, what: str, *, seconds: float = 0.0
    ) -> FigureFailure:
        """A failure for a worker that timed out or died while doing ``what``, at the line it was running."""
        frames = frames_in(exc.output, snippet.filename) if snippet is not None else []
        line = frames[0] if frames else (snippet.line if snippet is not None else 0)
        if isinstance(exc, WorkerTimeout):
            message = (
                f"{what}: {exc}; raise the figure's :timeout: (or the timeout setting) if it needs longer; "
                "the rest of the page runs in a new worker"
            )
            kind = "timeout"
        else:
            message = f"{what}: {exc}; the rest of the page runs in a new worker"
            kind = "crash"
        if snippet is not None:
            self.progress(f"modelvis: {snippet.location} ... {kind}")
        return FigureFailure(kind, message, line, _last_words(exc.output), seconds)


_MACHINERY = (os.sep + os.path.join("sphinx_modelvis", "execution") + os.sep, '"<frozen runpy>"')


def _share(client: WorkerClient) -> str:
    """What the start line says of a worker given a share of the cores (nothing for torch's default)."""
    if client.thread_share is None:
        return ""
    return f" (threads: {client.thread_share}, its share of the cores among {client.jobs} parallel readers)"


def _last_words(output: str) -> str:
    """The end of what a worker wrote to stderr (a fault dump, a fatal error), without our own frames."""
    lines = [
        line
        for line in output.strip().splitlines()
        if not (line.lstrip().startswith("File ") and any(part in line for part in _MACHINERY))
        and not line.startswith("Extension modules:")
    ]
    return "\n".join(lines[-40:]).strip()
