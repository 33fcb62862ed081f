"""Timeouts: how soon after its timeout a hung snippet is stopped and the page can go on.

A figure runner (``FigureRunner``, no cache) runs, on one page, a snippet that defines a value, then a snippet that
hangs with ``:timeout: 1``, then one that prints the value (replayed into a new worker). Three ways to hang, in
turn each round: asleep in C (``time.sleep``), spinning in Python, and asleep with a child process of its own. For
each: the seconds ``run()`` of the hung snippet took, what of it came after the timeout (the stack dump's grace,
the kill, the reaping), and the seconds the next figure took (a new worker and the replay). Target: the hung
snippet returns within 2 s of its timeout (``tests/test_execution.py`` checks that it is stopped and killed; the
time is measured here). Run it with the dev environment: ``.venv/bin/python bench/timeout_stop.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from machine import describe

TIMEOUT = 1.0
#: How long after its timeout a hung snippet may take to come back.
TARGET = 2.0
HANGS = {
    "asleep in C (`time.sleep(60)`)": "import time\ntime.sleep(60)\n",
    "spinning in Python (`while True: pass`)": "while True:\n    pass\n",
    "asleep with a child process (`sleep 60`)": (
        "import subprocess, time\nchild = subprocess.Popen(['sleep', '60'])\ntime.sleep(60)\n"
    ),
}


def one_round(code: str) -> tuple[float, float]:
    """Seconds of the hung snippet's ``run()`` and of the next figure's, on a page of its own."""
    from sphinx_modelvis.config import FigureOptions, ModelvisConfig
    from sphinx_modelvis.execution.session import FigureRunner, Snippet

    runner = FigureRunner(ModelvisConfig(), cache_dir=None)
    try:
        page = runner.page("t.md")
        page.run(Snippet("value = 7\n", "t.md", 1), FigureOptions(timeout=60.0))
        start = time.perf_counter()
        hung = page.run(Snippet(code, "t.md", 10), FigureOptions(timeout=TIMEOUT))
        stopped = time.perf_counter() - start
        assert hung.failure is not None and hung.failure.kind == "timeout", hung.failure
        start = time.perf_counter()
        after = page.run(Snippet("print(value)\n", "t.md", 20), FigureOptions(timeout=60.0))
        went_on = time.perf_counter() - start
        assert after.failure is None, after.failure
        return stopped, went_on
    finally:
        runner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds; each median is shown")
    args = parser.parse_args(argv)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in HANGS}
    for round_number in range(args.repeat):
        for name, code in HANGS.items():
            times[name].append(one_round(code))
        done = ", ".join(f"{values[-1][0]:.2f} s" for values in times.values())
        print(f"round {round_number + 1}: {done}", file=sys.stderr)

    print("\n".join(describe(("sphinx-modelvis", "torch"))))
    print(f"- a snippet hung with `:timeout: {TIMEOUT:g}`, then the page's next figure")
    print()
    print("| hung snippet | run() of it | after its timeout | slowest | next figure | runs | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    missed = False
    for name, values in times.items():
        stopped = statistics.median(value[0] for value in values)
        slowest = max(value[0] for value in values)
        went_on = statistics.median(value[1] for value in values)
        met = slowest - TIMEOUT <= TARGET
        missed = missed or not met
        verdict = f"<= {TARGET:g} s after it: {'met' if met else 'MISSED'}"
        print(
            f"| {name} | {stopped:.2f} s | {stopped - TIMEOUT:.2f} s | {slowest:.2f} s | {went_on:.2f} s "
            f"| {len(values)} | {verdict} |"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
