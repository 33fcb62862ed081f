"""The ``modelvis`` directive: runs its snippet in the page's namespace and records the output on a node."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from ..config import OPTION_SPEC, FigureOptions, resolve_figure_options
from ..errors import ConfigError
from ..execution.results import FigureFailure, Snippet
from ..keys import anchor_prefix
from ..targets import target_warnings
from .build import ModelvisBuildError, failed_pages, note_conditions, runner_for
from .keyrole import note_named_figure
from .nodes import modelvis_details, modelvis_figure, modelvis_summary

__all__ = ["ModelvisDirective"]

logger = logging.getLogger(__name__)


class ModelvisDirective(SphinxDirective):
    """``.. modelvis:: [EXPR]``: a live figure of what the Python content shows (or of EXPR's tree)."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = dict(OPTION_SPEC)

    def run(self) -> list[nodes.Node]:
        """Run the snippet (or take it from the cache) and return the code block and the figure."""
        runner = runner_for(self.env)
        try:
            options = resolve_figure_options(self.arguments[0] if self.arguments else None, self.options, runner.config)
        except ConfigError as exc:
            raise self.error(f"modelvis: {exc}") from None
        source, line = self._code_position()
        code = "\n".join(self.content) + "\n" if self.content else ""
        snippet = Snippet(code, self._display_name(source), line, expr_line=self.lineno)
        cwd = os.path.dirname(source) if os.path.isfile(source) else str(self.env.srcdir)
        result = runner.page(self.env.docname, cwd=cwd).run(snippet, options)
        # An incremental build reads the page again when one of them changes. The page's figures mostly share
        # theirs (the page's earlier snippets' are every later figure's too): each is noted once a page.
        noted = cast("set[str]", self.env.temp_data.setdefault("modelvis_noted", set()))
        for path in result.dependencies:
            if path not in noted:
                noted.add(path)
                self.env.note_dependency(path)
        note_conditions(self.env, result.conditions)  # and when a distribution's version or a variable changes

        output: nodes.Element
        if result.failure is not None and result.failure.kind == "options":  # the markup is wrong: nothing ran
            raise self.error(f"modelvis: {result.failure.message}")
        if result.failure is not None:
            output = self._report(result.failure, source, snippet)
        else:
            assert result.capture is not None
            for warning in target_warnings(result.capture):  # entries of target_modules that matched nothing
                location = f"{source}:{self.lineno}"
                logger.warning("modelvis: %s", warning, location=location, type="modelvis", subtype="targets")
                failed_pages(self.env).add(self.env.docname)  # read again, so an incremental build warns again
            output = modelvis_figure(
                "",
                capture=result.capture.to_json(),
                theme=options.theme,
                format=options.format,
                columns=options.columns,
                open_depth=-1 if options.open_depth is None else options.open_depth,
                alt=options.alt or "",
                width=options.width or "",
                align=options.align or "",
                classes=list(options.classes),
                anchor=anchor_prefix(options.name) if options.name and options.format == "interactive" else "",
            )
            self.set_source_info(output)
        shown: list[nodes.Node] = []
        if options.show_code and code.strip():
            block = nodes.literal_block(code, code, language="python", classes=["modelvis-code"])
            block.source, block.line = source, line
            shown.append(block)
        wrapped = self._wrap(output, options)
        shown.append(wrapped)
        if options.name and result.capture is not None:  # for the key roles: its keys, its lines' anchors
            ids = wrapped["ids"] or (wrapped.children[1]["ids"] if isinstance(wrapped, modelvis_details) else [])
            interactive = options.format == "interactive"
            note_named_figure(
                self.env, options.name, result.capture, interactive=interactive, figure_id=ids[0] if ids else ""
            )
        return shown

    def _code_position(self) -> tuple[str, int]:
        """The source file of the content and the line of its first line there (includes resolved)."""
        if type(self.state_machine).__module__.startswith("myst_parser"):
            # MyST numbers the content from 0 and gives its offset from the directive's first line.
            source = self.content.source(0) if self.content else self.state.document["source"]
            line = self.lineno + (self.content_offset + 1 if self.content else 0)
            return os.path.abspath(source), line
        if self.content:
            source, offset = self.content.info(0)
            if source and offset is not None:
                return os.path.abspath(source), int(offset) + 1
        source, line = self.get_source_info()
        return os.path.abspath(source), int(line or self.lineno)

    def _display_name(self, source: str) -> str:
        """The source as tracebacks show it: relative to the source folder when inside it."""
        srcdir = Path(self.env.srcdir)
        try:
            return Path(source).resolve().relative_to(srcdir.resolve()).as_posix()
        except ValueError:
            return source

    def _wrap(self, output: nodes.Element, options: FigureOptions) -> nodes.Element:
        """Caption and name as on ``figure``; ``:collapse:`` puts it all in a closed ``<details>``."""
        wrapped = output
        if options.caption:
            figure = nodes.figure("", output)
            self.set_source_info(figure)
            if options.align:
                figure["align"] = options.align
            # What SphinxDirective.parse_inline does (Sphinx 7.4+), here for older versions too.
            parsed, messages = self.state.inline_text(options.caption, self.lineno)
            caption = nodes.caption(options.caption, "", *parsed)
            self.set_source_info(caption)
            figure += caption
            figure += messages
            wrapped = figure
        if options.name:
            self.add_name(wrapped)
        if options.collapse is not None:
            parsed, messages = self.state.inline_text(options.collapse, self.lineno)
            details = modelvis_details("", modelvis_summary(options.collapse, "", *parsed), wrapped, *messages)
            self.set_source_info(details)
            return details
        return wrapped

    def _report(self, failure: FigureFailure, source: str, snippet: Snippet) -> nodes.Element:
        """Warn (or stop the build) at the failing line, and return the error box shown instead of the figure."""
        line = failure.line or snippet.line
        location = f"{source}:{line}"
        if runner_for(self.env).config.on_error == "raise":
            raise ModelvisBuildError(f"{location}: {failure.report()}")
        logger.warning("modelvis: %s", failure.report(), location=location, type="modelvis", subtype=failure.kind)
        failed_pages(self.env).add(self.env.docname)
        title = failure.title
        box = nodes.admonition("", classes=["error", "modelvis-error"])
        box += nodes.title(title, title)
        message = f"{snippet.filename}:{line}: {failure.message}"
        box += nodes.paragraph(message, message)
        if failure.traceback.strip():
            trace = failure.traceback.rstrip()
            box += nodes.literal_block(trace, trace, language="text", classes=["modelvis-traceback"])
        self.set_source_info(box)
        for child in box.findall(nodes.Element):
            child.source, child.line = source, line
        return box
