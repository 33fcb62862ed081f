"""The Sphinx extension: configuration values, the ``modelvis`` directive, its nodes and one visitor per builder."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError as SphinxConfigError
from sphinx.errors import SphinxError
from sphinx.util import logging

from .. import __version__
from ..config import ModelvisConfig
from ..errors import ConfigError, ModelvisError
from ..execution.session import FigureRunner, cache_folder

__all__ = ["ENV_VERSION", "ModelvisBuildError", "failed_pages", "modelvis_config", "runner_for", "setup"]

#: Bumped whenever what the directive stores on its nodes changes, so Sphinx re-reads every page.
ENV_VERSION = 2
#: The event that hands out the application's figure runner (directives reach it through ``env.events``).
RUNNER_EVENT = "modelvis-runner"

logger = logging.getLogger(__name__)


class ModelvisConfigError(ConfigError, SphinxConfigError):
    """An invalid ``modelvis_*`` value, reported by Sphinx as a configuration error."""


class ModelvisBuildError(ModelvisError, SphinxError):
    """A figure failed and ``modelvis_on_error = "raise"``: the build stops."""

    category = "modelvis error"


def _types(annotation: Any) -> tuple[type, ...]:
    """The Python types Sphinx should accept for a setting annotated ``annotation``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return tuple({type(value) for value in typing.get_args(annotation)})
    if origin in (typing.Union, types.UnionType):
        return tuple(kind for arg in typing.get_args(annotation) for kind in _types(arg))
    if annotation is float:
        return (int, float)
    return (annotation,)


def modelvis_config(config: Config) -> ModelvisConfig:
    """The ``modelvis_*`` values of a Sphinx configuration, validated: the one way the extension reads them."""
    values = {f"modelvis_{name}": getattr(config, f"modelvis_{name}") for name, _, _ in ModelvisConfig.settings()}
    try:
        return ModelvisConfig.from_mapping(values, prefix="modelvis_")
    except ConfigError as exc:
        raise ModelvisConfigError(str(exc)) from None


def _check_config(app: Sphinx, config: Config) -> None:
    modelvis_config(config)


class _Figures:
    """The figure runner of one Sphinx application in this process, made on first use."""

    def __init__(self) -> None:
        self._runner: FigureRunner | None = None

    def runner(self, app: Sphinx) -> FigureRunner:
        if self._runner is None:
            config = modelvis_config(app.config)
            cache = cache_folder(config.cache_dir, config_dir=app.confdir, host="sphinx")
            self._runner = FigureRunner(
                config,
                cache_dir=cache,
                progress=logger.info,
                warn=_warn_cache,
                explain=logger.verbose,  # -v: why each figure ran
                root=app.confdir,
            )
        return self._runner

    def before_reading(self, app: Sphinx, env: Any, docnames: list[str]) -> None:
        # Made here, before Sphinx forks its readers (-j): they all share the runner's template process.
        self.runner(app)

    def end_page(self, app: Sphinx, doctree: Any) -> None:
        if self._runner is not None:
            self._runner.end_page(app.env.docname)

    def close(self, app: Sphinx, exception: BaseException | None) -> None:
        if self._runner is not None:
            stats = self._runner.stats
            if stats.executed or stats.cached or stats.failed:  # counted in this process (not -j's readers)
                logger.info(
                    "modelvis: %d figure(s) from the cache, %d ran, %d failed",
                    stats.cached,
                    stats.executed,
                    stats.failed,
                )
            self._runner.close()


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


def _purge_page(app: Sphinx, env: Any, docname: str) -> None:
    failed_pages(env).discard(docname)


def _merge_pages(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    failed_pages(env).update(failed_pages(other) & set(docnames))


def _outdated_pages(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    return sorted((failed_pages(env) & env.found_docs) - added - changed - removed)


def _add_static_path(app: Sphinx) -> None:
    static = str(Path(__file__).parent / "static")
    if static not in app.config.html_static_path:
        app.config.html_static_path.append(static)
    if app.builder.format != "html":
        return
    # The interactive figures' stylesheet (its palettes made from theme.py) and script, once per page.
    from ..rendering.interactive import figure_assets

    generated = Path(app.doctreedir) / "modelvis-static"
    generated.mkdir(parents=True, exist_ok=True)
    css, script = figure_assets()
    for name, text in (("modelvis-figure.css", css), ("modelvis-figure.js", script)):
        path = generated / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    if str(generated) not in app.config.html_static_path:
        app.config.html_static_path.append(str(generated))
    app.add_css_file("modelvis-figure.css")
    app.add_js_file("modelvis-figure.js", loading_method="defer")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``modelvis`` directive, its configuration values, nodes and visitors."""
    from .directive import ModelvisDirective
    from .nodes import register_nodes

    hints = typing.get_type_hints(ModelvisConfig)
    # Sphinx 7.4 added the description of a value; older versions take none.
    described = "description" in inspect.signature(app.add_config_value).parameters
    for name, default, help in ModelvisConfig.settings():
        extra: dict[str, Any] = {"description": help} if described else {}
        app.add_config_value(f"modelvis_{name}", default, "env", types=_types(hints[name]), **extra)
    app.connect("config-inited", _check_config)
    app.add_directive("modelvis", ModelvisDirective)
    register_nodes(app)
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("modelvis.css")
    figures = _Figures()
    app.add_event(RUNNER_EVENT)
    app.connect(RUNNER_EVENT, figures.runner)
    app.connect("env-before-read-docs", figures.before_reading)
    app.connect("doctree-read", figures.end_page)
    app.connect("env-purge-doc", _purge_page)
    app.connect("env-merge-info", _merge_pages)
    app.connect("env-get-outdated", _outdated_pages)
    app.connect("build-finished", figures.close)
    return {
        "version": __version__,
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
