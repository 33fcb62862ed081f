"""The MkDocs plugin: ```` ```{modelvis} ```` blocks in MkDocs pages become live figures, as in Sphinx with MyST."""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
from pathlib import Path
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin

from ..config import FigureOptions, ModelvisConfig, convert_options, parse_figure_options
from ..errors import ConfigError
from ..execution.cache import cache_folder
from ..execution.link import TemplateLink
from ..execution.session import FigureFailure, FigureRunner, PageSession, RunnerStats, Snippet
from ..rendering import page_figure
from ..rendering.assets import minified_css, written
from ..rendering.interactive import figure_assets
from ..targets import target_warnings
from .fences import ModelvisFence, find_fences
from .keys import KeyRoles
from .markup import figure_label, wrap_figure
from .serving import PageResult, file_states, keep_warm_seconds, page_digest, unchanged

__all__ = ["ModelvisPlugin"]

log = logging.getLogger("mkdocs.plugins.modelvis")

CSS_PATH = "assets/modelvis/modelvis.css"
#: The interactive figures' script (their stylesheet goes into the one above).
JS_PATH = "assets/modelvis/modelvis-figure.js"
_TOKEN = r"MODELVISFIGURE[0-9a-f]+X\d+"


class _Setting(c.BaseConfigOption[Any]):
    """An MkDocs config option for a :class:`ModelvisConfig` field: its default, and its own checks at load."""

    def __init__(self, setting: str, default: Any) -> None:
        super().__init__()
        self.setting = setting
        self.default = default

    def run_validation(self, value: object) -> Any:
        try:
            ModelvisConfig.check_setting(self.setting, value)
        except ConfigError as exc:
            raise c.ValidationError(str(exc)) from None
        return value


def _plugin_config_class() -> type[base.Config]:
    """The plugin's options: one per :class:`ModelvisConfig` field, same names, defaults, meaning and checks."""
    fields = {name: _Setting(name, default) for name, default, _help in ModelvisConfig.settings()}
    return type("ModelvisPluginConfig", (base.Config,), fields)


ModelvisPluginConfig = _plugin_config_class()


