"""Running a site's figures, host-neutral: one namespace per page in a reusable worker, the cache, failures as data.

A host (the Sphinx directive, the MkDocs plugin) makes one :class:`FigureRunner` per build, asks it
for the :class:`PageSession` of each page, runs the page's figures in page order with
:meth:`PageSession.run`, and gets a :class:`FigureResult` back: the capture to draw (already compared with
the earlier figure ``:compare:`` names), or a :class:`FigureFailure` to report at the page and line it
names. The host parses options and emits output; everything between is here.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from ..capture import Capture
from ..compare import compare_named, figure_key
from ..config import FigureOptions, ModelvisConfig
from ..errors import ModelvisError
from ..option_text import dependency_list
from .cache import FigureCache, cache_folder, chain_key, folder_key, package_versions, page_key
from .history import PageHistory, RunnerStats, Step
from .link import TemplateLink, forking_supported
from .manifest import DependencyChecker, declared_dependencies
from .markup import markup_key, renderer_state
from .results import FAILURE_KINDS, FAILURE_TITLES, FigureFailure, FigureResult, Snippet

if TYPE_CHECKING:
    from .client import WorkerClient
    from .steps import StepRunner

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


def site_dependencies(depends: str) -> tuple[str, ...]:
    """The site's declared dependencies (the ``depends`` setting) as a list."""
    return dependency_list(depends) if depends.strip() else ()


class PageSession:
    """One page: its figures run in page order, each seeing what the earlier ones defined, and its named figures.

    ``named`` holds the page's figures by :func:`~sphinx_modelvis.compare.figure_key` of their ``:name:``
    (as the snippet showed them), for a later ``:compare:``; a ``:reset:`` keeps them.
    """

    def __init__(self, runner: FigureRunner, page: str, *, cwd: str | None, serial: int) -> None:
        self.runner = runner
        self.page = page
        self.cwd = cwd
        self.serial = serial
        self.named: dict[str, Capture] = {}
        # The folder is part of every key: the same code in two folders may import two different modules.
        self._start = folder_key(runner.page_key, None if cwd is None else runner.checker.stored_path(cwd))
        self.history = PageHistory(page, cwd, (serial, 0), start=self._start)
        self._key = self._start
        self._figures = 0

    def run(self, snippet: Snippet, options: FigureOptions) -> FigureResult:
        """The figure of ``snippet``: cached when every input and dependency matches, else run after the page's
        earlier snippets.

        Then, as on every host: compared with the earlier figure ``options.compare`` names (no such figure is an
        ``options`` failure at the figure's line), and kept under ``options.name`` for later comparisons.
        """
        if options.reset:
            generation = self.history.namespace[1] + 1
            self.history = PageHistory(self.page, self.cwd, (self.serial, generation), start=self._start)
            self._key = self._start
        previous = self._key
        execution = options.execution_key()
        self._key = chain_key(previous, snippet.code, execution)
        self.history.steps.append(Step(snippet, options))
        self._figures += 1
        inputs = _Inputs(self._start, previous, _digest_text(snippet.code), _digest_text(repr(execution)))
        result = self._figure(snippet, options, self._key, inputs)
        if result.capture is None:
            return result
        shown = result.capture
        if options.compare:
            try:
                shown = compare_named(result.capture, self.named, options.compare, changes_only=options.changes_only)
            except ModelvisError as exc:
                line = snippet.expr_line or snippet.line
                failure = FigureFailure("options", f":compare: {exc}", line)
                return replace(result, capture=None, failure=failure)
        if options.name:
            self.named[figure_key(options.name)] = result.capture
        return replace(result, capture=shown)

    def _figure(self, snippet: Snippet, options: FigureOptions, key: str, inputs: _Inputs) -> FigureResult:
        """The capture of the page's last step, from the cache or the worker; a failure when neither gives one."""
        runner = self.runner
        execute = runner.config.execute
        checker = runner.checker
        folder = None if self.cwd is None else checker.stored_path(self.cwd)  # the same in another checkout
        figure = f"{self.page}\0{folder}\0{self._figures}"
        reason = "the cache is off" if runner.cache is None else "execute = 'always'"
        if execute != "always" and runner.cache is not None:
            entry = runner.cache.entry(key)
            if entry is None:
                reason = self._why(figure, inputs)
            else:
                changed, moved = checker.changed(entry.depends)
                if changed is None:
                    runner.stats.cached += 1
                    runner.cache.touch(key)  # used: a prune keeps it
                    if moved:  # same contents, new mtimes (a fresh checkout): the next build need not digest
                        runner.store(key, entry.capture, checker.refreshed(entry.depends))
                    files = tuple(checker.local_files(entry.depends))
                    conditions = _conditions(entry.depends)
                    return FigureResult(
                        capture=entry.capture, cached=True, key=key, dependencies=files, conditions=conditions
                    )
                reason = changed
        if execute == "never":
            runner.stats.failed += 1
            missing = FigureFailure(
                "not-cached",
                f"no cached output for this figure ({reason}) and execution is off (execute = 'never'): "
                "build once with execute = 'auto' and the same cache folder to create it",
                line=snippet.line,
            )
            return FigureResult(failure=missing, key=key, reason=reason)
        runner.explain(f"modelvis: {snippet.location}: ran: {reason}")
        ran = runner.steps.run(self.history)
        if ran.failure is not None:
            runner.stats.failed += 1
            return FigureResult(failure=ran.failure, seconds=ran.seconds, key=key, reason=reason)
        assert ran.capture is not None
        declared = [*runner.declared, *declared_dependencies(options.depends, self.cwd)]
        manifest = checker.manifest(ran.files, ran.distributions, declared)
        runner.store(key, ran.capture, manifest)
        runner.remember(figure, {"key": key, **inputs._asdict()})
        files = tuple(checker.local_files(manifest))
        return FigureResult(
            capture=ran.capture,
            seconds=ran.seconds,
            key=key,
            dependencies=files,
            conditions=_conditions(manifest),
            reason=reason,
        )

    def _why(self, figure: str, inputs: _Inputs) -> str:
        """Why a figure with no cache entry runs, from what it last ran with."""
        assert self.runner.cache is not None
        last = self.runner.cache.last_run(figure)
        if not last:
            return "new"
        if last.get("code") != inputs.code:
            return "code changed"
        if last.get("options") != inputs.options:
            return "options changed"
        if last.get("start") != inputs.start:
            return "pre_code, the folder, the declared site dependencies or package versions changed"
        if last.get("previous") != inputs.previous:
            return "an earlier snippet of the page changed"
        return "not in the cache"


