"""The Sphinx extension: configuration values, the ``modelvis`` directive, its nodes and one visitor per builder."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

from .._version import __version__
from ..config import ModelvisConfig
from .build import (
    RUNNER_EVENT,
    ExtensionState,
    ModelvisBuildError,
    ModelvisConfigError,
    failed_pages,
    merge_pages,
    modelvis_config,
    outdated_pages,
    purge_page,
    runner_for,
)

__all__ = [
    "ENV_VERSION",
    "ModelvisBuildError",
    "ModelvisConfigError",
    "failed_pages",
    "modelvis_config",
    "runner_for",
    "setup",
]

#: Bumped whenever what the directive stores on its nodes changes, so Sphinx re-reads every page.
ENV_VERSION = 3


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


def page_assets() -> dict[str, str]:
    """What an HTML page with figures links once, by file name, minified as served (rendering/assets.py): the
    layout stylesheet (``static/modelvis.css``), the interactive figures' stylesheet (its palettes made from
    theme.py) and their script."""
    from ..rendering.assets import minified_css, written
    from ..rendering.interactive import figure_assets

    css, script = figure_assets()
    layout = minified_css(written(__name__, "modelvis.css"))
    return {"modelvis.css": layout, "modelvis-figure.css": css, "modelvis-figure.js": script}


#: The files :func:`page_assets` makes, as a build writes them.
ASSET_NAMES = ("modelvis.css", "modelvis-figure.css", "modelvis-figure.js")


def assets_made_from() -> str:
    """What the page's files are made from: this package's code and static files, and the minifiers' versions.
    While it stays, the files written last time stand, and a build skips importing the renderer and minifying them
    again (tens of milliseconds of a build whose figures all come from the cache)."""
    import rcssmin
    import rjsmin

    from ..execution.warm import package_state

    return f"sphinx-modelvis {package_state()}; rjsmin {rjsmin.__version__}; rcssmin {rcssmin.__version__}"


def _add_static_path(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    # Written where the doctrees are, so that a source tree never holds a generated file.
    generated = Path(app.doctreedir) / "modelvis-static"
    generated.mkdir(parents=True, exist_ok=True)
    stamp, made_from = Path(app.doctreedir) / "modelvis-static.made-from", assets_made_from()  # not in _static
    kept = all((generated / name).exists() for name in ASSET_NAMES)
    if not kept or not stamp.exists() or stamp.read_text(encoding="utf-8") != made_from:
        for name, text in page_assets().items():
            (generated / name).write_text(text, encoding="utf-8")
        stamp.write_text(made_from, encoding="utf-8")
    if str(generated) not in app.config.html_static_path:
        app.config.html_static_path.append(str(generated))
    app.add_css_file("modelvis-figure.css")
    app.add_js_file("modelvis-figure.js", loading_method="defer")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``modelvis`` directive, its configuration values, nodes and visitors."""
    from .directive import ModelvisDirective
    from .keyrole import register_key_role
    from .nodes import register_nodes

    hints = typing.get_type_hints(ModelvisConfig)
    # Sphinx 7.4 added the description of a value; older versions take none.
    described = "description" in inspect.signature(app.add_config_value).parameters
    for name, default, help in ModelvisConfig.settings():
        extra: dict[str, Any] = {"description": help} if described else {}
        app.add_config_value(f"modelvis_{name}", default, "env", types=_types(hints[name]), **extra)
    figures = ExtensionState()
    app.connect("config-inited", figures.check_config)
    app.add_directive("modelvis", ModelvisDirective)
    register_nodes(app)
    register_key_role(app)
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("modelvis.css")
    app.add_event(RUNNER_EVENT)
    app.connect(RUNNER_EVENT, figures.runner)
    app.connect("env-before-read-docs", figures.before_reading)
    app.connect("doctree-read", figures.end_page)
    app.connect("env-purge-doc", purge_page)
    app.connect("env-merge-info", merge_pages)
    app.connect("env-get-outdated", outdated_pages)
    app.connect("build-finished", figures.close)
    return {
        "version": __version__,
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
