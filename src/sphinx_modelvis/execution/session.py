"""Running a site's figures, host-neutral: one namespace per page in a reusable worker, the cache, failures as data.

A host (the Sphinx directive, the MkDocs plugin) makes one :class:`FigureRunner` per build, asks it
for the :class:`PageSession` of each page, runs the page's figures in page order with
:meth:`PageSession.run`, and gets a :class:`FigureResult` back: the capture to draw (already compared with
the earlier figure ``:compare:`` names), or a :class:`FigureFailure` to report at the page and line it
names. The host parses options and emits output; everything between is here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

from ..capture import Capture
from ..compare import compare_named, figure_key
from ..config import FigureOptions, ModelvisConfig
from ..errors import ModelvisError
from .cache import FigureCache, cache_folder, chain_key, package_versions, page_key
from .client import WorkerClient
from .results import FAILURE_KINDS, FAILURE_TITLES, FigureFailure, FigureResult, Snippet
from .steps import PageHistory, RunnerStats, Step, StepRunner
from .template import TemplateLink, forking_supported

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
        self.history = PageHistory(page, cwd, (serial, 0))
        self.named: dict[str, Capture] = {}
        self._key = runner.page_key

    def run(self, snippet: Snippet, options: FigureOptions) -> FigureResult:
        """The figure of ``snippet``: cached when every input matches, else run after the page's earlier snippets.

        Then, as on every host: compared with the earlier figure ``options.compare`` names (no such figure is an
        ``options`` failure at the figure's line), and kept under ``options.name`` for later comparisons.
        """
        if options.reset:
            generation = self.history.namespace[1] + 1
            self.history = PageHistory(self.page, self.cwd, (self.serial, generation))
            self._key = self.runner.page_key
        self._key = chain_key(self._key, snippet.code, options.execution_key())
        self.history.steps.append(Step(snippet, options))
        result = self._figure(snippet, self._key)
        if result.capture is None:
            return result
        shown = result.capture
        if options.compare:
            try:
                shown = compare_named(result.capture, self.named, options.compare, changes_only=options.changes_only)
            except ModelvisError as exc:
                line = snippet.expr_line or snippet.line
                return FigureResult(failure=FigureFailure("options", f":compare: {exc}", line), key=result.key)
        if options.name:
            self.named[figure_key(options.name)] = result.capture
        return FigureResult(capture=shown, cached=result.cached, seconds=result.seconds, key=result.key)

    def _figure(self, snippet: Snippet, key: str) -> FigureResult:
        """The capture of the page's last step, from the cache or the worker; a failure when neither gives one."""
        runner = self.runner
        execute = runner.config.execute
        if execute != "always" and runner.cache is not None:
            capture = runner.cache.get(key)
            if capture is not None:
                runner.stats.cached += 1
                return FigureResult(capture=capture, cached=True, key=key)
        if execute == "never":
            runner.stats.failed += 1
            missing = FigureFailure(
                "not-cached",
                "no cached output for this figure and execution is off (execute = 'never'): "
                "build once with execute = 'auto' and the same cache folder to create it",
                line=snippet.line,
            )
            return FigureResult(failure=missing, key=key)
        capture, failure, seconds = runner.steps.run(self.history)
        if failure is not None:
            runner.stats.failed += 1
            return FigureResult(failure=failure, seconds=seconds, key=key)
        assert capture is not None
        runner.store(key, capture)
        return FigureResult(capture=capture, seconds=seconds, key=key)


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
        self.page_key = page_key(config.pre_code, package_versions())
        template = TemplateLink(python=python) if config.fork_workers and forking_supported() else None
        self._client = WorkerClient(python=python, template=template)
        #: Runs the snippets that the cache does not answer for, in the worker.
        self.steps = StepRunner(self._client, config, stats=RunnerStats(), progress=lambda line: self.progress(line))
        self._pages: dict[str, PageSession] = {}
        self._serials = itertools.count(1)

    @property
    def stats(self) -> RunnerStats:
        """The counts of this runner's figures (a host may give it its own object to fill)."""
        return self.steps.stats

    @stats.setter
    def stats(self, stats: RunnerStats) -> None:
        self.steps.stats = stats

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

    def store(self, key: str, capture: Capture) -> None:
        """Put ``capture`` in the cache; a cache that cannot be written is warned about once, then left alone."""
        if self.cache is None:
            return
        try:
            self.cache.put(key, capture)
        except OSError as exc:  # a read-only folder, a file in the way, a full disk: go on without the cache
            self.warn(
                f"modelvis: cannot write the figure cache in {self.cache.directory} ({exc}); "
                "this build goes on without it: set the cache_dir setting to a writable folder"
            )
            self.cache = None

    def close(self) -> None:
        """Stop the worker and the template process, if any."""
        self._client.close()
        if self._client.template is not None:
            self._client.template.stop()
