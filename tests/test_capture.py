"""Printed output: captured in time linear in its size, capped to its first and last lines (no torch here)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sphinx_modelvis.capture import CUT_MARK, Capture, TextBlock, TreeBlock
from sphinx_modelvis.execution.snippet import captured_output
from sphinx_modelvis.rendering import build_figure, render
from sphinx_modelvis.tree import ModelTree, ModuleNode, ParamInfo


def flood(lines: int, *, max_lines: int) -> Capture:
    """What a snippet printing ``lines`` lines of 100 characters leaves, as the worker captures it."""
    line = "x" * 99
    with captured_output(max_lines=max_lines) as capture:
        for _ in range(lines):
            print(line)
    return capture


def fastest(*runs: Callable[[], object], repeat: int = 5) -> list[float]:
    """The best time of each of ``runs``, taken in turns so that a busy moment of the machine (other tests,
    a browser) slows them alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, taken in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            taken.append(time.perf_counter() - start)
    return [min(taken) for taken in times]


@pytest.mark.parametrize("max_lines", [1000, 0], ids=["capped", "everything"])
def test_printing_costs_time_linear_in_its_size(max_lines: int) -> None:
    """Four times the output takes about four times as long (joined onto one string, it took sixteen)."""

    def through_the_figure(lines: int) -> Callable[[], object]:
        def run() -> object:
            capture = Capture.from_json(flood(lines, max_lines=max_lines).to_json())
            # Drawn only when capped: 200,000 lines of drawing measure rich, not the capture.
            return build_figure(capture) if max_lines else capture

        return run

    small, large = fastest(through_the_figure(50_000), through_the_figure(200_000))
    assert large / small < 8, f"{small:.3f} s for 50,000 lines, {large:.3f} s for 200,000"


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
