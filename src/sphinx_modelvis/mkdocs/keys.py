"""The key role in MkDocs pages, ``{modelvis:key}`NAME:KEY``` as in MyST: a module key in the prose, shown as
code, linked to its line in the figure named ``NAME`` (on any page) and checked against that figure's tree.

MkDocs turns every page's Markdown into HTML before it writes any page, so the plugin marks each role as it
reads a page (:meth:`KeyRoles.mark`: a placeholder Markdown leaves alone), keeps each named figure's keys as
its page runs, and resolves the links when the pages are written (:meth:`KeyRoles.resolve`), once every
figure is known: a key that matches nothing is a warning naming the page and line (``mkdocs build --strict``
fails on it), and stays code.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..capture import Capture
from ..compare import figure_key
from ..keys import FigureKeys, anchor_prefix, describe_miss, figure_keys, line_anchor, match_key, split_reference

__all__ = ["KeyRoles"]

log = logging.getLogger("mkdocs.plugins.modelvis")

_ROLE = re.compile(r"\{modelvis:key\}`(?P<text>[^`]+)`")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
#: What a role is between reading and writing: a code span in a link that says what it names and where it stands
#: (the placeholder carries it all, so a page ``mkdocs serve`` reuses unchanged still resolves).
_PLACEHOLDER = re.compile(
    r'<a class="mv-key" data-mv-ref="(?P<ref>[^"]*)" data-mv-at="(?P<at>[^"]*)">(?P<code>.*?)</a>'
)
_EXPLICIT = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", re.S)


@dataclass
class _Figure:
    url: str  # the page's URL, as MkDocs gives it
    anchor: str  # the line anchors' prefix; empty for a picture (its id is ``element``)
    element: str
    keys: FigureKeys | None  # None: printed text only, no tree


@dataclass
class KeyRoles:
    """The roles and the named figures of one build (under ``mkdocs serve``, figures of pages left unchanged are
    kept from the build that ran them)."""

    figures: dict[str, _Figure] = field(default_factory=dict)

    def note_figure(self, name: str, capture: Capture, *, url: str, interactive: bool) -> None:
        """Keep the keys of the figure called ``name`` on the page at ``url``."""
        keys = figure_keys(capture)
        self.figures[figure_key(name)] = _Figure(url, anchor_prefix(name) if interactive else "", name, keys)

    def mark(self, markdown: str, page: str, first_line: int) -> str:
        """The page's Markdown with each role (outside fenced code) a placeholder; ``first_line`` is the number of
        the source line the Markdown starts at."""
        if "{modelvis:key}" not in markdown:
            return markdown
        lines = markdown.split("\n")
        fence = ""
        for index, line in enumerate(lines):
            opener = _FENCE.match(line)
            if opener is not None and (not fence or opener[1].startswith(fence)):
                fence = "" if fence else opener[1]
                continue
            if fence or "{modelvis:key}" not in line:
                continue
            lines[index] = _ROLE.sub(partial(self._marked, page=page, line=first_line + index), line)
        return "\n".join(lines)

    def _marked(self, match: re.Match[str], *, page: str, line: int) -> str:
        return self._placeholder(match["text"], page, line)

    @staticmethod
    def _placeholder(text: str, page: str, line: int) -> str:
        explicit = _EXPLICIT.match(text)
        title, target = (explicit["title"], explicit["target"]) if explicit else (None, text)
        try:
            _, key = split_reference(target)
        except ValueError as exc:
            log.warning("modelvis: %s:%d: %s", page, line, exc)
            return f"<code>{html.escape(target)}</code>"
        shown = html.escape(title if title is not None else key)
        at = html.escape(f"{page}:{line}")
        return f'<a class="mv-key" data-mv-ref="{html.escape(target)}" data-mv-at="{at}"><code>{shown}</code></a>'

    def resolve(self, output: str, page_url: str) -> str:
        """A written page with each role's link made (or, when its key matches nothing, plain code and a warning)."""
        if "mv-key" not in output:
            return output
        from mkdocs.utils import get_relative_url

        def link(match: re.Match[str]) -> str:
            name, key = split_reference(html.unescape(match["ref"]))
            code = match["code"]
            figure = self.figures.get(figure_key(name))
            where = f"modelvis: {html.unescape(match['at'])}: {name}:{key}"
            if figure is None:
                known = ", ".join(sorted(self.figures)) or "none"
                log.warning("%s: no figure is named %r (named figures: %s)", where, name, known)
                return code
            if figure.keys is None:
                log.warning("%s: the figure %r shows printed text, not a module tree", where, name)
                return code
            try:
                found = match_key(key, figure.keys)
            except re.error as exc:
                log.warning("%s: not a regular expression Python reads (%s)", where, exc)
                return code
            if found is None:
                log.warning("%s %s", where, describe_miss(key, figure.keys))
                return code
            uri = "" if figure.url == page_url else get_relative_url(figure.url, page_url)
            if uri and (not figure.url or figure.url.endswith("/")):
                uri = uri.rstrip("/") + "/"  # a folder's page (use_directory_urls): "../", not ".."
            extra = ""
            if figure.anchor:
                fragment = line_anchor(figure.anchor, found.line)
                if found.target != found.line:
                    extra = f' data-mv-key="{html.escape(line_anchor(figure.anchor, found.target))}"'
            else:
                fragment = figure.element
            more = len(found.matched) - 3
            title = ", ".join(found.matched[:3]) + (f" and {more} more" if more > 0 else "")
            href = html.escape(f"{uri}#{fragment}")
            return f'<a class="mv-key" href="{href}" title="{html.escape(title)}"{extra}>{code}</a>'

        return _PLACEHOLDER.sub(link, output)

    @staticmethod
    def anchor(options: Any) -> str | None:
        """The line anchors' prefix of a figure drawn with ``options`` (a named interactive figure's), else ``None``."""
        return anchor_prefix(options.name) if options.name and options.format == "interactive" else None
