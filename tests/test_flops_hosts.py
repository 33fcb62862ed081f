"""FLOPs in every host and format: ``:flops:`` in rST (with ``:compare:`` and ``:memory:``) and MyST (BERT on the meta
device), its error without ``:inputs:``, the cache, MkDocs, ``modelvis --flops`` and the SVG, PNG, interactive and
text exports."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import Build, build_mkdocs_page, build_sphinx
from PIL import Image
from sphinx_html import figure_by_name, figure_lines, svg_lines
from torch import nn

from sphinx_modelvis import Visualization
from sphinx_modelvis.config import ModelvisConfig, parse_figure_options
from sphinx_modelvis.rendering import page_figure


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("flops", tmp_path_factory.mktemp("flops") / "src", "html")


def test_flops_in_rst(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "narrow"))
    # Three rows: 2·4·8·3, 2·8·8·3, 2·8·2·3.
    assert lines == [
        "root → [3, 2] 672 FLOPs",
        "    0 (Linear) weight:[8, 4] bias:[8] → [3, 8] 192 FLOPs",
        "    1 (Linear) weight:[8, 8] bias:[8] → [3, 8] 384 FLOPs",
        "    2 (Linear) weight:[2, 8] bias:[2] → [3, 2] 96 FLOPs",
        "parameters: 130 total, 130 tunable (100.00%), 0 frozen, 0 delta",
        "forward: [3, 4] -> [3, 2]",
        "flops: 672 FLOPs in the pass",
    ]


def test_compared_with_memory_beside(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "wide"))
    text = " ".join(line.strip() for line in lines)  # the long lines wrap
    assert "(was [8, 4]) bias:[16] (was [8]) 320 B → [3, 16] 384 FLOPs (was 192 FLOPs, +192 FLOPs)" in text, lines
    assert "→ [3, 8] 768 FLOPs (was 384 FLOPs, +384 FLOPs)" in text, lines
    assert "flops: 1.25 kFLOPs in the pass (was 672 FLOPs, +576 FLOPs)" in lines
    assert any(line.startswith("memory: ") for line in lines)


def test_flops_without_inputs_is_an_error_at_the_directive(built: Build) -> None:
    assert re.search(r"index\.rst:27: ERROR: modelvis: :flops: counts a forward pass", built.warnings), built.warnings


def test_bert_on_the_meta_device_in_myst(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("page"), "bert"))
    assert any(line.strip() == "0-1 (BertLayer) → [1, 8, 32] 139 kFLOPs each" for line in lines), lines
    assert "flops: 281 kFLOPs in the pass (addmm 264 kFLOPs, bmm 16.4 kFLOPs)" in lines


def test_a_counted_figure_comes_back_from_the_cache(built: Build) -> None:
    again = build_sphinx("flops", built.app.srcdir)
    assert again.stats.executed == 0 and again.stats.cached >= 3
    for page, name in (("index", "narrow"), ("index", "wide"), ("page", "bert")):
        assert figure_lines(figure_by_name(again.soup(page), name)) == figure_lines(
            figure_by_name(built.soup(page), name)
        )


def test_the_cache_key_holds_flops_only_when_set() -> None:
    config = ModelvisConfig()
    plain = parse_figure_options("net", {"inputs": "x"}, config)
    counted = parse_figure_options("net", {"inputs": "x", "flops": None}, config)
    assert "flops" not in plain.execution_key(), "keys made before the option stay valid"
    assert counted.execution_key() == {**plain.execution_key(), "flops": True}


def test_flops_in_mkdocs(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")

    soup = build_mkdocs_page(
        tmp_path,
        "# FLOPs\n\n```{modelvis} net\n:inputs: torch.ones(5, 4)\n:flops:\n\nimport torch\nfrom torch import nn\n"
        "net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n```\n",
    )
    lines = figure_lines(soup.select_one("div.modelvis-figure"))
    assert lines[1] == "    0 (Linear) weight:[8, 4] bias:[8] → [5, 8] 320 FLOPs"
    assert lines[-1] == "flops: 480 FLOPs in the pass"


def test_the_cli(tmp_path: Path) -> None:
    header = "import torch\nfrom torch import nn\n"
    (tmp_path / "net.py").write_text(header + "net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n")
    (tmp_path / "wide.py").write_text(header + "net = nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2))\n")
    command = [sys.executable, "-m", "sphinx_modelvis", str(tmp_path / "wide.py"), "--format", "txt"]
    inputs = ["--inputs", "torch.ones(3, 4)"]
    done = subprocess.run([*command, *inputs, "--flops"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "├── 0 (Linear) weight:[16, 4] bias:[16] → [3, 16] 384 FLOPs"
    assert done.stdout.splitlines()[-1] == "flops: 576 FLOPs in the pass"
    compared = [*command, *inputs, "--flops", "--compare", str(tmp_path / "net.py")]
    done = subprocess.run(compared, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "flops: 576 FLOPs in the pass (was 288 FLOPs, +288 FLOPs)"
    done = subprocess.run([*command, "--flops"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--flops counts a forward pass: give --inputs EXPR too" in done.stderr


def test_every_format_draws_the_counts() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    x = torch.ones(2, 4)
    plain = Visualization(model).structure_graph(inputs=(x,), printTree=False)
    figure = Visualization(model).structure_graph(inputs=(x,), flops=True, printTree=False)
    expected = "└── 0-1 (Linear) weight:[4, 4] bias:[4] → [2, 4] 64 FLOPs each"
    assert expected in str(figure.render("text")).splitlines()
    assert expected.replace("└── ", "    ") in svg_lines(str(figure.render("svg")))
    from bs4 import BeautifulSoup

    interactive = BeautifulSoup(page_figure(figure.block, format="interactive"), "html.parser")
    assert expected.replace("└── ", "    ") in figure_lines(interactive)
    pre = BeautifulSoup(str(figure.render("html")), "html.parser")
    assert expected in figure_lines(pre)
    assert "\x1b[" in str(figure.render("ansi")) and "64 FLOPs" in str(figure.render("ansi"))
    drawn = Image.open(io.BytesIO(figure.render("png")))  # type: ignore[arg-type]
    bare = Image.open(io.BytesIO(plain.render("png")))  # type: ignore[arg-type]
    assert drawn.height > bare.height and drawn.width > bare.width, "the counts and the summary's line are drawn"
