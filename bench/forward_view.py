"""The forward view (issue 11): what ``structure_graph(inputs=X)`` adds to a figure, in time and memory, next
to torchinfo's ``summary(model, input_data=X)`` of the same models, in the same run.

Three cases: BERT-base (``BertForMaskedLM(BertConfig())``) with its weights on the CPU, BERT-base built on the
meta device, and Llama 3 70B's configuration on the meta device; the input is ``torch.ones(1, 16,
dtype=torch.long)`` (on the model's device). Each model is put in ``eval()`` mode once built (torchinfo runs
it in eval mode anyway; ``from_pretrained`` models come that way), so both sides run the same computation.

Each case runs in child processes of this script, so that nothing one case imports or allocates reaches the
next, and so that a child's ``getrusage`` peak is its own: the parent imports no torch (a child started with
``vfork`` + ``exec`` inherits the parent's peak RSS as its starting ``ru_maxrss``).

- **Times** (one child per case): one warm-up round, not counted, then ``--repeat`` rounds (3), each
  timing in turn the plain figure (``str(Visualization(model).structure_graph(printTree=False))``: build the
  tree, fold, lay out, text), the forward-view figure (the same with ``inputs=X``), torchinfo's
  ``str(summary(model, input_data=X, verbose=0))``, and for the breakdown the bare forward pass
  (``model(X)`` under ``torch.no_grad()``, no hooks) and ``sphinx_modelvis.tracing.trace_forward``
  alone (the pass with the hooks). Medians.
- **Memory and a cold run** (one child per case and side): a fresh process imports what the side needs
  (torch, transformers, sphinx-modelvis or torchinfo), builds the model, makes one figure (or summary) and
  reads ``getrusage(RUSAGE_SELF).ru_maxrss`` at the end, as a figure's worker would. It also reads its
  RSS after the imports and after building the model, and resets the kernel's peak (``/proc/self/clear_refs``)
  after building, so the figure's own peak above the built model is known too; the process peak is the
  larger of the peak before the reset and ``ru_maxrss`` at the end. The one run it makes is timed: the
  first, cold figure a docs build pays.

Every timed run is listed under the tables too: with torch's default two threads, while another process kept
both cores busy, BERT-base's pass on the CPU sometimes took about 1 s instead of 0.1 to 0.3 s, on every side
alike (most likely its second thread waiting for a busy core at each operation); ``--threads 1``
(``torch.set_num_threads`` in every child) shows the same models without that.

Issue 11's budgets: the forward view of BERT-base adds at most 0.5 s to its figure; Llama 70B on meta at most
2 s, with the worker under 500 MB peak RSS. The times are shown next to their budgets, not judged (a shared
machine); the peak RSS is judged, and a miss makes the script exit with 1. Run it with ``bench/.venv``
(torchinfo is installed there): ``bench/.venv/bin/python bench/forward_view.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from machine import describe

#: The cases: name -> (label, device, whether issue 11's BERT or Llama budget applies).
CASES: dict[str, tuple[str, str, str]] = {
    "bert-base-cpu": ("BERT-base, real weights", "cpu", "bert"),
    "bert-base-meta": ("BERT-base", "meta", "bert"),
    "llama-70b-meta": ("Llama 3 70B config", "meta", "llama"),
}
#: Issue 11: what the forward view may add to the figure, in seconds.
ADDED_BUDGET = {"bert": 0.5, "llama": 2.0}
#: Issue 11: the worker's peak RSS for Llama 70B on meta, in bytes (500 MB).
RSS_BUDGET = {"llama": 500 * 10**6}
#: The sides a fresh process measures (memory, one cold run).
RSS_SIDES = ("plain", "forward", "torchinfo")
#: Sides timed in the same process, in the order of each round.
TIMED_SIDES = ("plain", "forward", "torchinfo", "bare_pass", "trace")
SIDE_NAMES = {
    "plain": "plain",
    "forward": "forward view",
    "torchinfo": "torchinfo",
    "bare_pass": "bare pass",
    "trace": "trace_forward",
}
SEQUENCE = 16
MIB = 1024**2


# --- the child side: torch is imported only here --------------------------------------------------------------


def build_case(case: str) -> tuple[Any, Any]:
    """The model of ``case`` (in eval mode) and its input."""
    import torch
    from models import bert_base, llama_70b

    _label, device, family = CASES[case]
    build = bert_base if family == "bert" else llama_70b
    if device == "meta" and family == "bert":
        with torch.device("meta"):
            model = build()
    else:
        model = build()  # llama_70b builds on the meta device itself
    model.eval()
    return model, torch.ones(1, SEQUENCE, dtype=torch.long, device=device)


def describe_error(error: BaseException) -> str:
    """``TypeError: first line of the message``."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")[:160]
    return f"{type(error).__name__}: {first}".rstrip(": ")


