"""The memory view in every host and format: ``:memory:`` in rST and MyST (with ``:compare:`` and PEFT's LoRA on the
meta device), the cache, MkDocs, ``modelvis --memory`` and the SVG, PNG, interactive and text exports."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Build, build_mkdocs_page, build_sphinx
from PIL import Image
from sphinx_html import figure_by_name, figure_lines, svg_lines
from torch import nn

from sphinx_modelvis import Visualization
from sphinx_modelvis.rendering import page_figure


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("memory", tmp_path_factory.mktemp("memory") / "src", "html")


def test_memory_in_rst(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "weights"))
    assert lines == [
        "root 160 B f32 + 80 B bf16",
        "    0 (Embedding) weight:[10, 4] 160 B",
        "    1-2 (Linear) weight:[4, 4] bf16 bias:[4] bf16 40 B bf16 each",
        "parameters: 80 total, 40 tunable (50.00%), 40 frozen, 0 delta",
        "memory: 160 B f32 + 80 B bf16 = 240 B",
    ]


def test_training_with_another_optimizer_compared_with_the_weights(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "training"))
    # The bf16 layers: 40 B of weights, 40 B of gradients, 80 B of one fp32 momentum state, 80 B of fp32 master.
    assert lines[2:4] == [
        "      1-2 (Linear) weight:[4, 4] bf16 bias:[4] bf16 40 B bf16 + 40 B grads + 80 B states",
        "          + 80 B master = 240 B each (was 40 B, +200 B)",
    ]
    summary = " ".join(line.strip() for line in lines[lines.index("memory: 160 B f32 + 80 B bf16 = 240 B") :])
    assert "training: 240 B weights + 80 B gradients + 160 B momentum states + 160 B fp32 master weights = 640 B" in (
        summary
    )
    assert "(was 240 B, +400 B)" in summary
    assert "assumed: SGD with momentum: 1 fp32 state per tunable parameter;" in summary


def test_a_bad_memory_value_is_an_error_at_the_directive(built: Build) -> None:
    assert re.search(r"index\.rst:24: ERROR: Error in \"modelvis\" directive", built.warnings), built.warnings
    assert "expected no value, weights or training, got 'activations'" in built.warnings


def test_lora_on_the_meta_device_in_myst(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("page"), "lora"))
    # r=4 on a 64-wide layer: lora_A [4, 64] is 1 KiB of fp32; its gradient 1 KiB, Adam's two states 2 KiB.
    assert any(line.strip() == "default (Linear) weight:[4, 64] 1.0 KiB + 1.0 KiB grads" for line in lines)
    assert any(line.strip() == "base_layer (Linear) weight:[64, 64] bias:[64] 16.2 KiB" for line in lines)
    assert "training: 942.2 KiB weights + 16.0 KiB gradients + 32.0 KiB Adam states = 990.2 KiB" in lines


def test_a_measured_figure_comes_back_from_the_cache(built: Build) -> None:
    again = build_sphinx("memory", built.app.srcdir)
    assert again.stats.executed == 0 and again.stats.cached >= 3
    for page, name in (("index", "weights"), ("index", "training"), ("page", "lora")):
        before = figure_lines(figure_by_name(built.soup(page), name))
        assert figure_lines(figure_by_name(again.soup(page), name)) == before


def test_memory_in_mkdocs(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")

    soup = build_mkdocs_page(
        tmp_path,
        "# Memory\n\n```{modelvis} net\n:memory: training\n:optimizer: adafactor\n\nfrom torch import nn\n"
        "net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n```\n",
    )
    lines = figure_lines(soup.select_one("div.modelvis-figure"))
    # Adafactor: a [8, 4] weight keeps 8 + 4 fp32 second moments (48 B), a bias of 8 a full one (32 B).
    assert lines[1] == "    0 (Linear) weight:[8, 4] bias:[8] 160 B + 160 B grads + 80 B states = 400 B"
    assert any(line.startswith("assumed: Adafactor without first moment") for line in lines)


def test_the_cli(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text("from torch import nn\nnet = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n")
    command = [sys.executable, "-m", "sphinx_modelvis", str(tmp_path / "net.py"), "--format", "txt"]
    done = subprocess.run([*command, "--memory"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "├── 0 (Linear) weight:[8, 4] bias:[8] 160 B"
    assert done.stdout.splitlines()[-1] == "memory: 232 B f32"
    done = subprocess.run(
        [*command, "--memory", "training", "--optimizer", "sgd"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "training: 232 B weights + 232 B gradients + 0 B SGD states = 464 B" in done.stdout
    done = subprocess.run([*command, "--memory", "peak"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "invalid choice: 'peak'" in done.stderr


def test_every_format_draws_the_sizes() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(4, 8))
    plain = Visualization(model).structure_graph(printTree=False)
    figure = Visualization(model).structure_graph(printTree=False, memory="training")
    expected = "└── 0-1 (Linear) weight:[8, 4] bias:[8] 160 B + 160 B grads + 320 B states = 640 B each"
    assert expected in str(figure.render("text")).splitlines()
    assert expected.replace("└── ", "    ") in svg_lines(str(figure.render("svg")))
    from bs4 import BeautifulSoup

    interactive = BeautifulSoup(page_figure(figure.block, format="interactive"), "html.parser")
    assert expected.replace("└── ", "    ") in figure_lines(interactive)
    pre = BeautifulSoup(str(figure.render("html")), "html.parser")
    assert expected in figure_lines(pre)
    assert "\x1b[" in str(figure.render("ansi")) and "640 B" in str(figure.render("ansi"))
    drawn = Image.open(io.BytesIO(figure.render("png")))  # type: ignore[arg-type]
    bare = Image.open(io.BytesIO(plain.render("png")))  # type: ignore[arg-type]
    assert drawn.height > bare.height and drawn.width >= bare.width, "the summary's memory lines are drawn"
