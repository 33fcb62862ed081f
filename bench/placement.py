"""The placement view (issue 20 §3) on Llama 2 70B on the meta device, against accelerate's own map-making alone.

Each measurement runs in a fresh child process (as a page's worker would: torch and transformers imported, the model
built on meta from its config in bf16), which reports its timings and its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``):

- ``plain``: the figure without placement (``structure_graph`` and its text rendering);
- ``device map``: the same figure with ``device_map="auto"`` over four 40 GiB devices (``max_memory={0: "40GiB", ...,
  3: "40GiB"}``): accelerate's ``get_balanced_memory`` and ``infer_auto_device_map`` run inside it;
- ``tp plan``: the same figure with ``tp_plan=8``;
- ``accelerate alone``: ``get_balanced_memory`` and ``infer_auto_device_map`` on the same model, nothing drawn.

The extra time of a placement figure is its time minus the plain figure's (goal: under 2 s), checked on a worker's
first figure (the first run; later ones reuse what it imported); the peak of its process is the
worker's (goal: 500 MB). Each child times ``REPEAT`` runs after one warm-up and reports the median. Run with
the dev environment: ``.venv/bin/python bench/placement.py``; exits 1 when a goal is missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from machine import describe

REPEAT = 5
GOAL_SECONDS = 2.0
GOAL_MB = 500.0

CHILD = textwrap.dedent(
    """
    import json, resource, statistics, sys, time
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from sphinx_modelvis import Visualization

    kind, repeat = sys.argv[1], int(sys.argv[2])
    config = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                         num_key_value_heads=8, vocab_size=32000)
    with torch.device("meta"):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    memory = {device: "40GiB" for device in range(4)}
    options = {"plain": {}, "device map": {"device_map": "auto", "max_memory": memory}, "tp plan": {"tp_plan": 8}}

    def run():
        if kind == "accelerate alone":
            from accelerate.utils import get_balanced_memory, infer_auto_device_map
            no_split = sorted(model._no_split_modules)
            limits = get_balanced_memory(model, max_memory=dict(memory), no_split_module_classes=no_split)
            return infer_auto_device_map(model, max_memory=limits, no_split_module_classes=no_split)
        figure = Visualization(model).structure_graph(printTree=False, **options[kind])
        return figure.render("text")

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for index in range(repeat + 1):
        start = time.perf_counter()
        result = run()
        if index:
            times.append(time.perf_counter() - start)
        else:
            first = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    shown = str(result).splitlines()[-2:] if kind != "accelerate alone" else [str(sorted(set(result.values())))]
    print(json.dumps({"median": statistics.median(times), "first": first, "peak_mb": peak / 1024,
                      "before_mb": before / 1024, "shown": shown}))
    """
)

KINDS = ("plain", "device map", "tp plan", "accelerate alone")


def measure(kind: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(REPEAT)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind}: {done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    print("# Placement view: Llama 2 70B (bf16, meta) on four 40 GiB devices and over 8 tensor-parallel ranks\n")
    for line in describe(("sphinx-modelvis", "torch", "transformers", "accelerate")):
        print(line)
    print(f"\nEach row: a fresh process; median of {REPEAT} runs after a warm-up; peak = ru_maxrss of that process.\n")
    results = {kind: measure(kind) for kind in KINDS}
    plain = float(results["plain"]["median"])  # type: ignore[arg-type]
    print("| run | first run s | median s | extra over plain figure s | peak RSS MB | RSS before MB |")
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        row = results[kind]
        first, median, peak, before = (float(row[key]) for key in ("first", "median", "peak_mb", "before_mb"))  # type: ignore[arg-type]
        extra = "" if kind in ("plain", "accelerate alone") else f"{median - plain:.3f}"
        print(f"| {kind} | {first:.3f} | {median:.3f} | {extra} | {peak:.0f} | {before:.0f} |")
    print("\nWhat each figure ends with:\n")
    for kind in KINDS:
        print(f"- {kind}: " + " / ".join(f"`{line}`" for line in results[kind]["shown"]))  # type: ignore[attr-defined]
    missed = []
    for kind in ("device map", "tp plan"):
        extra = float(results[kind]["first"]) - float(results["plain"]["first"])  # type: ignore[arg-type]
        peak = float(results[kind]["peak_mb"])  # type: ignore[arg-type]
        if extra >= GOAL_SECONDS:
            missed.append(f"{kind}: {extra:.2f} s extra (goal < {GOAL_SECONDS} s)")
        if peak > GOAL_MB:
            missed.append(f"{kind}: peak {peak:.0f} MB (goal {GOAL_MB:.0f} MB)")
    print("\nGoals: " + ("missed: " + "; ".join(missed) if missed else "met (extra time < 2 s, peak <= 500 MB)"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
