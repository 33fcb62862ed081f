"""``:compare: NAME`` and ``:inputs:`` in a real MkDocs build: a figure marked against an earlier figure of the
page, a warning at the line (the page still built) for a name no earlier figure has, a forward view, and a figure
that is both."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
from conftest import build_mkdocs_page
from sphinx_html import figure_lines
from test_cli import TWICE, TWICE_CHANGES, TWICE_COMPARED

PAGE = """# Compared

```{modelvis}
:name: before

from torch import nn
net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
```

```{modelvis} net
:compare: before

net[0].requires_grad_(False)
```

```{modelvis} net
:compare: nowhere
```
"""


def test_compare_in_mkdocs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.modelvis"):
        soup = build_mkdocs_page(tmp_path, PAGE)
    figures = soup.select("div.modelvis-figure")
    assert len(figures) == 2
    lines = figure_lines(figures[1])
    assert lines[1] == "~     0 (Linear) weight:[4, 4] bias:[4] (was tunable)"
    assert lines[-1] == "changes: +0 added, 20 newly frozen (66.67%), 0 newly tunable, 10 unchanged (33.33%)"
    warnings = [record.getMessage() for record in caplog.records]
    assert any(
        "index.md:16" in message and ":compare: nowhere: no earlier figure of this page has that :name:" in message
        for message in warnings
    ), warnings
    assert "modelvis-error" in str(soup)


def test_forward_view_in_mkdocs(tmp_path: Path) -> None:
    soup = build_mkdocs_page(
        tmp_path,
        "# Forward\n\n```{modelvis} net\n:inputs: torch.ones(3, 4)\n\nimport torch\nfrom torch import nn\n"
        "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n```\n",
    )
    lines = figure_lines(soup.select_one("div.modelvis-figure"))
    assert lines[1] == "    0 (Linear) weight:[8, 4] bias:[8] → [3, 8]"
    assert lines[-1] == "forward: [3, 4] -> [3, 2]"


def test_a_comparison_with_inputs_keeps_the_forward_view_in_mkdocs(tmp_path: Path) -> None:
    soup = build_mkdocs_page(
        tmp_path,
        f"# Traced\n\n```{{modelvis}}\n:name: before\n\n{TWICE}```\n\n"
        f"```{{modelvis}} net\n:compare: before\n:inputs: torch.ones(3, 4)\n\n{TWICE_CHANGES}```\n",
    )
    lines = figure_lines(soup.select("div.modelvis-figure")[1])
    assert lines[:4] == [re.sub("[├└]── ", "    ", line) for line in TWICE_COMPARED], "tree guides read as spaces"
    assert lines[-2].startswith("changes: +6 added") and lines[-1] == "forward: [3, 4] -> [3, 2]"
