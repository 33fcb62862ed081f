"""FLOPs in the forward view (issue 20 §4): our count of a pass (``structure_graph(inputs=X, flops=True)``, which
runs PyTorch's ``FlopCounterMode`` in the traced pass) against torchinfo 1.8.0's mult-adds ×2
(``summary(model, input_data=X).total_mult_adds``) for the same models and inputs, in the same run, and what the
count adds to the forward view's time.

Cases, all on the meta device: BERT-base (``BertForMaskedLM(BertConfig())``) on one sequence of 128 and of 512
tokens, and Llama 3 70B's configuration on one sequence of 16 and of 2048 tokens. The totals are split where the
two tools differ:

- **Linear layers**: ours is 2 × in × out per row (every token of every sequence); torchinfo 1.8.0 multiplies
  a ``Linear``'s parameters (weight and bias) by the output's *first* dimension only, the batch, so a layer over
  a sequence counts as if it saw one token (torchinfo issue #77, fixed after 1.8.0 by pull request #318).
- **Attention's matrix products** (``Q·Kᵀ`` and ``A·V``, the ``bmm`` of the meta device's attention): ours counts
  them; torchinfo counts parameters only, and attention has none.
- **Other layers** (embeddings, norms, the MLM head's bias): torchinfo counts their parameters × batch as
  mult-adds; PyTorch's counter counts no FLOPs for lookups and norms.

Times: one child process per case (the parent imports no torch), one warm-up round and ``--repeat`` rounds (3)
of the forward view without and with ``flops=True`` and of torchinfo's summary, interleaved; medians. Run it
with ``bench/.venv`` (torchinfo is installed there): ``bench/.venv/bin/python bench/flops_view.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from typing import Any

from forward_view import run_child
from machine import describe

#: The cases: name -> (label, model family, sequence length).
CASES: dict[str, tuple[str, str, int]] = {
    "bert-128": ("BERT-base, 128 tokens", "bert", 128),
    "bert-512": ("BERT-base, 512 tokens", "bert", 512),
    "llama-16": ("Llama 3 70B config, 16 tokens", "llama", 16),
    "llama-2048": ("Llama 3 70B config, 2048 tokens", "llama", 2048),
}
SIDES = ("forward", "flops", "torchinfo")


def format_flops(count: float) -> str:
    """``28.5 G``: three significant digits and a prefix."""
    for prefix, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.3g} {prefix}"
    return f"{count:.0f}"


# --- the child side: torch is imported only here --------------------------------------------------------------


def child(case: str, repeat: int) -> dict[str, Any]:
    """Count and time ``case``: both tools' totals split by kind of layer, and each side's times."""
    import torch
    from models import bert_base, llama_70b
    from torchinfo import summary

    from sphinx_modelvis import Visualization

    _label, family, sequence = CASES[case]
    with torch.device("meta"):
        model = (bert_base if family == "bert" else llama_70b)().eval()
    inputs = torch.ones(1, sequence, dtype=torch.long, device="meta")

    def forward() -> Any:
        return Visualization(model).structure_graph(inputs=inputs, printTree=False)

    def flops() -> Any:
        return Visualization(model).structure_graph(inputs=inputs, flops=True, printTree=False)

    def info() -> Any:
        return summary(model, input_data=inputs, verbose=0)

    runs = {"forward": forward, "flops": flops, "torchinfo": info}
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    results: dict[str, Any] = {}
    for round_ in range(repeat + 1):
        for side in SIDES:
            gc.collect()
            start = time.perf_counter()
            results[side] = runs[side]()
            seconds = time.perf_counter() - start
            if round_:
                times[side].append(seconds)
            print(f"  {case} {side}: {'warm-up' if not round_ else f'run {round_}'}: {seconds:.3f} s", file=sys.stderr)

    tree = results["flops"].tree
    linear_paths = {path for path, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    ours_linear = sum(node.flops for path, node in tree.root.places() if path in linear_paths and node.flops > 0)
    by_operation = dict(tree.flops.by_operation)
    attention = by_operation.get("bmm", 0) + by_operation.get("attention", 0)
    # torchinfo's leaf layers: their mult-adds, those of Linear layers apart.
    leaves = [layer for layer in results["torchinfo"].summary_list if layer.is_leaf_layer]
    info_linear = sum(layer.macs for layer in leaves if isinstance(layer.module, torch.nn.Linear))
    # The same rows as torchinfo's fix (pull request #318) counts them: parameters × every leading dimension.
    info_linear_rows = sum(
        layer.macs // layer.output_size[0] * math.prod(layer.output_size[:-1])
        for layer in leaves
        if isinstance(layer.module, torch.nn.Linear)
    )
    biases = sum(
        module.out_features * sequence
        for module in model.modules()
        if getattr(module, "bias", None) is not None and isinstance(module, torch.nn.Linear)
    )
    info_other = sum(layer.macs for layer in leaves if not isinstance(layer.module, torch.nn.Linear))
    return {
        "ours": tree.flops.total,
        "ours_linear": ours_linear,
        "ours_attention": attention,
        "ours_other": tree.flops.total - ours_linear - attention,
        "by_operation": by_operation,
        "torchinfo": 2 * results["torchinfo"].total_mult_adds,
        "torchinfo_linear": 2 * info_linear,
        "torchinfo_linear_rows": 2 * info_linear_rows,
        "biases": 2 * biases,
        "torchinfo_other": 2 * info_other,
        "times": times,
    }


# --- the parent side: no torch ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a case may take (default 900)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return 0

    results = {case: run_child(["--child", case, str(args.repeat)], args.timeout, __file__) for case in CASES}
    print("# FLOPs in the forward view against torchinfo's mult-adds\n")
    print("\n".join(describe(("torch", "transformers", "torchinfo"))))
    print("\n## Totals of one pass (FLOPs; torchinfo: mult-adds × 2)\n")
    print("| case | ours | torchinfo × 2 | ours / torchinfo | ours: attention's matmuls | share of ours |")
    print("|---|---:|---:|---:|---:|---:|")
    for case, result in results.items():
        label = CASES[case][0]
        if "failed" in result:
            print(f"| {label} | {result['failed']} | | | | |")
            continue
        ratio = result["ours"] / result["torchinfo"] if result["torchinfo"] else float("nan")
        share = result["ours_attention"] / result["ours"]
        print(
            f"| {label} | {format_flops(result['ours'])} | {format_flops(result['torchinfo'])} | {ratio:.1f}× | "
            f"{format_flops(result['ours_attention'])} | {share:.1%} |"
        )
    print("\n## Where they differ\n")
    print(
        "| case | Linear layers: ours | Linear layers: torchinfo × 2 | the same, every row (#318) | of which biases | "
        "ours − (every row − biases) | attention: ours | attention: torchinfo |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for case, result in results.items():
        if "failed" in result:
            continue
        print(
            f"| {CASES[case][0]} | {format_flops(result['ours_linear'])} | "
            f"{format_flops(result['torchinfo_linear'])} | {format_flops(result['torchinfo_linear_rows'])} | "
            f"{format_flops(result['biases'])} | "
            f"{result['ours_linear'] - (result['torchinfo_linear_rows'] - result['biases']):,} | "
            f"{format_flops(result['ours_attention'])} | 0 |"
        )
    print("\n| case | other layers: ours | other layers: torchinfo × 2 | ours by operation |")
    print("|---|---:|---:|---|")
    for case, result in results.items():
        if "failed" in result:
            continue
        operations = ", ".join(f"{name} {format_flops(count)}" for name, count in result["by_operation"].items())
        print(
            f"| {CASES[case][0]} | {format_flops(result['ours_other'])} | "
            f"{format_flops(result['torchinfo_other'])} | {operations} |"
        )
    print(f"\n## Time (median of {args.repeat} after a warm-up)\n")
    print("| case | forward view | forward view + FLOPs | added by the count | torchinfo summary |")
    print("|---|---:|---:|---:|---:|")
    for case, result in results.items():
        if "failed" in result:
            continue
        median = {side: statistics.median(result["times"][side]) for side in SIDES}
        print(
            f"| {CASES[case][0]} | {median['forward']:.3f} s | {median['flops']:.3f} s | "
            f"{median['flops'] - median['forward']:+.3f} s | {median['torchinfo']:.3f} s |"
        )
    return 1 if any("failed" in result for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
