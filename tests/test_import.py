"""``import sphinx_modelvis`` stays light: no torch, Sphinx or MkDocs (DESIGN.md)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, sphinx_modelvis\n"
        "from sphinx_modelvis import tree, folding, theme, capture, rendering, cli\n"
        "print(' '.join(m for m in ('torch', 'sphinx', 'mkdocs', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