class _Inputs(NamedTuple):
    """What a figure's key is made of, as digests: kept to say why it ran again."""

    start: str
    previous: str
    code: str
    options: str


def _conditions(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a manifest that no file's time shows: distributions' versions, declared environment
    variables, the files declared globs match."""
    return {part: dict(manifest[part]) for part in ("distributions", "env", "globs") if manifest.get(part)}


def _digest_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class FigureRunner:
    """Runs the figures of one build: page sessions, one worker process (started when first needed), the cache.

    ``cache_dir`` ``None`` means no cache. ``progress`` receives one line per snippet that ran
    (``modelvis: page.rst:12 ... 4.2 s``); ``live`` (by default ``progress``) the lines said while one runs:
    its start, and ``still running`` every ``progress_interval`` seconds. A build whose figures are all cached
    starts no worker and never imports torch in this process. ``keep_warm`` seconds (more than 0) keep the
    template process for the next build, and, if ``warm_owner`` is a process id, not longer than that process
    (see :class:`~sphinx_modelvis.execution.link.TemplateLink`). ``jobs`` processes of the build running
    workers at once (Sphinx's ``-j``) give each worker started outside ``build_pid`` a share of the cores.
    """

    def __init__(
        self,
        config: ModelvisConfig,
        *,
        cache_dir: str | os.PathLike[str] | None,
        progress: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        explain: Callable[[str], None] | None = None,
        live: Callable[[str], None] | None = None,
        root: str | os.PathLike[str] | None = None,
        python: str | None = None,
        keep_warm: float = 0.0,
        warm_owner: int = 0,
        jobs: int = 1,
        build_pid: int | None = None,
    ) -> None:
        self.config = config
        self.cache = FigureCache(cache_dir) if cache_dir is not None else None
        self.progress: Callable[[str], None] = progress or (lambda message: None)
        self.warn: Callable[[str], None] = warn or self.progress
        #: Receives why each figure that ran did (``modelvis: index.rst:5: ran: mylib.py changed``).
        self.explain: Callable[[str], None] = explain or (lambda message: None)
        #: Makes and checks the cache entries' dependency manifests; paths relative to ``root`` (the site's folder).
        self.checker = DependencyChecker(root)
        #: The site's declared dependencies (``depends``), made absolute.
        self.declared = declared_dependencies(site_dependencies(config.depends), self.checker.root)
        self.page_key = page_key(config.pre_code, package_versions(), site_dependencies(config.depends))
        template = None
        if config.fork_workers and forking_supported():
            # Kept warm (``keep_warm`` seconds): the template of the site's cache folder, found by the next build.
            template = TemplateLink(
                python=python,
                keep_warm=keep_warm,
                cache_dir=cache_dir if cache_dir is not None else root,
                pre_code=config.pre_code,
                report=lambda line: self.progress(line),
                warm_owner=warm_owner,
            )
        # Made before Sphinx forks its readers (-j), so that they all share one template; it starts nothing yet.
        self._template = template
        self._python = python
        self._jobs = jobs
        self._build_pid = build_pid
        #: Receives the lines said while a snippet runs (its start, ``still running``): ``progress`` by default.
        self.live: Callable[[str], None] = live or (lambda message: self.progress(message))
        self._stats = RunnerStats()
        #: The worker client and the step runner, made when a figure first runs (see :attr:`steps`).
        self._client: WorkerClient | None = None
        self._steps: StepRunner | None = None
        self._pages: dict[str, PageSession] = {}
        self._serials = itertools.count(1)
        self._renderer: str | None = None

    @property
    def steps(self) -> StepRunner:
        """Runs the snippets that the cache does not answer for, in the worker: made when first needed, so that a
        build whose figures all come from the cache imports none of the worker machinery."""
        if self._steps is None:
            from .client import WorkerClient
            from .steps import StepRunner

            self._client = WorkerClient(
                python=self._python, template=self._template, jobs=self._jobs, build_pid=self._build_pid
            )
            self._steps = StepRunner(
                self._client,
                self.config,
                stats=self._stats,
                progress=lambda line: self.progress(line),
                live=lambda line: self.live(line),
                checker=self.checker,
                declared=self.declared,
            )
        return self._steps

    @property
    def stats(self) -> RunnerStats:
        """The counts of this runner's figures (a host may give it its own object to fill)."""
        return self._stats

    @stats.setter
    def stats(self, stats: RunnerStats) -> None:
        self._stats = stats
        if self._steps is not None:
            self._steps.stats = stats

    @property
    def template(self) -> TemplateLink | None:
        """The link to the template process workers are forked from (``None``: each is a new process)."""
        return self._template

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while one is running in this process."""
        return None if self._client is None else self._client.pid

    def page(self, page: str, *, cwd: str | os.PathLike[str] | None = None) -> PageSession:
        """The session of ``page``: the open one, or a new namespace (``cwd``: the snippets' working directory)."""
        session = self._pages.get(page)
        if session is None:
            session = PageSession(self, page, cwd=None if cwd is None else str(cwd), serial=next(self._serials))
            self._pages[page] = session
        return session

    def end_page(self, page: str) -> None:
        """Forget ``page``'s session: the next :meth:`page` call for it starts a fresh namespace.

        A worker forked for the page ends with it, and with it whatever its snippets started (a server, a
        ``sleep``): the next page gets a new one in milliseconds anyway. A worker started as a new process is
        kept for the next page (it takes seconds to start): it ends what the snippets started when it starts
        the next page's namespace.
        """
        session = self._pages.pop(page, None)
        client = self._client  # None: no figure ran in this process, no worker to end
        if session is None or client is None:
            return
        if client.forks and client.namespace == session.history.namespace:
            client.close()

    def store(self, key: str, capture: Capture, depends: Mapping[str, Any] | None = None) -> None:
        """Put ``capture`` in the cache with its dependency manifest; a cache that cannot be written is warned
        about once, then left alone."""
        self._write(lambda cache: cache.put(key, capture, depends))

    def page_markup(self, capture: str, options: Mapping[str, Any], draw: Callable[[], str]) -> str:
        """A figure as drawn for a page: ``draw()``, or what it gave a build before for the same ``capture`` (JSON),
        ``options`` (all of :data:`~sphinx_modelvis.execution.markup.PAGE_FIGURE_OPTIONS`) and renderer code,
        kept in the cache."""
        cache = self.cache
        if cache is None:
            return draw()
        if self._renderer is None:  # once a build: its files' times, the versions
            self._renderer = renderer_state()
        key = markup_key(capture, options, self._renderer)
        stored = cache.markup(key)
        if stored is not None:
            return stored
        markup = draw()
        # Kept only to spare the next build drawing it: a cache that cannot be written (a read-only copy, a file
        # in the way) costs that, and is no reason to warn (the figures themselves are all there).
        with contextlib.suppress(OSError):
            cache.put_markup(key, markup)
        return markup

    def remember(self, figure: str, record: Mapping[str, Any]) -> None:
        """Keep what ``figure`` ran with in the cache, to say why it runs again."""
        self._write(lambda cache: cache.remember_run(figure, record))

    def _write(self, write: Callable[[FigureCache], object]) -> None:
        if self.cache is None:
            return
        try:
            write(self.cache)
        except OSError as exc:  # a read-only folder, a file in the way, a full disk: go on without the cache
            self.warn(
                f"modelvis: cannot write the figure cache in {self.cache.directory} ({exc}); "
                "this build goes on without it: set the cache_dir setting to a writable folder"
            )
            self.cache = None

    def tidy_cache(self) -> str:
        """At the end of a build: remove the cache entries no build used for ``cache_max_age`` days (0: none),
        and say what the cache holds (``cache: 12 entries, 3.4 MB in ...; removed ...``); empty without a cache."""
        cache = self.cache
        if cache is None:
            return ""
        max_age = self.config.cache_max_age
        removed = cache.prune(max_age) if max_age > 0 else None
        note = f"cache: {cache.usage()} in {cache.directory}"
        if removed is not None and removed.size:
            note += f"; removed {removed}, unused for {max_age:g} days"
        return note

    def close(self) -> None:
        """Stop the worker and the template process, if any (a kept one is left for the next build, told what
        this build's workers imported)."""
        client = self._client
        if client is not None and self._steps is not None:
            client.close()
            self._steps.finish()
        template = self._template
        if template is not None:
            if template.kept and client is not None and client.forks:
                template.prepare(client.preload_statements, client.preload_modules)
            template.stop()