class ModelvisPlugin(BasePlugin[ModelvisPluginConfig]):  # type: ignore[valid-type, misc]
    """``plugins: [modelvis]``: runs each page's ``{modelvis}`` blocks, one namespace per page, and inlines figures."""

    def __init__(self) -> None:
        self.settings = ModelvisConfig()
        self.runner: FigureRunner | None = None
        #: The counts of the current (or last) build: ``stats.worker_starts == 0`` when every figure was cached.
        self.stats = RunnerStats()
        #: The HTML each placeholder of the current build stands for, and the anchor (``:name:``) it brings.
        self.figures: dict[str, str] = {}
        self.anchors: dict[str, str] = {}
        #: Under ``mkdocs serve``: what each page came to in the last build, reused while its source is unchanged.
        self.serving = False
        self.pages: dict[str, PageResult] = {}
        #: ``mkdocs serve``'s server (from ``on_serve``): told to watch each local file a figure depended on.
        self.server: Any = None
        #: The local files the figures of the current build depended on.
        self.dependencies: set[str] = set()
        self._watched: set[str] = set()
        self._warnings: list[str] = []
        self._page_dependencies: set[str] = set()
        self._page_conditions: dict[str, dict[str, Any]] = {}
        self._superfences = True
        self._extensions: tuple[list[Any], dict[str, Any]] = ([], {})
        self._markdown: Any = None
        #: The key roles' named figures; the URL of the page being read.
        self.keys = KeyRoles()
        self._page_url = ""
        #: The template kept warm across ``mkdocs serve``'s rebuilds, ended at ``on_shutdown``.
        self._kept: TemplateLink | None = None

    # -- configuration and lifetime -----------------------------------------------------------------

    def load_config(self, options: dict[str, Any], config_file_path: str | None = None) -> tuple[Any, Any]:
        """Each option checked as it loads (a bad value fails as a config error), then the settings made of them."""
        errors, warnings = super().load_config(options, config_file_path)
        if not errors:
            plugin_config: Any = self.config  # a ModelvisPluginConfig, which mypy cannot see through type()
            self.settings = ModelvisConfig.from_mapping(plugin_config)
        return errors, warnings

    def on_startup(self, *, command: str, dirty: bool) -> None:
        """``mkdocs serve`` keeps this plugin object across rebuilds: pages left unchanged are not run again."""
        self.serving = command == "serve"
        self.pages = {}
        self.keys = KeyRoles()

    def on_config(self, config: Any) -> Any:
        self.stats = RunnerStats()
        self.figures = {}
        self.anchors = {}
        self.dependencies = set()
        self._markdown = None
        self._extensions = (list(config.markdown_extensions), dict(config.mdx_configs))
        # Without superfences, Python-Markdown reads no indented fence: an indented block's code is then
        # rendered on its own (with the site's extensions) and put in the page like its figure.
        self._superfences = any("superfences" in _extension_name(ext) for ext in config.markdown_extensions)
        config_dir = Path(config.config_file_path or ".").resolve().parent
        # Relative to mkdocs.yml, not to the site folder: `mkdocs serve` builds into a temporary folder, and
        # should find what `mkdocs build` cached.
        self.cache_dir = cache_folder(self.settings.cache_dir, config_dir=config_dir, host="mkdocs")
        self.config_dir = config_dir
        if CSS_PATH not in config.extra_css:
            config.extra_css.append(CSS_PATH)
        if JS_PATH not in [str(script) for script in config.extra_javascript]:
            config.extra_javascript.append(_deferred_script(JS_PATH))
        return config

    def _runner(self) -> FigureRunner:
        if self.runner is None:
            self.runner = FigureRunner(
                self.settings,
                cache_dir=self.cache_dir,
                progress=log.info,
                warn=log.warning,
                explain=log.debug,  # `mkdocs build --verbose`: why each figure ran
                root=self.config_dir,
                keep_warm=keep_warm_seconds(self.settings.keep_warm, serving=self.serving),
                warm_owner=os.getpid() if self.serving else 0,  # a server killed without on_shutdown: it ends too
            )
            self.runner.stats = self.stats
            template = self.runner.template
            if template is not None and template.kept:
                self._kept = template
        return self.runner

    def on_post_build(self, config: Any) -> None:
        target = Path(config.site_dir, CSS_PATH)
        target.parent.mkdir(parents=True, exist_ok=True)
        # The stylesheet both hosts share (it only lays figures out: each figure paints its own background),
        # then what MkDocs themes need on top of it, then the interactive figures' own; minified as served.
        layout = written("sphinx_modelvis.sphinx", "modelvis.css")
        layout += written("sphinx_modelvis.mkdocs", "modelvis-mkdocs.css")
        figure_css, figure_js = figure_assets()
        target.write_text(minified_css(layout) + figure_css, encoding="utf-8")
        Path(config.site_dir, JS_PATH).write_text(figure_js, encoding="utf-8")
        self._watch()
        stats = self.stats
        tidied = self.runner.tidy_cache() if self.runner is not None else ""
        if stats.executed or stats.cached or stats.failed:
            log.info(
                "modelvis: %d figure(s) run, %d from the cache, %d failed; %d worker start(s)%s",
                stats.executed,
                stats.cached,
                stats.failed,
                stats.worker_starts,
                f"; {tidied}" if tidied else "",
            )
        self._close()

    def on_build_error(self, error: Exception) -> None:
        self._close()

    def on_serve(self, server: Any, *, config: Any, builder: Any) -> Any:
        """``mkdocs serve``: rebuild when a local file a figure depended on changes (the first build's files now,
        later builds' files as they are found)."""
        self.server = server
        self._watch()
        return server

    def _watch(self) -> None:
        if self.server is None:
            return
        for path in sorted(self.dependencies - self._watched):
            try:
                self.server.watch(path, recursive=False)
            except OSError:  # gone since: the next build that needs it runs its figure again anyway
                continue
            self._watched.add(path)

    def on_shutdown(self) -> None:
        """``mkdocs serve`` ends (or a build does, after ``on_startup``): so does the template it kept warm."""
        self._close()
        if self._kept is not None and self.serving:
            self._kept.end()
        self._kept = None
        self.serving = False
        self.pages = {}
        self.server = None
        self._watched = set()

    def _close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    # -- pages --------------------------------------------------------------------------------------

    def on_page_markdown(self, markdown: str, page: Any, config: Any, files: Any) -> str:
        if "{modelvis:key}" in markdown:  # the key roles, before Markdown reads their backticks
            markdown = self.keys.mark(markdown, page.file.src_uri, _front_matter_lines(page, markdown) + 1)
        self._page_url = page.url
        fences = find_fences(markdown)
        if not fences:
            return markdown
        src_path = page.file.src_uri
        source = page.file.abs_src_path
        runner = self._runner()
        page_id = hashlib.sha1(src_path.encode()).hexdigest()[:12]
        offset = _front_matter_lines(page, markdown)
        memo_key = page_digest(
            markdown, offset, source, self.settings, runner.page_key, self.cache_dir, self._superfences
        )
        remembered = self.pages.get(src_path) if self.serving else None
        if (
            remembered is not None
            and remembered.key == memo_key
            and unchanged(remembered.dependencies)
            # what no file's time shows: a distribution's version, a declared variable or glob
            and runner.checker.changed(remembered.conditions)[0] is None
        ):
            self.dependencies.update(remembered.dependencies)
            for message in remembered.warnings:
                log.warning(message)
            self.figures.update(remembered.figures)
            self.anchors.update(remembered.anchors)
            log.info("modelvis: %s unchanged since the last build: its %d figure(s) reused", src_path, len(fences))
            return remembered.markdown
        # Snippets run in the page's folder (the docs folder for a page a plugin generated).
        cwd = Path(source).parent if source and Path(source).is_file() else Path(config.docs_dir)
        session = runner.page(src_path, cwd=cwd)
        lines = markdown.split("\n")
        out: list[str] = []
        figures: dict[str, str] = {}
        anchors: dict[str, str] = {}
        self._warnings = []
        self._page_dependencies = set()
        self._page_conditions = {}
        cursor = 0
        try:
            for number, fence in enumerate(fences):
                out.extend(lines[cursor : fence.start])
                token = f"MODELVISFIGURE{page_id}X{number}"
                drawing, options = self._figure(fence, src_path, offset, session)
                code = fence.code if options.show_code and fence.code.strip() else ""
                if code and fence.indent and not self._superfences:
                    drawing = self._code_html(code) + drawing
                    code = ""
                figures[token] = drawing
                if options.name:
                    anchors[token] = options.name
                out.extend(_replacement(fence, token, code))
                cursor = fence.end
        finally:
            runner.end_page(src_path)
        out.extend(lines[cursor:])
        result = "\n".join(out)
        self.figures.update(figures)
        self.anchors.update(anchors)
        self.dependencies.update(self._page_dependencies)
        if self.serving:
            states = file_states(self._page_dependencies)
            page_result = PageResult(memo_key, result, figures, anchors, self._warnings, states, self._page_conditions)
            self.pages[src_path] = page_result
        return result

    def _figure(self, fence: ModelvisFence, page: str, offset: int, session: PageSession) -> tuple[str, FigureOptions]:
        """The figure's HTML (or an error box, carrying the figure's anchor), and the options it was made with."""
        try:
            options = parse_figure_options(fence.argument, fence.options, self.settings)
        except ConfigError as exc:
            failure = FigureFailure("options", f"{exc}; the figure was not run", _option_error_line(fence) + offset)
            return self._report(failure, page, failure.line), FigureOptions.of_site(self.settings)
        snippet = Snippet(fence.code, page, fence.code_line + offset, expr_line=fence.start + 1 + offset)
        result = session.run(snippet, options)
        self._page_dependencies.update(result.dependencies)
        for part, values in result.conditions.items():
            self._page_conditions.setdefault(part, {}).update(values)
        if result.failure is not None:
            box = self._report(result.failure, page, snippet.line)
            if options.name:  # links to the figure still land where it should have been
                box = f'<div id="{html.escape(options.name)}">{box}</div>'
            return box, options
        assert result.capture is not None
        if options.name:  # for the key roles of every page
            interactive = options.format == "interactive"
            self.keys.note_figure(options.name, result.capture, url=self._page_url, interactive=interactive)
        for warning in target_warnings(result.capture):  # entries of target_modules that matched nothing
            message = f"modelvis: {page}:{snippet.expr_line}: {warning}"
            log.warning(message)
            self._warnings.append(message)
        drawn: dict[str, Any] = {
            "format": options.format,
            "theme": options.theme,
            "width": options.columns,
            "label": figure_label(options),
            "open_depth": options.open_depth,
            "anchor": KeyRoles.anchor(options),
        }
        capture = result.capture
        # Drawn once: a later build with the same capture, options and renderer takes the markup from the cache.
        drawing = session.runner.page_markup(capture.to_json(), drawn, lambda: page_figure(capture, **drawn))
        return wrap_figure(drawing, options), options

    def _code_html(self, code: str) -> str:
        """``code`` as a Python code block, rendered by the site's own Markdown extensions."""
        import markdown

        if self._markdown is None:
            extensions, configs = self._extensions
            self._markdown = markdown.Markdown(extensions=extensions, extension_configs=configs)
        self._markdown.reset()
        return str(self._markdown.convert("\n".join(_code_fence(code))))

    def _report(self, failure: FigureFailure, page: str, line: int) -> str:
        """Warn (or stop the build) naming the page and line; the error box shown instead of the figure.

        ``line`` is the figure's own, for failures that name none (``pre_code``).
        """
        location = f"{page}:{failure.line or line}"
        if self.settings.on_error == "raise":
            raise PluginError(f"modelvis: {location}: {failure.report()}")
        message = f"modelvis: {location}: {failure.report()}"
        log.warning(message)
        self._warnings.append(message)
        title = failure.title
        trace = (
            f'<pre class="modelvis-traceback nohighlight"><code>{html.escape(failure.traceback.rstrip())}</code></pre>'
            if failure.traceback.strip()
            else ""
        )
        return (
            f'<div class="admonition failure danger modelvis-error" data-modelvis-failure="{failure.kind}">'
            f'<p class="admonition-title">{html.escape(title)}</p>'
            f"<p>{html.escape(location)}: {html.escape(failure.message)}</p>{trace}</div>"
        )

    def on_page_content(self, content: str, page: Any, config: Any, files: Any) -> str:
        def figure(match: re.Match[str]) -> str:
            token = match["token"] or match["bare"]
            anchor = self.anchors.pop(token, None)
            # MkDocs collected the page's anchors before the figures were in it; links to them are checked later.
            if anchor is not None and getattr(page, "present_anchor_ids", None) is not None:
                page.present_anchor_ids.add(anchor)
            return self.figures.pop(token, match[0])

        # In a tight list the placeholder is no paragraph of its own: take it bare too.
        return re.sub(rf"<p>\s*(?P<token>{_TOKEN})\s*</p>|(?P<bare>{_TOKEN})", figure, content)

    def on_post_page(self, output: str, page: Any, config: Any) -> str:
        """The key roles' links, now that every page's figures are known."""
        return self.keys.resolve(output, page.url)


