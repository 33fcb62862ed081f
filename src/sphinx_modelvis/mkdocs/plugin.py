"""The MkDocs plugin: ```` ```{modelvis} ```` blocks in MkDocs pages become live figures, as in Sphinx with MyST."""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin

from ..config import FigureOptions, ModelvisConfig, parse_figure_options
from ..errors import ConfigError
from ..execution.session import FigureFailure, FigureRunner, Snippet, cache_folder
from ..rendering import build_figure, render_figure
from .fences import ModelvisFence, find_fences

__all__ = ["ModelvisPlugin"]

log = logging.getLogger("mkdocs.plugins.modelvis")

CSS_PATH = "assets/modelvis/modelvis.css"


def _option_for(kind: Any, default: Any) -> c.BaseConfigOption[Any]:
    """An MkDocs config option accepting what the :class:`ModelvisConfig` field accepts (it validates the rest)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Literal:
        return c.Choice(args, default=default)
    accepted: tuple[type, ...] = tuple(arg for arg in args if arg is not type(None)) or (kind,)
    if float in accepted:
        accepted += (int,)
    if default is None:
        return c.Optional(c.Type(accepted))
    return c.Type(accepted, default=default)


def _plugin_config_class() -> type[base.Config]:
    """The plugin's options: one per :class:`ModelvisConfig` field, same names, defaults and meaning."""
    hints = typing.get_type_hints(ModelvisConfig)
    fields = {name: _option_for(hints[name], default) for name, default, _help in ModelvisConfig.settings()}
    return type("ModelvisPluginConfig", (base.Config,), fields)


ModelvisPluginConfig = _plugin_config_class()