def side_runner(side: str, model: Any, inputs: Any) -> Callable[[], str]:
    """What one run of ``side`` does; returns text whose lines are counted (empty for the breakdown sides)."""
    if side == "plain":
        from sphinx_modelvis import Visualization

        return lambda: str(Visualization(model).structure_graph(printTree=False))
    if side == "forward":
        from sphinx_modelvis import Visualization

        return lambda: str(Visualization(model).structure_graph(inputs=inputs, printTree=False))
    if side == "torchinfo":
        from torchinfo import summary

        return lambda: str(summary(model, input_data=inputs, verbose=0))
    if side == "bare_pass":
        import torch

        def bare() -> str:
            with torch.no_grad():
                model(inputs)
            return ""

        return bare
    if side == "trace":
        from sphinx_modelvis.tracing import trace_forward

        def trace() -> str:
            trace_forward(model, inputs)
            return ""

        return trace
    raise ValueError(side)


def timed(run: Callable[[], str]) -> tuple[float | None, str, str | None]:
    """One run after a collection: seconds (None on an exception), its text, the error."""
    gc.collect()
    start = time.perf_counter()
    try:
        text = run()
    except Exception as error:  # recorded, not raised: torchinfo may fail where we do not, or the reverse
        return None, "", describe_error(error)
    return time.perf_counter() - start, text, None


def child_times(case: str, repeat: int) -> dict[str, Any]:
    """Warm-up round, then ``repeat`` rounds of every timed side, interleaved."""
    import torch

    model, inputs = build_case(case)
    runners = {side: side_runner(side, model, inputs) for side in TIMED_SIDES}
    times: dict[str, list[float]] = {side: [] for side in TIMED_SIDES}
    lines: dict[str, int] = {}
    errors: dict[str, str] = {}
    for round_ in range(repeat + 1):
        for side, run in runners.items():
            if side in errors:
                continue
            seconds, text, error = timed(run)
            if error is not None:
                errors[side] = error
                continue
            assert seconds is not None
            lines[side] = text.count("\n") + 1 if text else 0
            if round_:
                times[side].append(seconds)
            label = "warm-up" if not round_ else f"run {round_}"
            print(f"  {case} {side}: {label}: {seconds:.3f} s", file=sys.stderr, flush=True)
    parameters = sum(param.numel() for param in model.parameters())
    return {
        "times": times,
        "lines": lines,
        "errors": errors,
        "parameters": parameters,
        "modules": sum(1 for _ in model.modules()),
        "threads": torch.get_num_threads(),
    }


def rss_now() -> int:
    """The process's resident set size now, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def high_water_mark() -> int | None:
    """``VmHWM``: the kernel's peak RSS of this process's memory (since the last reset), in bytes."""
    with open("/proc/self/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak() -> bool:
    """Reset ``VmHWM`` (and so ``ru_maxrss``) to the RSS now (Linux 4.0+); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as stream:
            stream.write("5")
    except OSError:
        return False
    return True


def max_rss() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_rss(case: str, side: str) -> dict[str, Any]:
    """A fresh process doing only ``side`` once on ``case``: its times and RSS at each step."""
    import torch  # noqa: F401  (the imports a figure's worker has made before the figure)
    import transformers

    # transformers imports a model's module when its class is first asked for: that belongs to the imports.
    getattr(transformers, "BertForMaskedLM" if CASES[case][2] == "bert" else "LlamaForCausalLM")

    if side == "torchinfo":
        import torchinfo  # noqa: F401
    else:
        import sphinx_modelvis
        import sphinx_modelvis.forward
        import sphinx_modelvis.introspect
        import sphinx_modelvis.tracing  # noqa: F401
    gc.collect()
    after_imports = rss_now()
    start = time.perf_counter()
    model, inputs = build_case(case)
    gc.collect()
    build_seconds = time.perf_counter() - start
    after_build = rss_now()
    peak_before_run = max_rss()
    was_reset = reset_peak()
    seconds, text, error = timed(side_runner(side, model, inputs))
    end_peak = max_rss()
    return {
        "after_imports": after_imports,
        "after_build": after_build,
        "build_seconds": build_seconds,
        "peak": max(peak_before_run, end_peak),
        "run_peak": high_water_mark() if was_reset else None,
        "seconds": seconds,
        "lines": text.count("\n") + 1 if text else 0,
        "error": error,
    }