def _option_error_line(fence: ModelvisFence) -> int:
    """The line of the first option whose value is invalid (the opening line when it is no single option)."""
    for name, value in fence.options.items():
        try:
            convert_options({name: value})
        except ConfigError:
            return fence.option_lines.get(name, fence.start + 1)
    return fence.start + 1


def _code_fence(code: str, indent: str = "") -> list[str]:
    """``code`` as an ordinary Python fence, longer than any run of backticks in it so that it cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    body = [indent + line if line.strip() else "" for line in code.rstrip("\n").split("\n")]
    return [f"{indent}{ticks}python", *body, f"{indent}{ticks}"]


def _replacement(fence: ModelvisFence, token: str, code: str) -> list[str]:
    """The code (if any) as an ordinary fence, which the site highlights as all its code; then the placeholder."""
    lines = [""]
    if code:
        lines += [*_code_fence(code, fence.indent), ""]
    return [*lines, f"{fence.indent}{token}", ""]


def _extension_name(extension: Any) -> str:
    """A Markdown extension's name as configured, or the module of an extension object."""
    return extension if isinstance(extension, str) else type(extension).__module__


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


def _deferred_script(path: str) -> Any:
    """``path`` as an ``extra_javascript`` entry loaded with ``defer`` (plain paths only before MkDocs 1.5)."""
    try:
        from mkdocs.config.config_options import ExtraScriptValue
    except ImportError:  # MkDocs before 1.5
        return path
    script = ExtraScriptValue(path)
    script.defer = True
    return script
