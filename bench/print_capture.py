"""Printed output: a snippet printing 50 MB, captured as a figure's worker captures it, against plain Python.

Sides, interleaved (each round runs all of them, so a busy moment of the machine hits them alike), run in this
process on the same compiled snippet: **plain**, the snippet writing to ``/dev/null`` (a buffered file, as
``python snippet.py > /dev/null`` has); **capped**, the snippet under the figure's capture with the default line
cap (1,000 lines: the first and last 500 are kept); **everything**, the capture with no cap (``:max-lines: 0``);
and, for reference, the capped capture handed over as JSON and drawn as an SVG figure, as a docs build does.
The two captures also run on a quarter of the flood: four times the output should take about four times as long
(joined onto one string write by write, as before the hardening issue, it took sixteen). Then, once, the
end-to-end cost: ``sphinx-build`` of a page with that snippet against ``python snippet.py > /dev/null`` in a child
process. Targets: capturing at most 2x plain (the hardening issue), four times the output at most 8x the time.
Run it with the dev environment: ``.venv/bin/python bench/print_capture.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from machine import describe

#: 500,000 lines of 100 characters (with their newline): 50 MB.
LINES = 500_000
SNIPPET = f"""\
line = "x" * 99
for step in range({LINES}):
    print(line)
"""
QUARTER = SNIPPET.replace(str(LINES), str(LINES // 4))
#: Four times the output in at most this many times the time: linear, with room for a busy machine (quadratic: 16).
SCALING_TARGET = 8.0
TARGET = 2.0
#: The sides the target is for: capturing. Drawing the capped figure is a fixed cost, shown for reference.
TARGETED = ("capped", "everything")


def plain(code: object) -> None:
    saved = sys.stdout
    with open(os.devnull, "w", encoding="utf-8") as sink:
        sys.stdout = sink
        try:
            exec(code, {"__name__": "__main__"})
        finally:
            sys.stdout = saved


def captured(code: object, *, max_lines: int, draw: bool) -> None:
    from sphinx_modelvis.capture import Capture
    from sphinx_modelvis.execution.snippet import captured_output
    from sphinx_modelvis.rendering import build_figure, render_figure

    with captured_output(max_lines=max_lines) as capture:
        exec(code, {"__name__": "__main__"})
    if draw:  # what the host does with it: the capture crosses as JSON and becomes an SVG
        render_figure(build_figure(Capture.from_json(capture.to_json())), "svg")


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def end_to_end(folder: Path) -> tuple[float, float]:
    """Wall seconds of ``python snippet.py > /dev/null`` and of a cold ``sphinx-build`` of a page with it."""
    (folder / "snippet.py").write_text(SNIPPET)
    (folder / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    page = "Flood\n=====\n\n.. modelvis::\n   :hide-code:\n\n" + textwrap.indent(SNIPPET, "   ")
    (folder / "index.rst").write_text(page)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    with open(os.devnull, "w") as sink:
        start = time.perf_counter()
        subprocess.run([sys.executable, str(folder / "snippet.py")], stdout=sink, check=True, env=env)
        python = time.perf_counter() - start
    command = [sys.executable, "-m", "sphinx", "-q", "-E", "-b", "html", "-D", f"modelvis_cache_dir={folder / 'c'}"]
    start = time.perf_counter()
    subprocess.run([*command, str(folder), str(folder / "_build")], check=True, env=env)
    return python, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds; each side's median is shown")
    args = parser.parse_args(argv)
    code = compile(SNIPPET, "<snippet>", "exec")
    quarter = compile(QUARTER, "<snippet>", "exec")
    sides: dict[str, Callable[[], None]] = {
        "plain": lambda: plain(code),
        "capped": lambda: captured(code, max_lines=1000, draw=False),
        "everything": lambda: captured(code, max_lines=0, draw=False),
        "figure": lambda: captured(code, max_lines=1000, draw=True),
        "capped, a quarter": lambda: captured(quarter, max_lines=1000, draw=False),
        "everything, a quarter": lambda: captured(quarter, max_lines=0, draw=False),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for round_number in range(args.repeat):
        for name, run in sides.items():
            times[name].append(timed(run))
        done = ", ".join(f"{name} {values[-1]:.3f} s" for name, values in times.items())
        print(f"round {round_number + 1}: {done}", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in times.items()}
    with tempfile.TemporaryDirectory(prefix="modelvis-flood-") as folder:
        python, sphinx = end_to_end(Path(folder))

    print("\n".join(describe(("sphinx-modelvis", "sphinx", "rich"))))
    print(f"- snippet: {LINES:,} lines of 100 characters printed (50 MB)")
    print()
    print("| side | median | runs | ratio to plain | target |")
    print("|---|---:|---:|---:|---|")
    for name, label in (
        ("plain", "plain: the snippet writing to /dev/null (buffered)"),
        ("capped", "captured, default cap (1,000 lines)"),
        ("everything", "captured, no cap (`:max-lines: 0`)"),
        ("figure", "captured, default cap, then JSON and the SVG figure of its 1,001 lines"),
    ):
        ratio = medians[name] / medians["plain"]
        verdict = f"<= {TARGET:g}x: {'met' if ratio <= TARGET else 'MISSED'}" if name in TARGETED else ""
        shown = "" if name == "plain" else f"{ratio:.2f}x"
        print(f"| {label} | {medians[name]:.3f} s | {len(times[name])} | {shown} | {verdict} |")
    print()
    print(f"Four times the output ({LINES // 4:,} lines, then {LINES:,}):")
    print()
    print("| capture | a quarter | all | ratio | target |")
    print("|---|---:|---:|---:|---|")
    scaling = {name: medians[name] / medians[f"{name}, a quarter"] for name in TARGETED}
    for name in TARGETED:
        ratio = scaling[name]
        verdict = f"<= {SCALING_TARGET:g}x: {'met' if ratio <= SCALING_TARGET else 'MISSED'}"
        print(f"| {name} | {medians[f'{name}, a quarter']:.3f} s | {medians[name]:.3f} s | {ratio:.2f}x | {verdict} |")
    print()
    print(
        f"End to end, once: `python snippet.py > /dev/null` {python:.2f} s; a cold `sphinx-build -E` of a page with "
        f"that snippet (worker start and torch-free imports included) {sphinx:.2f} s."
    )
    missed = any(medians[name] / medians["plain"] > TARGET for name in TARGETED)
    missed = missed or any(ratio > SCALING_TARGET for ratio in scaling.values())
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
