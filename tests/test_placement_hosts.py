"""The placement view in every host and format: ``:device-map:`` with ``:max-memory:`` (with ``:memory:`` and
``:compare:``) in rST, ``:tp-plan:`` and a dict map in MyST, from the cache, in MkDocs, on the command line, and the
SVG, PNG, interactive and text exports."""

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
from transformers import LlamaConfig, LlamaForCausalLM

from sphinx_modelvis import Visualization
from sphinx_modelvis.rendering import page_figure

pytestmark = pytest.mark.slow

LLAMA = (
    "import torch\nfrom transformers import LlamaConfig, LlamaForCausalLM\n"
    "config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4,\n"
    "                     num_key_value_heads=2, vocab_size=128)\n"
    "with torch.device('meta'):\n    model = LlamaForCausalLM(config)\n"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("placement", tmp_path_factory.mktemp("placement") / "src", "html")


def test_device_map_with_memory_and_compare_in_rst(built: Build) -> None:
    lines = figure_lines(figure_by_name(built.soup("index"), "placed"))
    assert lines[0].startswith("  root @0,1 ")
    layers = [line.strip() for line in lines if "(LlamaDecoderLayer)" in line]
    assert [line.split(" (")[0] for line in layers] == ["0-3", "4-7"]
    assert [line.split("@")[1].split()[0] for line in layers] == ["0", "1"], "folding splits by device"
    summary = [line.strip() for line in lines if not line.startswith("  ")]
    assert any(line.startswith("memory: ") for line in summary), "combined with :memory:"
    assert any(line.startswith("placement: device_map='auto'") for line in summary)
    assert any(line.startswith("devices: @0 ") for line in summary)


def test_bad_placement_values_are_errors_at_the_directive(built: Build) -> None:
    assert re.search(r"index\.rst:28: ERROR: Error in \"modelvis\" directive", built.warnings), built.warnings
    assert "expected no value, auto, balanced, balanced_low_0, sequential, or a dict expression" in built.warnings
    assert re.search(r"index\.rst:32: WARNING: .*needs max_memory", built.warnings), built.warnings


def test_tp_plan_and_a_dict_map_in_myst(built: Build) -> None:
    lines = [line.strip() for line in figure_lines(figure_by_name(built.soup("page"), "tp"))]
    assert "q_proj (Linear) weight:[32, 32] colwise: weight [4, 32] each" in lines
    assert "down_proj (Linear) weight:[32, 64] rowwise: weight [32, 8] each" in lines
    by_style = "tensor parallel over 8 ranks by transformers' tp_plan; parameters by style: colwise"
    assert any(line.startswith(by_style) for line in lines)
    lines = [line.strip() for line in figure_lines(figure_by_name(built.soup("page"), "dict"))]
    assert lines[0] == "root @0,1,cpu"
    assert "embed_tokens (Embedding) @0 weight:[128, 32]" in lines
    assert any(line.startswith("placement: the device map given") for line in lines)


def test_a_placed_figure_comes_back_from_the_cache(built: Build) -> None:
    again = build_sphinx("placement", built.app.srcdir)
    # Only the failing figure (no max_memory) runs again: failures are not cached.
    assert again.stats.executed == again.stats.failed == 1 and again.stats.cached >= 4
    for page, name in (("index", "placed"), ("page", "tp"), ("page", "dict")):
        before = figure_lines(figure_by_name(built.soup(page), name))
        assert figure_lines(figure_by_name(again.soup(page), name)) == before


def test_placement_in_mkdocs(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")

    code = LLAMA.replace("with torch.device('meta'):\n    model", "model")
    soup = build_mkdocs_page(
        tmp_path,
        "# Placement\n\n```{modelvis} model\n:device: meta\n:max-depth: 3\n:device-map: sequential\n"
        f':max-memory: {{0: "100KiB", 1: "100KiB", 2: "1MiB"}}\n\n{code}```\n',
    )
    lines = [line.strip() for line in figure_lines(soup.select_one("div.modelvis-figure"))]
    assert lines[0] == "root @0-2"
    assert any(line.startswith("placement: device_map='sequential'") for line in lines)


def test_the_cli(tmp_path: Path) -> None:
    (tmp_path / "llama.py").write_text(LLAMA)
    command = [sys.executable, "-m", "sphinx_modelvis", str(tmp_path / "llama.py"), "--format", "txt"]
    memory = '{0: "200KiB", 1: "200KiB"}'
    done = subprocess.run(
        [*command, "--device-map", "auto", "--max-memory", memory, "--max-depth", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "root @0,1"
    assert "Device 0 is not available" not in done.stderr, "accelerate's warnings about absent devices are dropped"
    done = subprocess.run([*command, "--tp-plan", "8", "--max-depth", "5"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "colwise: weight [4, 32] each" in done.stdout
    done = subprocess.run([*command, "--tp-plan", "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "at least 1" in done.stderr


def test_every_format_draws_the_devices() -> None:
    with torch.device("meta"):
        model = LlamaForCausalLM(
            LlamaConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=8,
                num_attention_heads=4,
                num_key_value_heads=2,
                vocab_size=128,
            )
        )
    plain = Visualization(model).structure_graph(printTree=False, max_depth=3)
    figure = Visualization(model).structure_graph(
        printTree=False, max_depth=3, device_map="auto", max_memory={0: "200KiB", 1: "200KiB"}
    )
    text = str(figure.render("text")).splitlines()
    expected = [line for line in text if "4-7 (LlamaDecoderLayer) @1" in line]
    assert len(expected) == 1
    assert expected[0].replace("└── ", "    ").replace("├── ", "    ").replace("│", " ") in [
        line.replace("│", " ") for line in svg_lines(str(figure.render("svg")))
    ]
    from bs4 import BeautifulSoup

    interactive = BeautifulSoup(page_figure(figure.block, format="interactive"), "html.parser")
    assert any("4-7 (LlamaDecoderLayer) @1" in line for line in figure_lines(interactive))
    assert "@1" in str(figure.render("ansi"))
    drawn = Image.open(io.BytesIO(figure.render("png")))  # type: ignore[arg-type]
    bare = Image.open(io.BytesIO(plain.render("png")))  # type: ignore[arg-type]
    assert drawn.height > bare.height, "the summary's placement lines are drawn"
