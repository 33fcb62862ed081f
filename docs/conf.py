"""Sphinx configuration of the sphinx-modelvis documentation (built by `make docs`)."""

from __future__ import annotations

import sphinx_modelvis

project = "sphinx-modelvis"
author = "The sphinx-modelvis developers"
copyright = "2026, the sphinx-modelvis developers"
release = version = sphinx_modelvis.__version__

extensions = [
    "myst_nb",  # MyST Markdown (it brings myst_parser), and notebooks run while the docs build
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx_modelvis",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# examples/ holds projects of other tools (an MkDocs site) that the guides include as files.
exclude_patterns = ["_build", "readme", "examples", "Thumbs.db", ".DS_Store"]
numfig = True
# Notebooks (MyST text notebooks, kept without outputs) run on every build; an error in one fails it.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_output_stderr = "remove"  # library warnings (tqdm's about widgets) are not what the page is about

html_theme = "furo"
html_title = "sphinx-modelvis"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"

# The PDF (`make pdf`, and Read the Docs' PDF download) is built with pdflatex, Sphinx's default engine. These are
# the characters of the docs it has no glyph for; a new one stops the build and is named there: add it here.
_pdflatex_characters = {
    "🤗": "Hugging Face",  # as in "a 🤗 Transformers model"
    "▾": r"\ensuremath{\blacktriangledown}",  # the figure's markers, expanded
    "▸": r"\ensuremath{\blacktriangleright}",  # and collapsed
    "←": r"\ensuremath{\leftarrow}",  # the arrow keys
    "−": r"\ensuremath{-}",  # a minus sign in prose
    "◆": r"\ensuremath{\blacklozenge}",  # an adapter preview's marks: adapted,
    "■": r"\ensuremath{\blacksquare}",  # saved (modules_to_save)
    "◇": r"\ensuremath{\lozenge}",  # and excluded
    "⚠": r"\textbf{!}",  # a placement's split module, as an exclamation mark
    "ᵀ": r"\textsuperscript{T}",  # a transpose, in the FLOPs prose
    "→": r"\ensuremath{\rightarrow}",
}
latex_elements = {
    "preamble": "".join(
        f"\\DeclareUnicodeCharacter{{{ord(char):04X}}}{{{tex}}}\n" for char, tex in _pdflatex_characters.items()
    ),
}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

# Figures follow the page's light/dark mode (the default); cached between builds (CI keeps this folder).
modelvis_cache_dir = "_build/.modelvis-cache"


def setup(app):  # type: ignore[no-untyped-def]
    """A docs-only directive: the table of `modelvis_*` settings, read from the config dataclass itself."""
    from docutils import nodes
    from docutils.parsers.rst import Directive

    from sphinx_modelvis.config import ModelvisConfig

    class ConfigTable(Directive):
        """``modelvis-config-table``; ``:prefix:`` is the prefix of the names (``modelvis_``, or empty for MkDocs)."""

        option_spec = {"prefix": lambda value: (value or "").strip()}

        def run(self) -> list[nodes.Node]:
            prefix = self.options.get("prefix", "modelvis_")
            table = nodes.table(classes=["modelvis-config"])
            group = nodes.tgroup(cols=3)
            table += group
            for width in (30, 20, 50):
                group += nodes.colspec(colwidth=width)
            head = nodes.thead()
            body = nodes.tbody()
            group += head
            group += body

            def row(*cells: nodes.Node) -> nodes.row:
                line = nodes.row()
                for cell in cells:
                    entry = nodes.entry()
                    entry += nodes.paragraph("", "", cell)
                    line += entry
                return line

            head += row(nodes.Text("setting"), nodes.Text("default"), nodes.Text("meaning"))
            for name, default, help_text in ModelvisConfig.settings():
                body += row(
                    nodes.literal(text=f"{prefix}{name}"), nodes.literal(text=repr(default)), nodes.Text(help_text)
                )
            return [table]

    app.add_directive("modelvis-config-table", ConfigTable)
