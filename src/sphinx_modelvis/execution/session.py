"""Running a site's figures, host-neutral: one namespace per page in a reusable worker, the cache, failures as data.

A host (the Sphinx directive, the MkDocs plugin) makes one :class:`FigureRunner` per build, asks it
for the :class:`PageSession` of each page, runs the page's figures in page order with
:meth:`PageSession.run`, and gets a :class:`FigureResult` back: the capture to draw, or a
:class:`FigureFailure` to report at the page and line it names.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..capture import Capture
from ..config import FigureOptions, ModelvisConfig
from .cache import FigureCache, chain_key, package_versions, page_key
from .client import WorkerClient, WorkerCrashed, WorkerTimeout, frames_in
from .template import TemplateLink, forking_supported, preload_statements

__all__ = [
    "FAILURE_KINDS",
    "FAILURE_TITLES",
    "FigureFailure",
    "FigureResult",
    "FigureRunner",
    "PageSession",
    "RunnerStats",
    "Snippet",
    "cache_folder",
]

#: What can go wrong with a figure; hosts use it as the warning's subtype.
FAILURE_KINDS = ("snippet", "forward", "not-a-module", "timeout", "crash", "not-cached", "pre-code", "internal")
#: The title of the error box a host puts where a figure failed, by kind (hosts add their own kinds).
FAILURE_TITLES = {
    "snippet": "The snippet of this figure raised an exception",
    "forward": "The forward pass of this figure raised an exception",
    "not-a-module": "This figure has nothing to show",
    "timeout": "The snippet of this figure ran past its timeout",
    "crash": "The snippet of this figure crashed its worker process",
    "not-cached": "This figure is not in the cache",
    "pre-code": "The pre_code setting failed",
    "internal": "sphinx-modelvis failed on this figure",
    "options": "This figure's options are invalid",
}

PRE_CODE_FILENAME = "<pre_code>"
#: Requests that run no user code (a new namespace) get this long.
HOUSEKEEPING_TIMEOUT = 60.0
#: A worker start that waited this long for its template, in seconds, says so in the log.
WAIT_NOTED = 0.05


@dataclass(frozen=True, slots=True)
class Snippet:
    """A figure's code; ``filename`` names its page in tracebacks and ``line`` is the code's first line there.

    ``expr_line`` is the line of the figure's argument (its opening line), when it is not ``line``.
    """

    code: str
    filename: str
    line: int
    expr_line: int | None = None

    @property
    def location(self) -> str:
        """``page:line``, as messages show it."""
        return f"{self.filename}:{self.line}"


@dataclass(frozen=True, slots=True)
class FigureFailure:
    """Why a figure has no output.

    ``kind`` is one of :data:`FAILURE_KINDS`; ``message`` says what happened and what to do (hosts
    put the page and ``line`` in front of it); ``traceback`` is the snippet's own traceback (or the
    worker's last words after a timeout or a crash); ``line`` is the docs line to report.
    """

    kind: str
    message: str
    line: int
    traceback: str = ""
    seconds: float = 0.0

    def report(self) -> str:
        """The message followed by the traceback, as a warning or an error box shows it."""
        trace = self.traceback.rstrip()
        return f"{self.message}\n\n{trace}" if trace else self.message


@dataclass(frozen=True, slots=True)
class FigureResult:
    """What one figure came to: a capture to draw, or a failure; ``cached`` when no code ran for it."""

    capture: Capture | None = None
    failure: FigureFailure | None = None
    cached: bool = False
    seconds: float = 0.0
    key: str = ""


@dataclass(slots=True)
class RunnerStats:
    """Counts over a runner's life (in this process): worker starts, snippets run, replayed, cache hits, failures.

    ``start_seconds`` holds how long each worker start took (a fork from the template takes milliseconds,
    once the template has imported what the snippets import).
    """

    worker_starts: int = 0
    executed: int = 0
    replayed: int = 0
    cached: int = 0
    failed: int = 0
    start_seconds: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Step:
    snippet: Snippet
    options: FigureOptions
    #: False once it timed out or crashed a worker: replaying it would do that again.
    replayable: bool = True


class PageSession:
    """One page's namespace: its figures run in page order, each seeing what the earlier ones defined."""

    def __init__(self, runner: FigureRunner, page: str, *, cwd: str | None, serial: int) -> None:
        self.runner = runner
        self.page = page
        self.cwd = cwd
        self.serial = serial
        self.generation = 0
        self.steps: list[_Step] = []
        self._key = runner.page_key

    def run(self, snippet: Snippet, options: FigureOptions) -> FigureResult:
        """The figure of ``snippet``: cached when every input matches, else run after the page's earlier snippets."""
        if options.reset:
            self.generation += 1
            self.steps = []
            self._key = self.runner.page_key
        self._key = chain_key(self._key, snippet.code, options.execution_key())
        earlier = list(self.steps)
        step = _Step(snippet, options)
        self.steps.append(step)
        return self.runner._figure(self, earlier, step, self._key)


