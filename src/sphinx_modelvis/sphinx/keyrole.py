"""The key role, ``:modelvis:key:`NAME:KEY``` (MyST: ``{modelvis:key}`NAME:KEY```): a module key in the prose,
shown as code, linked to its line in the figure named ``NAME``, and checked against that figure's tree.

The ``modelvis`` domain keeps the project's named figures (their keys, plain data) with the environment, so a
key may name a figure of another page; ``-j``'s readers each fill their part, merged before anything is
written. The check runs when the pages are resolved for writing, once every figure is known, in every builder:
a key that matches nothing is a ``modelvis.key`` warning at the role's line; outside HTML the key is code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Set
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.domains import Domain
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole, SphinxTranslator
from sphinx.util.nodes import split_explicit_title

from ..capture import Capture
from ..compare import figure_key
from ..keys import FigureKeys, anchor_prefix, describe_miss, figure_keys, line_anchor, match_key, split_reference

__all__ = ["ModelvisDomain", "modelvis_key", "modelvis_key_link", "note_named_figure", "register_key_role"]

logger = logging.getLogger(__name__)


class modelvis_key(nodes.Inline, nodes.TextElement):
    """A key named in the prose, not yet checked: ``figure`` (its name as written) and ``key``."""


class modelvis_key_link(nodes.Inline, nodes.TextElement):
    """A checked key in HTML: a link to ``refuri``; ``module`` the fragment of the module itself, when the line
    it lands on without a script holds more (a folded group's)."""


class KeyRole(SphinxRole):
    """``:modelvis:key:`bert-vis:encoder.layer.0``` or ``:modelvis:key:`the query <bert-vis:query>```."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        # The text as written: rST would take the backslashes of a regex (\.) as escapes.
        written = self.rawtext[self.rawtext.find("`") + 1 : -1] if self.rawtext.endswith("`") else self.text
        has_title, title, target = split_explicit_title(written)
        try:
            name, key = split_reference(target)
        except ValueError as exc:
            logger.warning("modelvis: %s", exc, location=self.get_location(), type="modelvis", subtype="key")
            return [nodes.literal(self.rawtext, target)], []
        node = modelvis_key(self.rawtext, "", nodes.literal(title if has_title else key, title if has_title else key))
        node["figure"], node["key"] = name, key
        node.source, node.line = self.get_source_info()
        references = self.env.get_domain("modelvis").data["references"]
        references.setdefault(self.env.docname, set()).add(figure_key(name))
        return [node], []


class ModelvisDomain(Domain):
    """The ``modelvis`` domain: the key role and the project's named figures (``figures``: by name, the page, the
    anchor of its lines or of the figure, and its keys), which pages name which figure (``references``), and the
    figures read in this build (``read``), whose referring pages are written again."""

    name = "modelvis"
    label = "modelvis"
    roles = {"key": KeyRole()}
    initial_data = {"figures": {}, "references": {}, "read": set()}
    data_version = 1

    def clear_doc(self, docname: str) -> None:
        figures = self.data["figures"]
        for name in [name for name, figure in figures.items() if figure["docname"] == docname]:
            del figures[name]
        self.data["references"].pop(docname, None)

    def merge_domaindata(self, docnames: Set[str], otherdata: dict[str, Any]) -> None:
        self.data["figures"].update(
            {name: figure for name, figure in otherdata["figures"].items() if figure["docname"] in docnames}
        )
        self.data["references"].update(
            {docname: names for docname, names in otherdata["references"].items() if docname in docnames}
        )
        self.data["read"] |= otherdata["read"]

    def resolve_any_xref(self, *args: Any, **kwargs: Any) -> list[tuple[str, nodes.Element]]:
        return []  # its references are not cross-references: the post-transform below resolves them


def note_named_figure(env: Any, name: str, capture: Capture, *, interactive: bool, figure_id: str) -> None:
    """Keep the figure called ``name`` (of the page being read) for the key roles of the whole project."""
    keys = figure_keys(capture)
    domain = env.get_domain("modelvis")
    domain.data["figures"][figure_key(name)] = {
        "docname": env.docname,
        "anchor": anchor_prefix(name) if interactive else "",
        "figure_id": figure_id,
        "keys": keys.to_dict() if keys is not None else None,  # None: printed text only, no tree
    }
    domain.data["read"].add(figure_key(name))


def _warn(node: nodes.Element, message: str) -> None:
    logger.warning("modelvis: %s", message, location=node, type="modelvis", subtype="key")


def resolve_keys(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """``doctree-resolved``: check each key against its figure (a warning at the role's line when it matches
    nothing) and, in HTML, link it to the module's line; elsewhere it stays code."""
    figures = app.env.get_domain("modelvis").data["figures"]
    html = app.builder.format == "html"
    for node in list(doctree.findall(modelvis_key)):
        code = node.children[0]
        name, key = node["figure"], node["key"]
        figure = figures.get(figure_key(name))
        if figure is None:
            known = ", ".join(sorted(figures)) or "none"
            _warn(node, f"{name}:{key}: no figure is named {name!r} (named figures: {known})")
            node.replace_self(code)
            continue
        if figure["keys"] is None:
            _warn(node, f"{name}:{key}: the figure {name!r} shows printed text, not a module tree")
            node.replace_self(code)
            continue
        keys = FigureKeys.from_dict(figure["keys"])
        try:
            found = match_key(key, keys)
        except re.error as exc:
            _warn(node, f"{name}:{key}: not a regular expression Python reads ({exc})")
            node.replace_self(code)
            continue
        if found is None:
            _warn(node, f"{name}:{key} {describe_miss(key, keys)}")
            node.replace_self(code)
            continue
        if not html:
            node.replace_self(code)
            continue
        page = figure["docname"]
        uri = "" if page == docname else app.builder.get_relative_uri(docname, page)
        link = modelvis_key_link(node.rawsource, "", code)
        if figure["anchor"]:
            link["refuri"] = f"{uri}#{line_anchor(figure['anchor'], found.line)}"
            if found.target != found.line:
                link["module"] = line_anchor(figure["anchor"], found.target)
        else:  # a picture (:format: svg): the figure itself
            link["refuri"] = f"{uri}#{figure['figure_id']}" if figure["figure_id"] else uri
        more = len(found.matched) - 3
        link["title"] = ", ".join(found.matched[:3]) + (f" and {more} more" if more > 0 else "")
        node.replace_self(link)


