"""Printed output: captured with work linear in its size, capped to its first and last lines (no torch here)."""

from __future__ import annotations

import pytest

from sphinx_modelvis.capture import CUT_MARK, Capture, PrintedText, TextBlock, TreeBlock
from sphinx_modelvis.execution.snippet import captured_output
from sphinx_modelvis.rendering import render
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo


def flood(lines: int, *, max_lines: int) -> Capture:
    """What a snippet printing ``lines`` lines of 100 characters leaves, as the worker captures it."""
    line = "x" * 99
    with captured_output(max_lines=max_lines) as capture:
        for _ in range(lines):
            print(line)
    return capture


class CountedText(PrintedText):
    """The collector of printed text, counting its work: its compactions and the characters each one joins."""

    def __init__(self, **options: int) -> None:
        self.compactions = 0
        self.joined = 0
        super().__init__(**options)

    def _compact(self) -> int:
        self.compactions += 1
        self.joined += sum(len(part) for part in self._parts)
        return super()._compact()


def print_into(printed: PrintedText, lines: int) -> TextBlock | None:
    """What ``print`` of ``lines`` lines of 100 characters writes (the line, then its newline), and the block."""
    line = "x" * 99
    for _ in range(lines):
        printed.write(line)
        printed.write("\n")
    return printed.block()


# How the time of a flood grows with its size is measured by bench/print_capture.py; these check the work done.


@pytest.mark.parametrize("lines", [50_000, 200_000])
def test_a_capped_flood_joins_each_character_once_and_the_kept_lines_once_a_chunk(lines: int) -> None:
    printed = CountedText(max_lines=1000)
    block = print_into(printed, lines)
    # A compaction each CHUNK of writes (a write weighs its length and WRITE_WEIGHT), and one at the end.
    weighed = lines * (100 + 2 * PrintedText.WRITE_WEIGHT)
    assert printed.compactions <= weighed // PrintedText.CHUNK + 1
    # Each joins what was written since the one before and what the cap kept (the last 500 lines, and the line
    # being written): work linear in the size (joined onto one string write by write, it was quadratic).
    assert printed.joined <= 100 * lines + printed.compactions * 501 * 100
    assert block is not None and block.omitted == lines - 1000


def test_uncapped_output_is_appended_write_by_write_and_joined_once_at_the_end() -> None:
    printed = CountedText(max_lines=0)
    line = "x" * 99
    for _ in range(10_000):
        printed.write(line)
        printed.write("\n")
    assert printed.compactions == 0
    assert len(printed._parts) == 20_000, "each write kept as it came: nothing joined while the snippet prints"
    block = printed.block()
    assert block is not None and block.ansi == (line + "\n") * 10_000


def test_a_flood_keeps_its_first_and_last_lines_and_says_how_many_are_left_out() -> None:
    with captured_output(max_lines=10) as capture:
        for step in range(1000):
            print(f"step {step}")
    (block,) = capture.blocks
    assert isinstance(block, TextBlock)
    assert block.ansi.splitlines() == [f"step {step}" for step in range(5)]
    assert block.tail.splitlines() == [f"step {step}" for step in range(995, 1000)]
    assert block.omitted == 990
    lines = str(render(Capture.from_json(capture.to_json()), format="text")).splitlines()
    assert lines[:5] == [f"step {step}" for step in range(5)]
    assert lines[5] == "⋯ 990 lines left out: the figure keeps the first and last of 10 (:max-lines:) ⋯"
    assert lines[6:] == [f"step {step}" for step in range(995, 1000)]


def test_output_within_the_cap_is_kept_whole_and_zero_keeps_everything() -> None:
    with captured_output(max_lines=10) as capture:
        print("a\nb\nc")
    assert render(capture, format="text") == "a\nb\nc\n"
    everything = flood(3000, max_lines=0)
    assert str(render(everything, format="text")).count("\n") == 3000


def test_long_lines_count_as_the_lines_they_wrap_into() -> None:
    with captured_output(max_lines=6, columns=50) as capture:
        print("y" * 1_000_000)
        print("end")
    (block,) = capture.blocks
    assert isinstance(block, TextBlock)
    assert len(block.ansi) + len(block.tail) < 1000, "a line longer than the figure can show is cut short"
    assert CUT_MARK in block.ansi
    lines = str(render(capture, format="text", width=50)).splitlines()
    assert len(lines) == 7 and lines[3].startswith("⋯ ")
    assert lines[-1] == "end"


def test_each_run_of_printed_text_between_trees_is_capped_on_its_own() -> None:
    tree = TreeBlock(ModelTree(ModuleNode("root", "Linear", [ParamInfo("weight", (2, 2))])))
    with captured_output(max_lines=4) as capture:
        for index in range(20):
            print(f"before {index}")
        stream = __import__("sys").stdout
        stream.modelvis_add_tree(tree)
        print("after", end="")
    kinds = [type(block).__name__ for block in capture.blocks]
    assert kinds == ["TextBlock", "TreeBlock", "TextBlock"]
    first, _, last = capture.blocks
    assert isinstance(first, TextBlock) and isinstance(last, TextBlock)
    assert first.omitted == 16 and last.ansi == "after" and last.omitted == 0


def test_old_and_new_capture_json_read_alike() -> None:
    capped = Capture([TextBlock("a\n", omitted=3, tail="z\n", max_lines=2)])
    assert Capture.from_json(capped.to_json()) == capped
    assert Capture.from_json('{"blocks":[{"kind":"text","ansi":"x"}]}') == Capture([TextBlock("x")])