@dataclass(slots=True)
class _Outcome:
    capture: Capture | None = None
    failure: FigureFailure | None = None
    seconds: float = 0.0


class FigureRunner:
    """Runs the figures of one build: page sessions, one worker process (started when first needed), the cache.

    ``cache_dir`` ``None`` means no cache. ``progress`` receives one line per snippet that ran
    (``modelvis: page.rst:12 ... 4.2 s``). A build whose figures are all cached starts no worker and
    never imports torch in this process.
    """

    def __init__(
        self,
        config: ModelvisConfig,
        *,
        cache_dir: str | os.PathLike[str] | None,
        progress: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        python: str | None = None,
    ) -> None:
        self.config = config
        self.cache = FigureCache(cache_dir) if cache_dir is not None else None
        self.progress: Callable[[str], None] = progress or (lambda message: None)
        self.warn: Callable[[str], None] = warn or self.progress
        self.stats = RunnerStats()
        self.page_key = page_key(config.pre_code, package_versions())
        template = TemplateLink(python=python) if config.fork_workers and forking_supported() else None
        self._client = WorkerClient(python=python, template=template)
        self._client.preload_statements.update(dict.fromkeys(preload_statements(config.pre_code)))
        #: Whether the worker has run a snippet since it started (a new namespace then needs a new worker).
        self._worker_used = False
        self._pages: dict[str, PageSession] = {}
        self._serials = itertools.count(1)
        #: The namespace the worker holds: (session serial, generation, steps run), None when unknown.
        self._worker_at: tuple[int, int, int] | None = None

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while one is running in this process."""
        return self._client.pid

    def page(self, page: str, *, cwd: str | os.PathLike[str] | None = None) -> PageSession:
        """The session of ``page``: the open one, or a new namespace (``cwd``: the snippets' working directory)."""
        session = self._pages.get(page)
        if session is None:
            session = PageSession(self, page, cwd=None if cwd is None else str(cwd), serial=next(self._serials))
            self._pages[page] = session
        return session

    def end_page(self, page: str) -> None:
        """Forget ``page``'s session: the next :meth:`page` call for it starts a fresh namespace."""
        self._pages.pop(page, None)

    def close(self) -> None:
        """Stop the worker and the template process, if any."""
        self._client.close()
        self._worker_at = None
        if self._client.template is not None:
            self._client.template.stop()

    # -- one figure --------------------------------------------------------------------------------

    def _figure(self, session: PageSession, earlier: list[_Step], step: _Step, key: str) -> FigureResult:
        execute = self.config.execute
        if execute != "always" and self.cache is not None:
            capture = self.cache.get(key)
            if capture is not None:
                self.stats.cached += 1
                return FigureResult(capture=capture, cached=True, key=key)
        if execute == "never":
            self.stats.failed += 1
            failure = FigureFailure(
                "not-cached",
                "no cached output for this figure and execution is off (execute = 'never'): "
                "build once with execute = 'auto' and the same cache folder to create it",
                line=step.snippet.line,
            )
            return FigureResult(failure=failure, key=key)
        outcome = self._prepare(session, earlier, step)
        if outcome.failure is None:
            outcome = self._run(session, step, replay=False)
            self.stats.executed += 1
            if step.replayable:  # it ran (or raised) in the namespace, which now holds its effects
                self._worker_at = (session.serial, session.generation, len(earlier) + 1)
        if outcome.failure is not None:
            self.stats.failed += 1
            return FigureResult(failure=outcome.failure, seconds=outcome.seconds, key=key)
        assert outcome.capture is not None
        if self.cache is not None:
            try:
                self.cache.put(key, outcome.capture)
            except OSError as exc:  # a read-only folder, a file in the way, a full disk: go on without the cache
                self.warn(
                    f"modelvis: cannot write the figure cache in {self.cache.directory} ({exc}); "
                    "this build goes on without it: set the cache_dir setting to a writable folder"
                )
                self.cache = None
        return FigureResult(capture=outcome.capture, seconds=outcome.seconds, key=key)

    def _ensure_worker(self) -> None:
        forks = self._client.forks
        started = time.perf_counter()
        if self._client.ensure_started():
            seconds = time.perf_counter() - started
            self.stats.worker_starts += 1
            self.stats.start_seconds.append(seconds)
            self._worker_at = None
            self._worker_used = False
            if forks and not self._client.forks:
                self.progress(
                    f"modelvis: no template process to fork workers from ({self._client.template_failure}); "
                    "each worker is started as a new process"
                )
            if self._client.forks:
                # The first workers of a build wait for the template to import torch & co.; the others only fork.
                waited = self._client.waited
                note = f" ({waited:.2f} s of it waiting for the template to import)" if waited >= WAIT_NOTED else ""
                self.progress(f"modelvis: forked a worker process (pid {self._client.pid}) in {seconds:.2f} s{note}")
            else:
                self.progress(f"modelvis: started a worker process (pid {self._client.pid}) in {seconds:.2f} s")

    def _prepare(self, session: PageSession, earlier: list[_Step], step: _Step) -> _Outcome:
        """Bring the worker's namespace to just before this figure: reset, pre_code, replay what it has not run."""
        # What the template should import before it forks this page's worker: what its snippets import.
        for code in (*(done.snippet.code for done in earlier), step.snippet.code):
            self._client.preload_statements.update(dict.fromkeys(preload_statements(code)))
        try:
            self._ensure_worker()
        except (WorkerCrashed, WorkerTimeout) as exc:
            return _Outcome(failure=self._lost_worker(exc, None, "starting the worker process"))
        state = self._worker_at
        if state is not None and state[:2] == (session.serial, session.generation) and state[2] <= len(earlier):
            done = state[2]
        else:
            outcome = self._fresh_namespace(session)
            if outcome.failure is not None:
                return outcome
            done = 0
        for index in range(done, len(earlier)):
            previous = earlier[index]
            if previous.replayable:
                outcome = self._run(session, previous, replay=True)
                self.stats.replayed += 1
                self.progress(f"modelvis: {previous.snippet.location} ... {outcome.seconds:.1f} s (replayed)")
                if outcome.failure is not None and outcome.failure.kind in ("timeout", "crash"):
                    return outcome
            self._worker_at = (session.serial, session.generation, index + 1)
        return _Outcome()

    def _fresh_namespace(self, session: PageSession) -> _Outcome:
        try:
            if self._client.forks and self._worker_used:
                # A new namespace in a new worker, forked in milliseconds: nothing a page did (to modules,
                # to torch's settings) reaches the next, however Sphinx shares pages out among processes.
                self._client.close()
                self._ensure_worker()
            self._client.request({"op": "reset", "cwd": session.cwd}, timeout=HOUSEKEEPING_TIMEOUT)
        except (WorkerCrashed, WorkerTimeout) as exc:
            self._worker_at = None
            return _Outcome(failure=self._lost_worker(exc, None, "starting a new namespace"))
        self._worker_at = (session.serial, session.generation, 0)
        pre_code = self.config.pre_code
        if not pre_code.strip():
            return _Outcome()
        # With the site's settings (device, columns, timeout), as a figure that sets none runs.
        pre = _Step(Snippet(pre_code, PRE_CODE_FILENAME, 1), FigureOptions.of_site(self.config))
        outcome = self._run(session, pre, replay=True)
        self.progress(f"modelvis: pre_code for {session.page} ... {outcome.seconds:.1f} s")
        if outcome.failure is not None:
            self._worker_at = None
            failure = outcome.failure
            message = f"pre_code failed, so this page's figures cannot run: {failure.message}"
            outcome.failure = FigureFailure("pre-code", message, 0, failure.traceback, failure.seconds)
        return outcome

    def _run(self, session: PageSession, step: _Step, *, replay: bool) -> _Outcome:
        """Run one snippet in the worker's namespace; timeouts and crashes become failures."""
        snippet, options = step.snippet, step.options
        request = {
            "op": "run",
            "code": snippet.code,
            "filename": snippet.filename,
            "first_line": snippet.line,
            "expr": options.expr,
            "expr_line": snippet.expr_line,
            "settings": dataclasses.asdict(options.tree),
            "device": options.device,
            "columns": options.columns,
            "max_lines": options.max_lines,
            "replay": replay,
        }
        started = time.perf_counter()
        try:
            self._worker_used = True
            reply = self._client.request(request, timeout=options.timeout)
        except (WorkerCrashed, WorkerTimeout) as exc:
            step.replayable = False
            self._worker_at = None
            what = "replaying the earlier snippet at " + snippet.location if replay else "running the snippet"
            failure = self._lost_worker(exc, snippet, what, seconds=time.perf_counter() - started)
            return _Outcome(failure=failure, seconds=failure.seconds)
        seconds = float(reply.get("seconds", 0.0))
        if not replay:
            self.progress(f"modelvis: {snippet.location} ... {seconds:.1f} s")
        self._client.preload_modules.update(dict.fromkeys(reply.get("imported", ())))
        if reply["ok"]:
            capture = None if replay else Capture.from_json(reply["capture"])
            return _Outcome(capture=capture, seconds=seconds)
        kind = reply["kind"]
        message = reply["message"]
        if kind == "snippet":
            message = f"the snippet raised {message}"
        elif kind == "internal":
            message = f"sphinx-modelvis failed while running the snippet (please report this): {message}"
        if replay and kind != "internal":
            message = f"replaying the earlier snippet at {snippet.location}: {message}"
        line = int(reply["line"] or snippet.line)
        failure = FigureFailure(kind, message, line, reply.get("traceback") or "", seconds)
        return _Outcome(failure=failure, seconds=seconds)

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


def _last_words(output: str) -> str:
    """The end of what a worker wrote to stderr (a fault dump, a fatal error), without our own frames."""
    lines = [
        line
        for line in output.strip().splitlines()
        if not (line.lstrip().startswith("File ") and any(part in line for part in _MACHINERY))
        and not line.startswith("Extension modules:")
    ]
    return "\n".join(lines[-40:]).strip()


def cache_folder(config: ModelvisConfig, *, base: str | os.PathLike[str], default: str | os.PathLike[str]) -> Path:
    """The cache folder: ``config.cache_dir`` resolved against ``base``, or ``default`` when it is empty."""
    if not config.cache_dir:
        return Path(default)
    return Path(base, os.path.expanduser(config.cache_dir))