# --- the parent side: no torch ---------------------------------------------------------------------------------


def run_child(arguments: list[str], timeout: float, script: str = __file__) -> dict[str, Any]:
    """``script`` (this one by default) with ``arguments`` (its ``--child ...``): its last stdout line, as JSON
    (or the failure)."""
    command = [sys.executable, os.path.abspath(script), *arguments]
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"did not finish within {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"failed": f"child process exited with {done.returncode}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def mem_total() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class Timed:
    """A side's median, or why it has none."""

    median: float | None
    runs: int
    lines: int
    error: str | None

    def cell(self) -> str:
        if self.error is not None:
            return f"fails: `{self.error}`"
        return "-" if self.median is None else f"{self.median:.3f} s"


def side_result(result: dict[str, Any], side: str) -> Timed:
    if "failed" in result:
        return Timed(None, 0, 0, result["failed"])
    times = result["times"][side]
    return Timed(
        statistics.median(times) if times else None,
        len(times),
        result["lines"].get(side, 0),
        result["errors"].get(side),
    )


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds after the warm-up; the median is shown")
    parser.add_argument("--only", default="", help=f"comma-separated cases (default: all of {', '.join(CASES)})")
    parser.add_argument("--timeout", type=float, default=900.0, help="time limit of each child process (s)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads in every child (default: torch's own choice)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, case, *rest = args.child
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        result = child_times(case, int(rest[0])) if kind == "times" else child_rss(case, rest[0])
        print(json.dumps(result), flush=True)
        sys.stdout.flush()
        os._exit(0)  # as a figure's worker ends; the peak has been read
    wanted = [name for name in args.only.split(",") if name] or list(CASES)
    unknown = set(wanted) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    if "torch" in sys.modules:
        raise AssertionError("the parent must not import torch (its peak RSS would become the children's)")
    header = describe(("sphinx-modelvis", "torch", "transformers", "torchinfo", "rich"))

    times: dict[str, dict[str, Any]] = {}
    memory: dict[str, dict[str, dict[str, Any]]] = {}
    threads_option = ["--threads", str(args.threads)] if args.threads else []
    for case in wanted:
        print(f"{case}: timing ({args.repeat} rounds after a warm-up)", file=sys.stderr, flush=True)
        times[case] = run_child([*threads_option, "--child", "times", case, str(args.repeat)], args.timeout)
        memory[case] = {}
        for side in RSS_SIDES:
            print(f"{case}: {side} in a fresh process", file=sys.stderr, flush=True)
            memory[case][side] = run_child([*threads_option, "--child", "rss", case, side], args.timeout)

    missed = False
    time_rows, breakdown_rows, memory_rows, notes, runs = [], [], [], [], []
    threads: set[int] = {int(result["threads"]) for result in times.values() if "threads" in result}
    for case in wanted:
        label, device, family = CASES[case]
        result = times[case]
        plain, forward, theirs = (side_result(result, side) for side in ("plain", "forward", "torchinfo"))
        bare, trace = side_result(result, "bare_pass"), side_result(result, "trace")
        added = forward.median - plain.median if forward.median is not None and plain.median is not None else None
        budget = ADDED_BUDGET[family]
        ratio = (
            f"{theirs.median / forward.median:.2f}x"
            if theirs.median is not None and forward.median is not None and forward.median > 0
            else "-"
        )
        time_rows.append(
            f"| {label} | {device} | {plain.cell()} | {forward.cell()} | "
            f"{'-' if added is None else f'{added:+.3f} s'} | at most {budget:g} s | {theirs.cell()} | {ratio} | "
            f"{plain.lines} / {forward.lines} / {theirs.lines} | {plain.runs} / {forward.runs} / {theirs.runs} |"
        )
        if "times" in result:
            runs.append(
                f"- {label}, {device}: "
                + "; ".join(
                    f"{SIDE_NAMES[side]} {', '.join(f'{value:.3f}' for value in result['times'][side])}"
                    for side in TIMED_SIDES
                )
            )
        rest = forward.median - trace.median if forward.median is not None and trace.median is not None else None
        hooks = trace.median - bare.median if trace.median is not None and bare.median is not None else None
        breakdown_rows.append(
            f"| {label} | {device} | {forward.cell()} | {bare.cell()} | {trace.cell()} | "
            f"{'-' if hooks is None else f'{hooks:+.3f} s'} | {'-' if rest is None else f'{rest:.3f} s'} |"
        )
        for side in RSS_SIDES:
            measured = memory[case][side]
            name = {"plain": "ours: plain figure", "forward": "ours: forward view", "torchinfo": "torchinfo"}[side]
            if "failed" in measured:
                memory_rows.append(f"| {label} | {device} | {name} | fails: {measured['failed']} | | | | | | |")
                continue
            verdict = ""
            if side == "forward" and family in RSS_BUDGET and device == "meta":
                limit = RSS_BUDGET[family]
                met = measured["peak"] < limit
                missed = missed or not met
                verdict = f"< {limit / 10**6:,.0f} MB ({limit / MIB:,.0f} MiB): {'met' if met else 'MISSED'}"
            run = f"fails: `{measured['error']}`" if measured["error"] else f"{measured['seconds']:.3f} s"
            memory_rows.append(
                f"| {label} | {device} | {name} | {run} | {measured['build_seconds']:.2f} s | "
                f"{mib(measured['after_imports'])} | {mib(measured['after_build'])} | {mib(measured['peak'])} | "
                f"{mib(measured['peak'] - measured['after_imports'])} | "
                f"{mib(None if measured['run_peak'] is None else measured['run_peak'] - measured['after_build'])} | "
                f"{verdict} |"
            )
        if family == "llama" and "parameters" in result:
            total = mem_total()
            notes.append(
                f"- torchinfo with real weights on {label}: not run; its {result['parameters'] / 1e9:.1f}B parameters "
                f"are {result['parameters'] * 4 / 1e9:,.0f} GB in float32 ({result['parameters'] * 2 / 1e9:,.0f} GB "
                f"in bfloat16), this machine has {'?' if total is None else f'{total / 1024**3:.1f} GiB'} of RAM."
            )

    print("\n".join(header))
    print(
        f"- torch threads: {', '.join(str(value) for value in sorted(threads)) or '?'} "
        f"({'set by --threads' if args.threads else 'torch default'}); input: "
        f"`torch.ones(1, {SEQUENCE}, dtype=torch.long)` on the model's device; models in `eval()` mode"
    )
    print()
    print(
        "| model | device | ours: plain figure | ours: forward-view figure | added by the forward view "
        "| budget (issue 11, added) | torchinfo `summary` | torchinfo / ours forward | lines: plain / forward / "
        "torchinfo | runs |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|")
    print("\n".join(time_rows))
    print()
    print(
        f"Medians of {args.repeat} rounds after a warm-up round, every side in turn in one process per model. "
        "plain = `str(Visualization(model).structure_graph(printTree=False))` (build, fold, lay out, text); "
        "forward = the same with `inputs=X` (plus one pass under no_grad with hooks, and the annotation); "
        "torchinfo = `str(summary(model, input_data=X, verbose=0))` (its default depth of 3). The budgets are "
        "times, shown next to the measure, not judged."
    )
    print()
    print(
        "| model | device | forward-view figure | bare forward pass (no hooks) | `trace_forward` (pass + hooks) "
        "| hooks over the bare pass | the rest: tree, annotation, text (figure - trace) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(breakdown_rows))
    print()
    print(
        "The same runs: what the forward-view figure's time is made of. bare forward pass = `model(X)` under "
        "`torch.no_grad()`, the floor of any forward view; `trace_forward` = the pass with a pre-hook and a hook "
        "on every module and the outputs summarized."
    )
    print()
    print(
        "| model | device | side | one run, cold | model build | RSS after imports | RSS after building "
        "| peak RSS (process) | peak above imports | the run's own peak above the built model | budget |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(memory_rows))
    print()
    print(
        "One fresh process per row: imports (torch, transformers, and sphinx-modelvis or torchinfo), builds the "
        "model, makes one figure or summary (timed: the first, cold run) and reads getrusage(RUSAGE_SELF)"
        ".ru_maxrss at the end. RSS after imports and after building: /proc/self/statm. The kernel's peak is "
        "reset after building (/proc/self/clear_refs), so the run's own peak is VmHWM after it; the process "
        "peak is the larger of ru_maxrss before the reset and at the end. MiB = 2^20 bytes."
    )
    print()
    print("Every timed run (s), in the order made:")
    print()
    print("\n".join(runs))
    if notes:
        print()
        print("\n".join(notes))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
