"""The `modelvis` command line, run as a user runs it (a subprocess) on snippet files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = """\
import torch
from torch import nn

helper = nn.Linear(1, 1)
model = nn.Sequential(*(nn.Linear(8, 8) for _ in range(4)), nn.ReLU())
print("building done")
"""


def modelvis(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx_modelvis", *map(str, args)], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture
def snippet(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(SMALL)
    return path


def test_prints_the_last_bound_module_to_the_terminal(snippet: Path) -> None:
    result = modelvis(snippet.name, cwd=snippet.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("root\n└── 0-3 (Linear) weight:[8, 8] bias:[8]\n")
    assert "building done" in result.stderr, "the snippet's own output stays off stdout"


@pytest.mark.parametrize(
    ("suffix", "magic"),
    [(".svg", b"<svg"), (".png", b"\x89PNG"), (".html", b"<pre"), (".txt", b"root"), (".ansi", b"\x1b[")],
)
def test_format_follows_the_output_suffix(snippet: Path, suffix: str, magic: bytes) -> None:
    out = snippet.parent / f"figure{suffix}"
    result = modelvis(snippet.name, "-o", out.name, cwd=snippet.parent)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(magic)


def test_options_shape_the_tree(snippet: Path) -> None:
    result = modelvis(
        snippet.name,
        "--model",
        "helper",
        "--expand-params",
        "--format",
        "txt",
        "--rootname",
        "helper",
        cwd=snippet.parent,
    )
    assert result.stdout.startswith("helper\n├── weight:[1, 1]\n└── bias:[1]\n")
    result = modelvis(snippet.name, "--keep-non-params", "--format", "ansi", "--theme", "light", cwd=snippet.parent)
    assert "\x1b[" in result.stdout
    assert "4 (ReLU)" in re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)


def test_check_reports_drift_and_passes_when_in_sync(snippet: Path) -> None:
    out = snippet.parent / "figure.svg"
    assert modelvis(snippet.name, "-o", out.name, cwd=snippet.parent).returncode == 0
    same = modelvis(snippet.name, "-o", out.name, "--check", cwd=snippet.parent)
    assert same.returncode == 0 and "up to date" in same.stdout
    snippet.write_text(SMALL.replace("nn.Linear(8, 8)", "nn.Linear(8, 16)"))
    drift = modelvis(snippet.name, "-o", out.name, "--check", cwd=snippet.parent)
    assert drift.returncode == 1
    # The summary is the tree's text that changed, not the SVG's markup.
    assert "figure.svg: out of date (4 lines of text changed)" in drift.stderr  # the layer and the summary
    assert "-    0-3 (Linear) weight:[8, 8] bias:[8]\n" in drift.stderr  # (the guides are lines, not text)
    assert "+    0-3 (Linear) weight:[16, 8] bias:[16]\n" in drift.stderr
    assert modelvis(snippet.name, "-o", out.name, cwd=snippet.parent).returncode == 0
    restyled = modelvis(snippet.name, "-o", out.name, "--check", "--theme", "light", cwd=snippet.parent)
    assert restyled.returncode == 1 and "the same text, drawn differently" in restyled.stderr
    missing = modelvis(snippet.name, "-o", "absent.svg", "--check", cwd=snippet.parent)
    assert missing.returncode == 1 and "missing" in missing.stderr


def test_a_raising_snippet_exits_2_with_its_own_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import torch\n\n\ndef build():\n    return torch.zeros(2) @ torch.zeros(3)\n\nmodel = build()\n"
    )
    result = modelvis("bad.py", cwd=tmp_path)
    assert result.returncode == 2
    assert 'File "bad.py", line 7, in <module>' in result.stderr
    assert 'File "bad.py", line 5, in build' in result.stderr
    assert "sphinx_modelvis" not in result.stderr.split("modelvis: bad.py raised")[0], "only the snippet's frames"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "missing_name"), "--model missing_name could not be evaluated: NameError"),
        (("--model", "torch"), "`torch` is a module, not a torch.nn.Module"),
    ],
)
def test_bad_model_expression_exits_2_with_one_sentence(snippet: Path, args: tuple[str, ...], message: str) -> None:
    result = modelvis(snippet.name, *args, cwd=snippet.parent)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_no_module_bound_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = modelvis("empty.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "modelvis: empty.py binds no torch.nn.Module to a top-level name; say which one with --model EXPR"
    )


def test_meta_device_shows_llama_70b_without_its_weights(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    (tmp_path / "llama.py").write_text(
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "config = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,\n"
        "                     num_attention_heads=64, num_key_value_heads=8, vocab_size=128256)\n"
        "model = LlamaForCausalLM(config)\n"
    )
    result = modelvis("llama.py", "--device", "meta", "-o", "llama.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "llama.txt").read_text()
    assert "0-79 (LlamaDecoderLayer)" in text and "70.6B total" in text


def test_an_unknown_suffix_exits_2_before_running_anything(snippet: Path) -> None:
    result = modelvis(snippet.name, "-o", "figure.jpeg", cwd=snippet.parent)
    assert result.returncode == 2 and "cannot tell the format of figure.jpeg from its suffix" in result.stderr
    assert "building done" not in result.stderr and not (snippet.parent / "figure.jpeg").exists()


def test_check_of_a_png(snippet: Path) -> None:
    assert modelvis(snippet.name, "-o", "figure.png", cwd=snippet.parent).returncode == 0
    assert modelvis(snippet.name, "-o", "figure.png", "--check", cwd=snippet.parent).returncode == 0
    snippet.write_text(SMALL.replace("range(4)", "range(5)"))
    drift = modelvis(snippet.name, "-o", "figure.png", "--check", cwd=snippet.parent)
    assert drift.returncode == 1 and "figure.png: out of date (the PNG differs" in drift.stderr


@pytest.mark.parametrize(
    ("code", "message"),
    [("model = (\n", "SyntaxError"), ("import sys\nsys.exit(3)\n", "the snippet called sys.exit(3)")],
)
def test_syntax_errors_and_exits_are_the_snippet_s_errors(tmp_path: Path, code: str, message: str) -> None:
    (tmp_path / "broken.py").write_text(code)
    result = modelvis("broken.py", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr


def test_the_installed_command_imports_modules_next_to_the_snippet(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "blocks.py").write_text("from torch import nn\n\ndef make():\n    return nn.Linear(2, 3)\n")
    (folder / "snippet.py").write_text("from blocks import make\n\nmodel = make()\n")
    command = Path(sys.executable).with_name("modelvis")
    result = subprocess.run([str(command), "models/snippet.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("root weight:[3, 2] bias:[3]")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--width", "5"), "argument --width: expected a number of at least 20, got 5"),
        (("--width", "wide"), "argument --width: expected a whole number, got 'wide'"),
        (("--max-depth", "-1"), "argument --max-depth: expected a number of at least 0, got -1"),
    ],
)
def test_a_value_out_of_its_range_exits_2_before_running_anything(
    snippet: Path, args: tuple[str, ...], message: str
) -> None:
    # The same rules as the figure options and the site settings (:columns:, modelvis_max_depth, ...).
    result = modelvis(snippet.name, *args, cwd=snippet.parent)
    assert result.returncode == 2
    assert message in result.stderr and "building done" not in result.stderr
    assert result.stdout == ""
