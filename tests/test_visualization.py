"""The ``Visualization(model).structure_graph()`` API as tutorial readers use it."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stdout

from rich.console import Console
from torch import nn

from sphinx_modelvis import Visualization
from sphinx_modelvis.theme import DARK
from sphinx_modelvis.visualization import TreeFigure


def model() -> nn.Module:
    return nn.Sequential(*(nn.Sequential(nn.Linear(4, 4), nn.Dropout()) for _ in range(3)))


def test_prints_the_folded_tree_with_colors_to_captured_stdout() -> None:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        figure = Visualization(model()).structure_graph()
    out = buffer.getvalue()
    assert isinstance(figure, TreeFigure)
    assert "\x1b[" in out, "a caller capturing stdout in memory gets the colors"
    r, g, b = (int(DARK.folded.color[i : i + 2], 16) for i in (1, 3, 5))
    assert f"38;2;{r};{g};{b}m0-2" in out
    assert "Dropout" not in out


def test_keep_non_params_expand_params_and_print_tree_flag() -> None:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        kept = Visualization(model()).structure_graph(keep_non_params=True, printTree=False)
        # bigmodelvis's positional order: rootname, expand_params, keep_non_params, common_structure, mapping,
        # only_common, printTree.
        expanded = Visualization(model()).structure_graph("net", True, False, False, None, False, False)
    assert buffer.getvalue() == "", "printTree=False prints nothing"
    assert "1 (Dropout)" in str(kept)
    assert str(expanded).startswith("net\n└── 0-2 (Sequential)\n    └── 0 (Linear)\n        ├── weight:[4, 4]\n")


def test_printing_into_a_real_file_that_is_not_a_terminal_is_plain(tmp_path: object) -> None:
    code = (
        "from torch import nn\n"
        "from sphinx_modelvis import Visualization\n"
        "Visualization(nn.Linear(2, 3)).structure_graph()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("root weight:[3, 2] bias:[3]\n")
    assert "\x1b[" not in result.stdout


def test_the_returned_figure_is_a_rich_renderable_laid_out_to_the_console_width() -> None:
    figure = Visualization(nn.Sequential(nn.Linear(1024, 1024), nn.Linear(4, 4))).structure_graph(printTree=False)
    console = Console(width=30, record=True, file=io.StringIO(), color_system=None)
    console.print(figure)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 30
    assert lines[1] == "├── 0 (Linear)"
    assert figure.render("svg").startswith("<svg")  # type: ignore[union-attr]
