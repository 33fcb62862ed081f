"""The README's "Try it" commands, run as printed: BERT, BERT with LoRA, and Llama 70B on the meta device."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from sphinx_html import colors_of
from terminal import run_in_terminal

from sphinx_modelvis.theme import DARK

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    shlex.split(line.split("#")[0])
    for line in (ROOT / "README.md").read_text().splitlines()
    if line.startswith(".venv/bin/modelvis docs/readme/")
]


def as_run(command: list[str]) -> list[str]:
    """A README command with ``.venv/bin/modelvis`` as this interpreter's module."""
    return [sys.executable, "-m", "sphinx_modelvis"] + [
        str(ROOT / arg) if arg.startswith("docs/") else arg for arg in command[1:]
    ]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A README command, its output piped."""
    return subprocess.run(as_run(command), cwd=cwd, capture_output=True, text=True)


def test_the_readme_shows_three_commands() -> None:
    assert [command[1] for command in COMMANDS] == [
        "docs/readme/bert.py",
        "docs/readme/bert_lora.py",
        "docs/readme/llama70b.py",
    ]


@pytest.mark.slow
def test_bert_in_the_terminal_fits_80_columns(tmp_path: Path) -> None:
    status, shown, error = run_in_terminal(as_run(COMMANDS[0]), cwd=tmp_path, columns=80)
    assert status == 0, error
    lines = shown.splitlines()
    assert "0-11 (BertLayer)" in shown
    assert max(len(line) for line in lines) <= 80
    # Wrapped, never cut: every shape that opens on a line closes on it.
    assert all(line.count("[") == line.count("]") for line in lines)


@pytest.mark.slow
def test_bert_with_lora_draws_delta_parameters_purple(tmp_path: Path) -> None:
    result = run(COMMANDS[1], tmp_path)
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "lora.svg").read_text()
    assert ">lora_A</text>" in svg
    assert colors_of(svg, "weight:[8, 768]") == {DARK.delta.color}  # lora_A's own weights, not only the summary


@pytest.mark.slow
def test_llama_70b_on_the_meta_device(tmp_path: Path) -> None:
    result = run(COMMANDS[2], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0-79 (LlamaDecoderLayer)" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("parameters: 69.0B total")
    assert all(line.count("[") == line.count("]") for line in result.stdout.splitlines())
