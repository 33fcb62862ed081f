"""The adapter preview (issue 19): what ``structure_graph(targets=config)`` adds to a figure, next to what a user
does today to learn the same, in the same run: apply the config to a copy of the model (``get_peft_model(
copy.deepcopy(model), config)``) and ask PEFT for the counts (``get_nb_trainable_parameters()``).

Two cases, both built on the meta device (no weights): BERT-base (``BertForMaskedLM(BertConfig())``) with
``LoraConfig(r=8, target_modules=["query", "value"])``, and Llama 3 70B's configuration with
``LoraConfig(r=16, target_modules="all-linear")``. One warm-up round, not counted, then ``--repeat`` rounds (5),
each timing in turn the plain figure (``str(Visualization(model).structure_graph(printTree=False))``), the
preview figure (the same with ``targets=config``), the preview alone
(``sphinx_modelvis.targets.preview_targets``), and the peer. Medians, in one process: the sides share torch,
transformers and PEFT, imported before the first round. No budget is judged: the numbers are printed and
recorded in RESULTS.md. Run it with the dev environment: ``.venv/bin/python bench/target_preview.py``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from machine import describe


def _models() -> dict[str, tuple[str, Any, Any]]:
    import torch
    import transformers
    from models import llama_70b
    from peft import LoraConfig

    big = llama_70b()  # on the meta device
    with torch.device("meta"):
        bert = transformers.BertForMaskedLM(transformers.BertConfig())
    return {
        "bert-base-meta": ("BERT-base, LoRA on query, value", bert, LoraConfig(r=8, target_modules=["query", "value"])),
        "llama-70b-meta": ("Llama 3 70B config, LoRA all-linear", big, LoraConfig(r=16, target_modules="all-linear")),
    }


def _peer(model: Any, config: Any) -> tuple[int, int]:
    """What a user does today: apply the config to a copy and ask PEFT for the counts."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapted = get_peft_model(copy.deepcopy(model), copy.deepcopy(config))
    trainable, total = adapted.get_nb_trainable_parameters()
    return int(trainable), int(total)


def _median(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sides(model: Any, config: Any) -> dict[str, Callable[[], object]]:
    from sphinx_modelvis import Visualization
    from sphinx_modelvis.targets import preview_targets

    return {
        "plain": lambda: str(Visualization(model).structure_graph(printTree=False)),
        "figure": lambda: str(Visualization(model).structure_graph(printTree=False, targets=config)),
        "alone": lambda: preview_targets(model, config),
        "peer": lambda: _peer(model, config),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per side (default 5)")
    args = parser.parse_args()
    print("\n".join(describe(("torch", "transformers", "peft", "sphinx-modelvis"))))
    print()
    print("| case | plain figure | preview figure | preview alone | peer: get_peft_model on a copy |", end="")
    print(" peer / preview alone |")
    print("|---|---|---|---|---|---|")
    for label, model, config in _models().values():
        sides = _sides(model, config)
        for run in sides.values():  # warm-up: first imports, caches
            run()
        times = {name: _median(run, args.repeat) for name, run in sides.items()}
        ratio = times["peer"] / times["alone"]
        print(
            f"| {label} | {times['plain'] * 1000:.0f} ms | {times['figure'] * 1000:.0f} ms | "
            f"{times['alone'] * 1000:.0f} ms | {times['peer'] * 1000:.0f} ms | {ratio:.1f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
