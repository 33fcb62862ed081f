"""The `modelvis` command line, run as a user runs it (a subprocess) on snippet files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from terminal import run_in_terminal

SMALL = """\
import torch
from torch import nn

helper = nn.Linear(1, 1)
model = nn.Sequential(*(nn.Linear(8, 8) for _ in range(4)), nn.ReLU())
print("building done")
"""


#: A model whose forward view has a module run twice; changed by ``TWICE_CHANGES`` and compared with the model as it
#: was, its figure with ``--inputs torch.ones(3, 4)`` starts with ``TWICE_COMPARED`` (here, in Sphinx and in MkDocs).
TWICE = """\
from collections import OrderedDict

import torch
from torch import nn


class Twice(nn.Sequential):
    def forward(self, x):
        return self.out(self.body(self.body(x)))


net = Twice(OrderedDict(body=nn.Linear(4, 4), out=nn.Linear(4, 2)))
"""
TWICE_CHANGES = "net.body.requires_grad_(False)\nnet.add_module('extra', nn.Linear(2, 2))\n"
TWICE_COMPARED = [
    "  root → [3, 2]",
    "~ ├── body (Linear) weight:[4, 4] bias:[4] (was tunable) → [3, 4] ×2",
    "  ├── out (Linear) weight:[2, 4] bias:[2] → [3, 2]",
    "+ └── extra (Linear) weight:[2, 2] bias:[2] (never called)",
]


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


def test_check_of_a_png_compares_pixels_and_says_where_they_differ(snippet: Path) -> None:
    from PIL import Image

    figure = snippet.parent / "figure.png"
    assert modelvis(snippet.name, "-o", figure.name, cwd=snippet.parent).returncode == 0
    assert modelvis(snippet.name, "-o", figure.name, "--check", cwd=snippet.parent).returncode == 0
    # The same pixels in other bytes (as another Pillow or zlib writes them) are not drift.
    with Image.open(figure) as image:
        width, height = image.size
        image.save(figure, compress_level=1)
    recoded = modelvis(snippet.name, "-o", figure.name, "--check", cwd=snippet.parent)
    assert recoded.returncode == 0, recoded.stderr
    assert recoded.stdout == "figure.png: up to date (the same pixels, encoded differently)\n"
    # A changed dimension: the same size of image, pixels changed on a few lines only.
    snippet.write_text(SMALL.replace("nn.Linear(8, 8)", "nn.Linear(8, 9)"))
    drift = modelvis(snippet.name, "-o", figure.name, "--check", cwd=snippet.parent)
    assert drift.returncode == 1
    found = re.search(
        r"figure\.png: out of date \((\d+) pixels differ, within x (\d+)-(\d+), y (\d+)-(\d+)\)", drift.stderr
    )
    assert found, drift.stderr
    count, left, right, top, bottom = map(int, found.groups())
    assert 0 < count < width * height and 0 <= left <= right < width and 0 < top <= bottom < height - 1
    # A line more: the size changed, and that is said first.
    snippet.write_text(SMALL.replace("nn.ReLU()", "nn.ReLU(), nn.Linear(8, 2)"))
    taller = modelvis(snippet.name, "-o", figure.name, "--check", cwd=snippet.parent)
    assert taller.returncode == 1
    assert f"figure.png: out of date (the size changed from {width}×{height} to {width}×" in taller.stderr


def test_check_of_many_figures_lists_every_drifted_one(tmp_path: Path) -> None:
    (tmp_path / "small.py").write_text(SMALL)
    (tmp_path / "twice.py").write_text(TWICE)
    for name, out in (("small.py", "small.svg"), ("twice.py", "twice.png"), ("small.py", "small.txt")):
        assert modelvis(name, "-o", out, cwd=tmp_path).returncode == 0
    pairs = ("small.py:small.svg", "twice.py:twice.png", "small.py:small.txt")
    fine = modelvis("--check", *pairs, cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr
    assert fine.stdout.splitlines() == [f"{pair.split(':')[1]}: up to date" for pair in pairs]
    assert fine.stderr.splitlines()[-1] == "modelvis: checked 3 figures: 3 ok, 0 out of date, 0 failed"
    (tmp_path / "small.py").write_text(SMALL.replace("range(4)", "range(3)"))
    drift = modelvis("--check", *pairs, "broken.py:broken.svg", cwd=tmp_path)
    assert drift.returncode == 2  # a figure that cannot be drawn (no such snippet) outweighs drift
    assert "small.svg: out of date" in drift.stderr and "small.txt: out of date" in drift.stderr
    assert drift.stdout == "twice.png: up to date\n"
    assert "modelvis: cannot read broken.py" in drift.stderr
    assert drift.stderr.splitlines()[-1] == "modelvis: checked 4 figures: 1 ok, 2 out of date, 1 failed"
    # The same from a manifest, each line with its own options.
    assert modelvis("twice.py", "-o", "light.svg", "--theme", "light", cwd=tmp_path).returncode == 0
    (tmp_path / "figures.txt").write_text(
        "# the committed figures\nsmall.py -o small.svg\n\ntwice.py:twice.png\ntwice.py -o light.svg --theme light\n"
    )
    listed = modelvis("--check", "--manifest", "figures.txt", cwd=tmp_path)
    assert listed.returncode == 1
    assert listed.stdout.splitlines() == ["twice.png: up to date", "light.svg: up to date"]
    assert listed.stderr.splitlines()[-1] == "modelvis: checked 3 figures: 2 ok, 1 out of date, 0 failed"
    (tmp_path / "figures.txt").write_text("small.py -o small.svg --max-depth none\n")
    wrong = modelvis("--check", "--manifest", "figures.txt", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.startswith("modelvis: figures.txt, line 1: argument --max-depth")


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


def test_a_comparison_with_inputs_keeps_the_forward_view(tmp_path: Path) -> None:
    (tmp_path / "before.py").write_text(TWICE)
    (tmp_path / "after.py").write_text(TWICE + TWICE_CHANGES)
    result = modelvis(
        "after.py", "--compare", "before.py", "--inputs", "torch.ones(3, 4)", "--format", "txt", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == TWICE_COMPARED
    assert lines[-2].startswith("changes: +6 added") and lines[-1] == "forward: [3, 4] -> [3, 2]"


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


def test_the_snippet_sees_sys_argv_as_python_would_give_it(tmp_path: Path) -> None:
    """`python models/snippet.py` gives the file `sys.argv == ["models/snippet.py"]`, not modelvis's own."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "before.py").write_text(
        "import sys\nfrom torch import nn\nprint('before', sys.argv)\nold = nn.Linear(2, 2)\n"
    )
    (tmp_path / "models" / "snippet.py").write_text(
        "import sys\nfrom torch import nn\nprint('after', sys.argv)\nmodel = nn.Linear(2, 2)\n"
    )
    result = modelvis("models/snippet.py", "--compare", "models/before.py", "--width", "60", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "before ['models/before.py']\n" in result.stderr
    assert "after ['models/snippet.py']\n" in result.stderr
    # Written as given, not normalized: `python ./models/snippet.py` gives "./models/snippet.py".
    dotted = modelvis("./models/snippet.py", "--compare", "./models/before.py", "--width", "60", cwd=tmp_path)
    assert dotted.returncode == 0, dotted.stderr
    assert "before ['./models/before.py']\n" in dotted.stderr
    assert "after ['./models/snippet.py']\n" in dotted.stderr


WIDE = """\
from torch import nn

model = nn.Sequential(*(nn.Linear(8, 8) for _ in range(3)), nn.Linear(8, 8, bias=False))
model.add_module("a_long_name_" + "x" * 40, nn.Linear(100, 200))
"""


def test_piped_output_is_laid_out_at_the_documented_100_columns(tmp_path: Path) -> None:
    (tmp_path / "wide.py").write_text(WIDE)
    piped = modelvis("wide.py", cwd=tmp_path)  # stdout is a pipe, not a terminal
    assert piped.returncode == 0, piped.stderr
    written = modelvis("wide.py", "-o", "wide.txt", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert piped.stdout == (tmp_path / "wide.txt").read_text(), "piped output is laid out as a file is, at 100"
    longest = max(len(line) for line in piped.stdout.splitlines())
    assert 80 < longest <= 100, longest
    # The same width as --help says.
    assert "100 in a file or when piped" in " ".join(modelvis("--help", cwd=tmp_path).stdout.split())


def test_printed_to_a_terminal_the_tree_takes_the_terminal_s_width(tmp_path: Path) -> None:
    (tmp_path / "wide.py").write_text(WIDE)
    status, text, error = run_in_terminal(
        [sys.executable, "-m", "sphinx_modelvis", "wide.py"], cwd=tmp_path, columns=60
    )
    assert status == 0, error
    at_60 = modelvis("wide.py", "--width", "60", cwd=tmp_path).stdout
    assert text == at_60, "laid out to the terminal's 60 columns"
    assert at_60 != modelvis("wide.py", cwd=tmp_path).stdout, "which is not the piped layout"


TIED = """\
from torch import nn

model = nn.Module()
model.add_module("embedding_" + "x" * 60, nn.Embedding(10, 4))
model.head = nn.Linear(4, 10, bias=False)
model.head.weight = model.get_submodule("embedding_" + "x" * 60).weight
"""


@pytest.mark.parametrize("width", ["40", "100"])
def test_a_key_longer_than_the_width_is_printed_whole(tmp_path: Path, width: str) -> None:
    """A reader copies a key from the note; a cut one (`(tied to embedding_xxx`) is no key at all."""
    (tmp_path / "tied.py").write_text(TIED)
    result = modelvis("tied.py", "--width", width, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    key = "embedding_" + "x" * 60 + ".weight"
    assert any(
        line.strip() == f"(tied to {key})" or line.endswith(f"(tied to {key})") for line in result.stdout.splitlines()
    ), result.stdout


DEEP = """\
from torch import nn

model = nn.Linear(2, 2)
for depth in range(12):
    model = nn.Sequential(model, nn.Linear(2, 2))
"""
GUIDES = "│├└─ ⋯"
CONNECTOR_GUIDE = {"├── ": "│   ", "└── ": "    "}


def _guides(line: str) -> str:
    return line[: len(line) - len(line.lstrip(GUIDES))]


def test_compare_rows_whose_guides_are_elided_stay_aligned(tmp_path: Path) -> None:
    """At 40 columns a 13-deep tree leaves out its outer guides (`⋯`); the lines a module wraps onto keep its
    guides, and lines that leave out the same cells keep their guides in line with each other."""
    (tmp_path / "before.py").write_text(DEEP)
    (tmp_path / "after.py").write_text(DEEP + "model.requires_grad_(False)\n")
    narrow = modelvis("after.py", "--compare", "before.py", "--width", "40", cwd=tmp_path)
    wide = modelvis("after.py", "--compare", "before.py", "--width", "400", cwd=tmp_path)
    assert narrow.returncode == 0 and wide.returncode == 0, narrow.stderr + wide.stderr
    printed = narrow.stdout.splitlines()
    tree = [
        line[2:]
        for line in printed[1 : printed.index(next(line for line in printed if line.startswith("parameters:")))]
    ]
    full_heads = [line[2:] for line in wide.stdout.splitlines() if "── " in line]
    assert any(line.startswith("⋯") for line in tree), "the test is about elided guides"

    left_out: list[int] = []  # per line of `tree` (the root's line left out): how many guide cells it leaves out
    heads = iter(full_heads)
    head = ""
    for line in tree:
        if "── " in line:
            head, full = line, next(heads)
            full_guides = _guides(full)
            cells = next(
                k
                for k in range(len(full_guides) // 4 + 1)
                if _guides(line) == (full_guides if k == 0 else "⋯" + full_guides[4 * k + 1 :])
            )
            assert cells % 2 == 0, f"whole blocks (2 cells at 40 columns) are left out: {line!r} leaves out {cells}"
            left_out.append(cells)
        else:
            # A line the module wraps onto: under its first line's guides, the connector continued.
            head_guides = _guides(head)
            connector = head_guides[-4:]
            assert line.startswith(head_guides[:-4] + CONNECTOR_GUIDE.get(connector, connector)), (head, line)
            left_out.append(left_out[-1])
    for index in range(1, len(tree)):
        above, below = tree[index - 1], tree[index]
        if left_out[index - 1] != left_out[index]:
            continue
        for column, char in enumerate(_guides(below)):
            if char in "│├└":
                assert column < len(above) and above[column] not in " └─", f"guide cut off:\n{above}\n{below}"


def test_a_file_with_a_coding_cookie_is_read_as_python_reads_it(tmp_path: Path) -> None:
    # `python latin.py` runs this file: the cookie says its bytes are Latin-1 (b"\xe9" is "é").
    code = "# -*- coding: latin-1 -*-\nfrom torch import nn\n\nnom = 'caf\xe9'\nmodel = nn.Linear(2, 3)\nprint(nom)\n"
    (tmp_path / "latin.py").write_bytes(code.encode("latin-1"))
    assert subprocess.run([sys.executable, "latin.py"], cwd=tmp_path, capture_output=True).returncode == 0
    result = modelvis("latin.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("root weight:[3, 2] bias:[3]") and "café" in result.stderr
    (tmp_path / "wrong.py").write_bytes(b"# -*- coding: no-such-codec -*-\nx = 1\n")
    wrong = modelvis("wrong.py", cwd=tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr.startswith("modelvis: cannot read wrong.py as Python source: ")
