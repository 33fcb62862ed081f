"""Figure size: our SVG of BERT's tree against rich's default ``export_svg`` of the same tree, and against a PNG.

Every figure is the same folded tree (``Visualization(model).structure_graph()``), 100 columns, dark theme.
"rich default" prints our tree renderable to a recording rich ``Console`` and calls ``export_svg()`` with no
arguments, as a user of rich would. Each SVG is checked for external requests (fonts, images, styles fetched
from elsewhere). Run it with the dev environment: ``.venv/bin/python bench/figure_size.py``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import sys
from pathlib import Path

from machine import describe
from rich.console import Console
from torch import nn

OUT = Path(__file__).resolve().parent / "out" / "figure_size"
WIDTH = 100
#: The figure-size target of the benchmark issue, for the BERT figure.
TARGET_BYTES = 40_000

#: What makes a viewer fetch something: a CSS ``url(...)`` or ``@import``, an ``href``/``src`` not within the file.
_EXTERNAL = re.compile(r"""(?:url\(|@import\s|(?:href|src)\s*=)\s*['"]?(?P<target>[^'")\s]+)""")


def external_requests(svg: str) -> list[str]:
    """The hosts (or paths) ``svg`` would fetch from (empty: the figure is self-contained)."""
    targets = {match["target"] for match in _EXTERNAL.finditer(svg) if not match["target"].startswith(("#", "data:"))}
    return sorted({re.sub(r"^(https?://[^/]+)/.*", r"\1", target) for target in targets})


def models() -> list[tuple[str, nn.Module, bool]]:
    """BERT-base, and the tutorial's BERT with LoRA adapters (``keep_non_params`` off, then on)."""
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertForMaskedLM

    bert = BertForMaskedLM(BertConfig())
    lora = BertForMaskedLM(BertConfig())
    delta = get_peft_model(lora, LoraConfig(r=8, target_modules=["query", "value"]))
    for name, parameter in delta.named_parameters():
        if any(part in name for part in ("cls", "intermediate", "LayerNorm")):
            parameter.requires_grad = True
    return [("BERT", bert, False), ("BERT + LoRA", delta, False), ("BERT + LoRA, keep_non_params", delta, True)]


def rich_default_svg(figure: object) -> str:
    """rich's own ``export_svg()``, defaults and all, of a renderable printed at ``WIDTH`` columns."""
    console = Console(
        record=True,
        file=io.StringIO(),
        width=WIDTH,
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
        _environ={},
    )
    console.print(figure)
    return console.export_svg()


def kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    from sphinx_modelvis import Visualization

    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    missed = False
    for index, (name, model, keep) in enumerate(models()):
        figure = Visualization(model).structure_graph(keep_non_params=keep, printTree=False)
        ours = figure.render("svg", width=WIDTH)
        png = figure.render("png", width=WIDTH)
        theirs = rich_default_svg(figure)
        assert isinstance(ours, str) and isinstance(png, bytes)
        stem = f"{index + 1}-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        (OUT / f"{stem}-ours.svg").write_text(ours, encoding="utf-8")
        (OUT / f"{stem}-rich-default.svg").write_text(theirs, encoding="utf-8")
        (OUT / f"{stem}.png").write_bytes(png)
        ours_bytes, theirs_bytes = ours.encode("utf-8"), theirs.encode("utf-8")
        ours_external, theirs_external = external_requests(ours), external_requests(theirs)
        verdict = ""
        if index == 0:
            met = len(ours_bytes) <= TARGET_BYTES and not ours_external
            missed = not met
            verdict = f"<= {TARGET_BYTES // 1000} KB, no external request: {'met' if met else 'MISSED'}"
        rows.append(
            f"| {name} | {len(str(figure).splitlines())} lines | {kb(len(ours_bytes))} "
            f"({kb(len(gzip.compress(ours_bytes, 9)))} gz) | {kb(len(theirs_bytes))} "
            f"({kb(len(gzip.compress(theirs_bytes, 9)))} gz) | {len(theirs_bytes) / len(ours_bytes):.1f}x | "
            f"{kb(len(png))} | {len(png) / len(ours_bytes):.1f}x | {', '.join(ours_external) or 'none'} | "
            f"{', '.join(f'`{item}`' for item in theirs_external) or 'none'} | {verdict} |"
        )
    print("\n".join(describe(("sphinx-modelvis", "rich", "pillow", "torch", "transformers", "peft"))))
    print(f"- figures written to {OUT.relative_to(OUT.parents[2])}/")
    print()
    print(
        "| figure | tree | ours (SVG) | rich default `export_svg` | rich / ours | PNG (ours) | PNG / ours "
        "| ours: external requests | rich default: external requests | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    print("\n".join(rows))
    print()
    print("KB = 1,000 bytes; gz = gzip -9, as a web server may send it. PNG: 28 px DejaVu Sans Mono, Pillow.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