class ModelvisPlugin(BasePlugin[ModelvisPluginConfig]):  # type: ignore[valid-type, misc]
    """``plugins: [modelvis]``: runs each page's ``{modelvis}`` blocks, one namespace per page, and inlines figures."""

    def __init__(self) -> None:
        self.settings = ModelvisConfig()
        self.runner: FigureRunner | None = None
        self.figures: dict[str, str] = {}

    # -- configuration and lifetime -----------------------------------------------------------------

    def on_config(self, config: Any) -> Any:
        plugin_config: Any = self.config  # a ModelvisPluginConfig, which mypy cannot see through type()
        values = {name: plugin_config[name] for name, _default, _help in ModelvisConfig.settings()}
        try:
            self.settings = ModelvisConfig.from_mapping(values)
        except ConfigError as exc:
            raise PluginError(f"modelvis plugin: {exc}") from None
        config_dir = Path(config.config_file_path or ".").resolve().parent
        site_dir = Path(config.site_dir).resolve()
        self.cache_dir = cache_folder(self.settings, base=config_dir, default=site_dir.parent / ".modelvis-cache")
        if CSS_PATH not in config.extra_css:
            config.extra_css.append(CSS_PATH)
        return config

    def _runner(self) -> FigureRunner:
        if self.runner is None:
            self.runner = FigureRunner(self.settings, cache_dir=self.cache_dir, progress=log.info)
        return self.runner

    def on_post_build(self, config: Any) -> None:
        target = Path(config.site_dir, CSS_PATH)
        target.parent.mkdir(parents=True, exist_ok=True)
        # One stylesheet for both hosts: it only lays figures out (each figure paints its own background).
        css = resources.files("sphinx_modelvis").joinpath("sphinx", "static", "modelvis.css").read_text("utf-8")
        target.write_text(css, encoding="utf-8")
        self._close()

    def on_build_error(self, error: Exception) -> None:
        self._close()

    def on_shutdown(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    # -- pages --------------------------------------------------------------------------------------

    def on_page_markdown(self, markdown: str, page: Any, config: Any, files: Any) -> str:
        fences = find_fences(markdown)
        if not fences:
            return markdown
        src_path = page.file.src_uri
        offset = _front_matter_lines(page, markdown)
        runner = self._runner()
        session = runner.page(src_path, cwd=Path(page.file.abs_src_path).parent)
        lines = markdown.split("\n")
        page_id = hashlib.sha1(src_path.encode()).hexdigest()[:12]
        out: list[str] = []
        cursor = 0
        try:
            for number, fence in enumerate(fences):
                out.extend(lines[cursor : fence.start])
                token = f"MODELVISFIGURE{page_id}X{number}"
                self.figures[token], show_code = self._figure(fence, src_path, offset, session)
                out.extend(_replacement(fence, token, show_code))
                cursor = fence.end
        finally:
            runner.end_page(src_path)
        out.extend(lines[cursor:])
        return "\n".join(out)

    def _figure(self, fence: ModelvisFence, page: str, offset: int, session: Any) -> tuple[str, bool]:
        """The figure's HTML (or an error box), and whether its code is shown above it."""
        try:
            options = parse_figure_options(fence.argument, fence.options, self.settings)
        except ConfigError as exc:
            failure = FigureFailure("options", str(exc), fence.start + 1 + offset)
            return self._report(failure, page), self.settings.show_code
        result = session.run(Snippet(fence.code, page, fence.code_line + offset), options)
        if result.failure is not None:
            return self._report(result.failure, page), options.show_code
        assert result.capture is not None
        figure = build_figure(result.capture, theme=options.theme, width=options.columns)
        drawing = render_figure(figure, options.format, label=options.alt or options.caption or "model structure")
        return _wrap(str(drawing), options), options.show_code

    def _report(self, failure: FigureFailure, page: str) -> str:
        location = f"{page}:{failure.line}"
        if self.settings.on_error == "raise":
            raise PluginError(f"modelvis: {location}: {failure.report()}")
        log.warning("%s: %s", location, failure.report())
        trace = f"<pre>{html.escape(failure.traceback.rstrip())}</pre>" if failure.traceback.strip() else ""
        return (
            '<div class="admonition failure modelvis-error"><p class="admonition-title">This figure failed</p>'
            f"<p>{html.escape(location)}: {html.escape(failure.message)}</p>{trace}</div>"
        )

    def on_page_content(self, content: str, page: Any, config: Any, files: Any) -> str:
        def figure(match: re.Match[str]) -> str:
            return self.figures.pop(match["token"], match[0])

        return re.sub(r"<p>(?P<token>MODELVISFIGURE[0-9a-f]+X\d+)</p>", figure, content)


def _replacement(fence: ModelvisFence, token: str, show_code: bool) -> list[str]:
    """The code as an ordinary fence (the site highlights it like any code), then a placeholder for the figure."""
    lines = [""]
    if show_code and fence.code.strip():
        lines += [f"{fence.indent}```python", *(fence.indent + line for line in fence.code.rstrip("\n").split("\n"))]
        lines += [f"{fence.indent}```", ""]
    return [*lines, f"{fence.indent}{token}", ""]


def _front_matter_lines(page: Any, markdown: str) -> int:
    """How many lines of the page source come before ``markdown`` (MkDocs strips the YAML front matter)."""
    source = getattr(page.file, "content_string", None)
    if not source:
        try:
            source = Path(page.file.abs_src_path).read_text(encoding="utf-8-sig")
        except OSError:
            return 0
    start = source.find(markdown.lstrip("\n")[:200]) if markdown.strip() else -1
    return source[:start].count("\n") if start > 0 else 0


def _wrap(drawing: str, options: FigureOptions) -> str:
    """``<figure>`` with ``<figcaption>``, the name as its id, and ``<details>`` for ``:collapse:``."""
    classes = ["modelvis-figure", *options.classes]
    if options.align:
        classes.append(f"align-{options.align}")
    style = f' style="width: {html.escape(options.width)}"' if options.width else ""
    inner = f'<div class="{" ".join(classes)}"{style}>{_one_block(drawing)}</div>'
    if options.caption:
        anchor = f' id="{html.escape(options.name)}"' if options.name else ""
        inner = (
            f'<figure class="modelvis"{anchor}>{inner}'
            f"<figcaption>{_inline_markdown(options.caption)}</figcaption></figure>"
        )
    elif options.name:
        inner = f'<div id="{html.escape(options.name)}">{inner}</div>'
    if options.collapse is not None:
        inner = (
            '<details class="modelvis-details"><summary class="modelvis-summary">'
            f"{_inline_markdown(options.collapse)}</summary>{inner}</details>"
        )
    return inner


def _one_block(drawing: str) -> str:
    """The drawing without blank lines, so Markdown post-processors keep it one HTML block."""
    return os.linesep.join(line for line in drawing.splitlines() if line.strip())


def _inline_markdown(text: str) -> str:
    """A caption or summary rendered as inline Markdown (code spans, emphasis, links)."""
    import markdown

    rendered = markdown.markdown(text)
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered.strip(), flags=re.S)
