"""``structure_graph()`` in a real Jupyter kernel (ipykernel, run by nbclient): the interactive figure as the
cell's output, once, with its stylesheet and script inline."""

from __future__ import annotations

from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "from torch import nn\nfrom sphinx_modelvis import Visualization\n"
    "net = nn.Sequential(*(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(3)))",
    # The tutorial's call, as the cell's last expression: shown once, not twice.
    "Visualization(net).structure_graph()",
    # Bound to a name and not the cell's value: still shown, as in a terminal.
    "figure = Visualization(net).structure_graph(theme='light')",
    # Asked for again in a later cell: shown again.
    "figure",
    # Not printed: nothing shown.
    "hidden = Visualization(net).structure_graph(printTree=False)",
]


def outputs(cell: Any) -> list[dict[str, Any]]:
    return [output for output in cell["outputs"] if output["output_type"] != "stream" or output["text"].strip()]


@pytest.fixture(scope="module")
def notebook() -> Any:
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(book, timeout=300, kernel_name="python3").execute()
    return book


def test_the_figure_is_the_cells_one_output(notebook: Any) -> None:
    (output,) = outputs(notebook.cells[1])
    html = output["data"]["text/html"]
    assert 'class="mv mv-auto"' in html and 'data-n="{0-2}"' in html
    assert "<style>" in html and "modelvisFigures" in html, "stylesheet and script inline"
    assert output["data"]["text/plain"].splitlines()[0] == "root"
    assert "\x1b[" not in str(output), "no ANSI escapes in a notebook"


def test_a_bound_figure_is_shown_once_and_again_when_asked(notebook: Any) -> None:
    (bound,) = outputs(notebook.cells[2])
    assert 'class="mv mv-light"' in bound["data"]["text/html"]
    (again,) = outputs(notebook.cells[3])
    assert again["data"]["text/html"] == bound["data"]["text/html"]


def test_print_tree_false_shows_nothing(notebook: Any) -> None:
    assert outputs(notebook.cells[4]) == []