def visit_key_link_html(self: SphinxTranslator, node: modelvis_key_link) -> None:
    """Open the link: the line's anchor, and the module's for the script (``data-mv-key``)."""
    attributes = {"href": node["refuri"], "title": node["title"]}
    if node.get("module"):
        attributes["data-mv-key"] = node["module"]
    self.body.append(self.starttag(node, "a", "", CLASS="reference internal mv-key", **attributes))


def depart_key_link_html(self: SphinxTranslator, node: modelvis_key_link) -> None:
    """Close the link."""
    self.body.append("</a>")


def before_reading(app: Sphinx, env: Any, docnames: Iterable[str]) -> None:
    """``env-before-read-docs``: no figure read yet in this build."""
    env.get_domain("modelvis").data["read"] = set()


def pages_to_rewrite(app: Sphinx, env: Any) -> list[str]:
    """``env-get-updated``: the pages naming a figure that this build read again (or that no page has any more),
    so their links and their check follow the figure."""
    data = env.get_domain("modelvis").data
    read, known = data["read"], data["figures"].keys()
    # Also those naming a figure that is gone (its page removed, or its name changed): their warning is due.
    return sorted(docname for docname, names in data["references"].items() if names & read or not names <= known)


def register_key_role(app: Sphinx) -> None:
    """Register the domain, its nodes, the check and the hooks that keep them current."""
    app.add_domain(ModelvisDomain)
    app.add_node(modelvis_key)
    app.add_node(modelvis_key_link, html=(visit_key_link_html, depart_key_link_html))
    app.connect("doctree-resolved", resolve_keys)
    app.connect("env-before-read-docs", before_reading)
    app.connect("env-get-updated", pages_to_rewrite)
