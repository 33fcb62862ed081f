"""Figure size: our SVG of BERT's tree against rich's default ``export_svg`` of the same tree, and against a PNG;
our interactive HTML figure of BERT against treescope's HTML of the same model.

Every figure of the first table is the same folded tree (``Visualization(model).structure_graph()``), 100
columns, dark theme. "rich default" prints our tree renderable to a recording rich ``Console`` and calls
``export_svg()`` with no arguments, as a user of rich would. Each SVG is checked for external requests (fonts,
images, styles fetched from elsewhere).

The second table: ``page_figure(build_tree(model), format="interactive")`` (theme ``auto``), what a page carries
per figure, and ``figure_assets()``, the stylesheet and script a page ships once, against
``treescope.render_to_html(model)`` of the same BERT, rendered in ``bench/.venv`` (treescope is no dependency of
ours) by ``treescope_html.py`` as a child process during this run.

The third: what a reader's browser receives once per page for our figures, as built: a page of an empty Sphinx
project and of an empty MkDocs site with the extension (the plugin), the stylesheets and scripts of ours it
links, each file raw and gzipped (``gzip -9``, as a web server may send it: the budget's measure).

Run it with the dev environment: ``.venv/bin/python bench/figure_size.py``.
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
from treescope_html import run_peer

OUT = Path(__file__).resolve().parent / "out" / "figure_size"
WIDTH = 100
#: The figure-size target of the benchmark issue, for the BERT figure.
TARGET_BYTES = 40_000

#: The interactive figure's budget (issue 10): the BERT figure's HTML.
TARGET_INTERACTIVE_BYTES = 25_000
#: What a page's browser receives once for the interactive figures (their stylesheet and script), gzipped, at
#: most: issue 18's budget, the same number as ``tests/test_figure_markup.py``'s. Issue 10's was 12 KB raw, met by a
#: home-made minifier; now the files are written to be read and served as rJSmin and rCSSmin minify them. The
#: table prints every file a page links; the verdict is on the figures' two (MkDocs serves the layout's rules and
#: the figures' in one stylesheet: that row is reported, its figures' part being the same files).
TARGET_ASSETS_GZIPPED = 6_000
#: Figures on the page of the "ten figures" rows (as ``page_load.py`` opens).
PAGE_FIGURES = 10

#: What makes a viewer fetch something: a CSS ``url(...)`` or ``@import``, an ``href``/``src`` not within the file.
#: (``href=`` not followed by another ``=``: a script's ``link.href===location.href`` compares, it fetches nothing.)
_EXTERNAL = re.compile(r"""(?:url\(|@import\s|(?:href|src)\s*=(?!=))\s*['"]?(?P<target>[^'")\s]+)""")


def external_requests(svg: str) -> list[str]:
    """The hosts (or paths) ``svg`` would fetch from (empty: the figure is self-contained)."""
    targets = {match["target"] for match in _EXTERNAL.finditer(svg) if not match["target"].startswith(("#", "data:"))}
    return sorted({re.sub(r"^(https?://[^/]+)/.*", r"\1", target) for target in targets})


#: What makes a script fetch something, or load a module of a framework.
_SCRIPT_REQUEST = re.compile(r"\b(?:fetch|import|importScripts|require|XMLHttpRequest|WebSocket|EventSource)\b\s*[(.]")


def script_requests(script: str) -> list[str]:
    """The calls in ``script`` that fetch or import something (empty: it stands alone)."""
    return sorted({match[0].rstrip("(. ") for match in _SCRIPT_REQUEST.finditer(script)})


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


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def interactive_table(bert: nn.Module) -> tuple[list[str], list[str], bool]:
    """The lines above the interactive table (treescope's versions), its rows, and whether a budget was missed."""
    from sphinx_modelvis.introspect import build_tree
    from sphinx_modelvis.rendering import build_figure, page_figure
    from sphinx_modelvis.rendering.interactive import figure_assets, standalone_html

    tree = build_tree(bert)
    figure = page_figure(tree, format="interactive", theme="auto", width=WIDTH, label="BERT-base")
    svg = page_figure(tree, format="svg", theme="auto", width=WIDTH, label="BERT-base")
    alone = standalone_html(build_figure(tree, theme="dark", width=WIDTH), label="BERT-base")
    css, script = figure_assets()
    (OUT / "interactive-bert.html").write_text(figure, encoding="utf-8")
    (OUT / "interactive-bert-standalone.html").write_text(alone, encoding="utf-8")
    (OUT / "modelvis-figure.css").write_text(css, encoding="utf-8")
    (OUT / "modelvis-figure.js").write_text(script, encoding="utf-8")
    (OUT / "svg-auto-bert.svg").write_text(svg, encoding="utf-8")

    peer = run_peer(OUT / "treescope", ("meta", "meta-raw", "cpu-names"))
    if "error" in peer:
        above = [f"- treescope: not measured: {peer['error']}"]
    else:
        versions = ", ".join(f"{name} {version}" for name, version in peer["versions"].items())
        above = [f"- treescope side: python {peer['python']}; {versions}; a child process of this run"]

    ours = figure.encode("utf-8")
    assets = (css + script).encode("utf-8")
    ours_external = external_requests(figure) + external_requests(css) + external_requests(script)
    ours_external += script_requests(script)
    rows: list[str] = []

    def row(side: str, data: bytes, external: str, target: str = "", against: bytes | None = None) -> None:
        """A row; ``against``: what its bytes are compared with (ours: the figure)."""
        ratio = len(data) / len(against if against is not None else ours)
        rows.append(
            f"| {side} | {kb(len(data))} ({len(data):,} B) | {kb(gz(data))} | {ratio:.1f}x | {external} | {target} |"
        )

    met_figure = len(ours) <= TARGET_INTERACTIVE_BYTES and not ours_external
    no_request = ", ".join(ours_external) or "none"
    row(
        'ours: interactive figure, `page_figure(..., format="interactive")` (per figure)',
        ours,
        no_request,
        f"<= {TARGET_INTERACTIVE_BYTES // 1000} KB, no external request: {'met' if met_figure else 'MISSED'}",
    )
    row(
        f"ours: stylesheet + script, `figure_assets()` (once per page: CSS {len(css.encode()):,} B + "
        f"JS {len(script.encode()):,} B; with the stylesheet of every figure, see the next table)",
        assets,
        no_request,
        "no external request, no framework: " + ("met" if not ours_external else "MISSED"),
    )
    row("ours: figure + stylesheet + script", ours + assets, no_request)
    row("ours: `standalone_html` (one self-contained figure, as in a notebook)", alone.encode("utf-8"), no_request)
    row(
        'ours: SVG figure, `page_figure(..., format="svg")`, for comparison',
        svg.encode("utf-8"),
        ", ".join(external_requests(svg)) or "none",
    )
    labels = {
        "meta": "treescope: `render_to_html(model)`, BERT on the meta device (self-contained)",
        "meta-raw": "treescope: the same with `compressed=False` (the markup its script inflates)",
        "cpu-names": "treescope: `render_to_html(model)`, BERT with weights on the CPU (`Tensor.names` given back)",
    }
    peer_meta, peer_external = b"", ""
    for variant, label in labels.items():
        if "error" in peer:
            rows.append(f"| {label} | not measured | | | | |")
            continue
        text = Path(peer[variant]["files"][0]).read_text(encoding="utf-8")
        data = text.encode("utf-8")
        external = external_requests(text) + script_requests(text)
        shown = ", ".join(f"`{item}`" for item in external) or "none"
        if not peer_meta:
            peer_meta, peer_external = data, shown
        row(label, data, shown)
    page = ours * PAGE_FIGURES + assets
    row(
        f"a page of {PAGE_FIGURES} BERT figures, ours: {PAGE_FIGURES} figures + stylesheet + script once",
        page,
        no_request,
        against=page,
    )
    if peer_meta:
        row(
            f"a page of {PAGE_FIGURES} BERT figures, treescope (meta): {PAGE_FIGURES} renderings",
            peer_meta * PAGE_FIGURES,
            peer_external,
            against=page,
        )
    return above, rows, not met_figure or bool(ours_external)


def built_page_assets(folder: Path) -> dict[str, dict[str, bytes]]:
    """Per host, the stylesheets and scripts of ours that a built page links, as built: ``{host: {file: bytes}}``.

    An empty project of each host, with the extension: the files are the same for every page that has figures.
    """
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from sphinx.cmd.build import build_main

    sphinx_src, sphinx_out = folder / "sphinx" / "src", folder / "sphinx" / "html"
    sphinx_src.mkdir(parents=True, exist_ok=True)
    (sphinx_src / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n', encoding="utf-8")
    (sphinx_src / "index.rst").write_text("Figures\n=======\n", encoding="utf-8")
    if build_main(
        ["-q", "-E", "-b", "html", "-d", str(folder / "sphinx" / "doctrees"), str(sphinx_src), str(sphinx_out)]
    ):
        raise RuntimeError("the Sphinx build of the empty project failed")
    site = folder / "mkdocs"
    (site / "docs").mkdir(parents=True, exist_ok=True)
    (site / "docs" / "index.md").write_text("# Figures\n", encoding="utf-8")
    (site / "mkdocs.yml").write_text("site_name: Figures\nplugins:\n  - modelvis\n", encoding="utf-8")
    mkdocs_build(load_config(str(site / "mkdocs.yml"), site_dir=str(site / "site")))
    found: dict[str, dict[str, bytes]] = {}
    for host, page in (("Sphinx", sphinx_out / "index.html"), ("MkDocs", site / "site" / "index.html")):
        text = page.read_text(encoding="utf-8")
        linked = re.findall(r'<(?:link[^>]*href|script[^>]*src)="([^"?]*modelvis[^"?]*)', text)
        found[host] = {name: (page.parent / name).read_bytes() for name in linked}
    return found


def assets_table() -> tuple[list[str], bool]:
    """The rows of the table of what a page's browser receives once, and whether the budget was missed."""
    rows: list[str] = []
    missed = False
    for host, files in built_page_assets(OUT / "pages").items():
        raw = sum(len(data) for data in files.values())
        gzipped = sum(gz(data) for data in files.values())
        parts = ", ".join(f"`{name}` {len(data):,} B ({gz(data):,} B gz)" for name, data in files.items())
        figures = [data for name, data in files.items() if "modelvis-figure." in name]
        if len(figures) == 2:
            judged = sum(gz(data) for data in figures)
            met = judged <= TARGET_ASSETS_GZIPPED
            missed = missed or not met
            verdict = f"the figures' two: {judged:,} B <= {TARGET_ASSETS_GZIPPED:,} B: {'met' if met else 'MISSED'}"
        else:
            verdict = "reported (one stylesheet: the layout's rules and the figures')"
        rows.append(f"| {host} | {parts} | {raw:,} B | {gzipped:,} B | {verdict} |")
    return rows, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    from sphinx_modelvis import Visualization

    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    missed = False
    built = models()
    above, interactive_rows, interactive_missed = interactive_table(built[0][1])
    asset_rows, assets_missed = assets_table()
    for index, (name, model, keep) in enumerate(built):
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
    print()
    print(f"Interactive HTML, BERT-base (`BertForMaskedLM(BertConfig())`), {WIDTH} columns, theme `auto`:")
    print()
    print("\n".join(above))
    print()
    print("| figure | HTML | gzip -9 | / ours | external requests | target |")
    print("|---|---:|---:|---:|---|---|")
    print("\n".join(interactive_rows))
    print()
    print(
        "/ ours: bytes over our figure's (the page rows: over our page's). Ten figures of a page share one "
        "copy of the stylesheet and the script; every treescope rendering carries its own (the ten figures "
        "here are the same figure, so the page's gzip size flatters both sides). treescope's default output "
        "is its tree zlib-compressed and base64-encoded inside a script (so gzip gains little); torch 2.13 "
        "has no `Tensor.names`, which treescope 0.1.10 reads to summarize a tensor with data, hence the shim "
        "on the CPU row (the meta rows need none)."
    )
    print()
    print(
        "What a page's browser receives once for our figures, as built (an empty Sphinx project, an empty MkDocs site):"
    )
    print()
    print("| host | files the page links (raw, gzip -9) | raw | gzipped | target |")
    print("|---|---|---:|---:|---|")
    print("\n".join(asset_rows))
    print()
    print("Each file gzipped on its own, as each is a request of its own.")
    return 1 if missed or interactive_missed or assets_missed else 0


if __name__ == "__main__":
    sys.exit(main())
