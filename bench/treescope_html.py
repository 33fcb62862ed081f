"""treescope's HTML of the tutorial's BERT (``BertForMaskedLM(BertConfig())``): the peer side of ``figure_size.py``
and ``page_load.py``.

treescope is no dependency of ours: this runs in ``bench/.venv`` (where it is installed), as a child process of
those scripts, which run in the dev environment. It writes each rendering to a file and prints one JSON line:
the versions, and per variant the files and how long each rendering took.

Variants:

- ``meta``: BERT built on the meta device (no weights), ``treescope.render_to_html(model)`` with its defaults
  (``compressed=True``: the tree is sent zlib-compressed and base64-encoded, and inflated by its script);
- ``meta-raw``: the same with ``compressed=False``, the markup its script puts in the page;
- ``cpu-names``: BERT with weights on the CPU. treescope 0.1.10 reads ``Tensor.names`` for each tensor's
  summary, which torch 2.13 no longer has (the rendering fails), so tensors get that attribute back (every
  dimension unnamed, what it always was for these weights): what treescope would send for real weights.

    bench/.venv/bin/python bench/treescope_html.py --out bench/out/x --variants meta,cpu-names --count 10
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS = ("meta", "meta-raw", "cpu-names")
#: The environment treescope is installed in (see README.md, "Set up").
PEER_PYTHON = Path(__file__).resolve().parent / ".venv" / "bin" / "python"


def run_peer(out: Path, variants: tuple[str, ...], count: int = 1) -> dict[str, Any]:
    """This script in ``bench/.venv``, as a child process: its JSON line, or ``{"error": why}``."""
    if not PEER_PYTHON.exists():
        return {"error": f"{PEER_PYTHON} missing (set it up as README.md says)"}
    command = [str(PEER_PYTHON), __file__, "--out", str(out), "--variants", ",".join(variants), "--count", str(count)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"treescope_html.py exited with {done.returncode}: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder the renderings are written to")
    parser.add_argument("--variants", default="meta", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--count", type=int, default=1, help="renderings of each variant (each with its own ids)")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")

    import torch
    import treescope
    from transformers import BertConfig, BertForMaskedLM

    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "versions": {name: importlib.metadata.version(name) for name in ("treescope", "torch", "transformers")},
        "python": f"{sys.version.split()[0]} ({sys.executable})",
    }
    for variant in variants:
        device = "cpu" if variant == "cpu-names" else "meta"
        if variant == "cpu-names" and not hasattr(torch.Tensor, "names"):
            torch.Tensor.names = property(lambda self: (None,) * self.dim())  # type: ignore[attr-defined]
        with torch.device(device):
            model = BertForMaskedLM(BertConfig())
        files, seconds = [], []
        for index in range(args.count):
            start = time.perf_counter()
            markup = treescope.render_to_html(model, compressed=variant != "meta-raw")
            seconds.append(time.perf_counter() - start)
            path = args.out / f"treescope-{variant}-{index + 1}.html"
            path.write_text(markup, encoding="utf-8")
            files.append(str(path))
        result[variant] = {"files": files, "seconds": seconds}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
