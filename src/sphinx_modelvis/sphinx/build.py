"""The extension's side of one Sphinx build: its configuration (validated once), its figure runner, the pages
with a failed figure, and the errors that end a build. The directive and ``setup`` both import it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError as SphinxConfigError
from sphinx.errors import SphinxError
from sphinx.util import logging

from ..config import ModelvisConfig
from ..errors import ConfigError, ModelvisError
from ..execution.cache import cache_folder
from ..execution.manifest import DependencyChecker
from ..execution.session import FigureRunner

__all__ = [
    "KEEP_WARM_UNDER_AUTOBUILD",
    "RUNNER_EVENT",
    "ExtensionState",
    "ModelvisBuildError",
    "ModelvisConfigError",
    "failed_pages",
    "merge_pages",
    "modelvis_config",
    "outdated_pages",
    "purge_page",
    "runner_for",
    "under_sphinx_autobuild",
]

#: The event that hands out the application's figure runner (directives reach it through ``env.events``).
RUNNER_EVENT = "modelvis-runner"

logger = logging.getLogger(__name__)

#: How long the template is kept between builds under ``sphinx-autobuild`` when ``modelvis_keep_warm`` is unset.
KEEP_WARM_UNDER_AUTOBUILD = 900.0


class ModelvisConfigError(ConfigError, SphinxConfigError):
    """An invalid ``modelvis_*`` value, reported by Sphinx as a configuration error."""


class ModelvisBuildError(ModelvisError, SphinxError):
    """A figure failed and ``modelvis_on_error = "raise"``: the build stops."""

    category = "modelvis error"


def modelvis_config(config: Config) -> ModelvisConfig:
    """The ``modelvis_*`` values of a Sphinx configuration, validated: the one way the extension reads them."""
    values = {f"modelvis_{name}": getattr(config, f"modelvis_{name}") for name, _, _ in ModelvisConfig.settings()}
    try:
        return ModelvisConfig.from_mapping(values, prefix="modelvis_")
    except ConfigError as exc:
        raise ModelvisConfigError(str(exc)) from None


class ExtensionState:
    """The site configuration of one Sphinx application, validated once, and its figure runner, made on first use."""

    def __init__(self) -> None:
        #: The build's first process (``setup`` runs there); parallel readers are forked from it.
        self.pid = os.getpid()
        self._config: ModelvisConfig | None = None
        self._runner: FigureRunner | None = None
        self._counted: tuple[int, int, int] = (0, 0, 0)

    def check_config(self, app: Sphinx, config: Config) -> None:
        """Validate the ``modelvis_*`` values once, when Sphinx has read ``conf.py`` and the command line."""
        self._config = modelvis_config(config)

    def runner(self, app: Sphinx) -> FigureRunner:
        if self._runner is None:
            config = self._config
            assert config is not None, "config-inited comes first"
            cache = cache_folder(config.cache_dir, config_dir=app.confdir, host="sphinx")
            keep_warm = config.keep_warm
            autobuild = under_sphinx_autobuild()
            if keep_warm is None:  # unset: kept while an author works (sphinx-autobuild), not in one-shot builds
                keep_warm = KEEP_WARM_UNDER_AUTOBUILD if autobuild else 0.0
            self._runner = FigureRunner(
                config,
                cache_dir=cache,
                progress=logger.info,
                warn=_warn_cache,
                explain=logger.verbose,  # -v: why each figure ran
                live=_LiveLines(app),
                root=app.confdir,
                keep_warm=keep_warm,
                warm_owner=os.getppid() if autobuild else 0,  # sphinx-autobuild stopped: nobody to keep it for
                jobs=app.parallel,
                build_pid=self.pid,
            )
        return self._runner

    def before_reading(self, app: Sphinx, env: Any, docnames: list[str]) -> None:
        # Made here, before Sphinx forks its readers (-j): they all share the runner's template process.
        runner = self.runner(app)
        env.modelvis_counts = {}  # this build's figures, per page: filled by whichever process reads the page
        self._counted = _counts(runner)

    def end_page(self, app: Sphinx, doctree: Any) -> None:
        if self._runner is not None:
            self._runner.end_page(app.env.docname)
            # Pages are read one after another in a process, so what the counts gained is this page's.
            now = _counts(self._runner)
            before = self._counted
            page = (now[0] - before[0], now[1] - before[1], now[2] - before[2])
            self._counted = now
            if any(page):
                build_counts(app.env)[app.env.docname] = page

    def close(self, app: Sphinx, exception: BaseException | None) -> None:
        if self._runner is not None:
            # Summed over the pages this build read, in this process or in -j's readers (merged into the env).
            pages = build_counts(app.env).values()
            cached, executed, failed = (sum(column) for column in zip((0, 0, 0), *pages, strict=True))
            counts = f"{cached} figure(s) from the cache, {executed} ran, {failed} failed"
            tidied = self._runner.tidy_cache()
            if executed or cached or failed:
                logger.info("modelvis: %s%s", counts, f"; {tidied}" if tidied else "")
            elif tidied:
                logger.info("modelvis: %s", tidied)
            self._runner.close()


def under_sphinx_autobuild() -> bool:
    """Whether this build runs under ``sphinx-autobuild``.

    ``sphinx-autobuild`` runs ``python -m sphinx build ...`` (``python -m sphinx`` before Sphinx 7.2.3) as a
    new process for each rebuild, so this process's parent is the ``sphinx-autobuild`` process: its command
    line (read from ``/proc``) names the ``sphinx-autobuild`` script or the ``sphinx_autobuild`` module.
    (Whether ``sphinx_autobuild`` is imported here says nothing: a test suite may import it and build in
    its own process.)
    """
    try:
        command = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:  # no /proc here (and no template to keep either: forking is Linux's)
        return False
    # The interpreter, then the script (…/bin/sphinx-autobuild) or `-m sphinx_autobuild`: within the first three.
    names = {os.path.basename(part.decode(errors="replace")) for part in command[:3]}
    return bool(names & {"sphinx-autobuild", "sphinx_autobuild", "sphinx-autobuild.exe"})


class _LiveLines:
    """Where the lines said while a snippet runs go: Sphinx's log, or, in a reader process of a ``-j`` build
    (whose log Sphinx holds back until the reader's pages are done), straight to the build's status stream."""

    def __init__(self, app: Sphinx) -> None:
        self.app = app
        self.pid = os.getpid()

    def __call__(self, line: str) -> None:
        if os.getpid() == self.pid:
            logger.info(line)
            return
        status = getattr(self.app, "_status", None)  # None under -q, like Sphinx's own progress
        if status is not None:
            with contextlib.suppress(OSError, ValueError):
                status.write(line + "\n")
                status.flush()


def _counts(runner: FigureRunner) -> tuple[int, int, int]:
    """The runner's figures so far, in this process: from the cache, ran, failed."""
    return (runner.stats.cached, runner.stats.executed, runner.stats.failed)


def build_counts(env: Any) -> dict[str, tuple[int, int, int]]:
    """Per page read by this build: its figures from the cache, ran and failed (see :func:`merge_pages`)."""
    if not hasattr(env, "modelvis_counts"):
        env.modelvis_counts = {}
    counts: dict[str, tuple[int, int, int]] = env.modelvis_counts
    return counts


def _warn_cache(message: str) -> None:
    logger.warning(message, type="modelvis", subtype="cache")


def runner_for(app: Sphinx | Any) -> FigureRunner:
    """The figure runner of a Sphinx application (``app``, or anything with its ``events``, like ``env``)."""
    runner = app.events.emit_firstresult(RUNNER_EVENT)
    assert isinstance(runner, FigureRunner)
    return runner


def failed_pages(env: Any) -> set[str]:
    """The pages of ``env`` with a failed figure: read again by every build until they pass.

    A failure is not cached, so without this an incremental build would keep the error box without a
    warning (and ``-W`` would pass).
    """
    if not hasattr(env, "modelvis_failed_docs"):
        env.modelvis_failed_docs = set()  # pickled with the environment
    failed: set[str] = env.modelvis_failed_docs
    return failed


def page_conditions(env: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Per page, what its figures depended on that no file's time shows (distributions' versions, declared
    environment variables and globs): a page whose conditions changed is read again, as one whose files did."""
    if not hasattr(env, "modelvis_conditions"):
        env.modelvis_conditions = {}  # pickled with the environment
    conditions: dict[str, dict[str, dict[str, Any]]] = env.modelvis_conditions
    return conditions


def note_conditions(env: Any, conditions: Mapping[str, Mapping[str, Any]]) -> None:
    """Add a figure's conditions to its page's."""
    if conditions:
        page = page_conditions(env).setdefault(env.docname, {})
        for part, values in conditions.items():
            page.setdefault(part, {}).update(values)


def purge_page(app: Sphinx, env: Any, docname: str) -> None:
    """``env-purge-doc``: a page read again starts with no failed figure and no conditions."""
    failed_pages(env).discard(docname)
    page_conditions(env).pop(docname, None)


def merge_pages(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    """``env-merge-info``: the failed pages, the conditions and the figure counts a parallel reader found."""
    failed_pages(env).update(failed_pages(other) & set(docnames))
    theirs_counted = build_counts(other)
    build_counts(env).update({docname: theirs_counted[docname] for docname in docnames if docname in theirs_counted})
    theirs = page_conditions(other)
    page_conditions(env).update({docname: theirs[docname] for docname in docnames if docname in theirs})


def outdated_pages(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """``env-get-outdated``: the pages with a failed figure, or whose conditions changed, are read again."""
    checker = DependencyChecker(app.confdir)
    stale = {docname for docname, page in page_conditions(env).items() if checker.changed(page)[0] is not None}
    return sorted(((failed_pages(env) | stale) & env.found_docs) - added - changed - removed)
