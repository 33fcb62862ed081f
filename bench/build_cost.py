"""Docs build cost of the tutorial's four BERT figures, against plain Python and against static images, in one run.

(a) a first ``sphinx-build`` (empty figure cache, fresh output) against running the same snippets with ``python``;
(b) ``sphinx-build -E`` with the figure cache warm, against the same page with static SVG images instead of
directives; (c) the first build again with ``modelvis_device = "meta"``. For each build, the Sphinx process's
peak RSS and the worker's, and whether the Sphinx process imported torch (see ``sphinx_probe.py``).
Run it with the dev environment: ``.venv/bin/python bench/build_cost.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import describe

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "build_cost"

#: The tutorial's four BERT figures (docs/tutorial/visualization.md): name, caption, extra options, code.
FIGURES: list[tuple[str, str, str, str]] = [
    (
        "raw_print",
        "`print(backbone_model)`: BERT as PyTorch prints it.",
        ":collapse:\n",
        """\
        from transformers import BertConfig, BertForMaskedLM

        backbone_model = BertForMaskedLM(BertConfig())
        print(backbone_model)
        """,
    ),
    (
        "bert_vis",
        "The folded tree of BERT.",
        "",
        """\
        from sphinx_modelvis import Visualization

        model_vis = Visualization(backbone_model)
        model_vis.structure_graph()
        """,
    ),
    (
        "bertdelta_vis",
        "BERT with LoRA adapters.",
        ":collapse:\n",
        """\
        from peft import LoraConfig, get_peft_model

        delta_model = get_peft_model(backbone_model, LoraConfig(r=8, target_modules=["query", "value"]))
        for name, parameter in delta_model.named_parameters():
            if any(part in name for part in ("cls", "intermediate", "LayerNorm")):
                parameter.requires_grad = True
        Visualization(delta_model).structure_graph()
        """,
    ),
    (
        "bertdelta_noparam",
        "The same model with its parameter-free modules kept.",
        ":collapse:\n",
        """\
        Visualization(delta_model).structure_graph(keep_non_params=True)
        """,
    ),
]

CONF = """\
import sys

sys.path.insert(0, {bench!r})
project = "modelvis build-cost bench"
extensions = {extensions!r}
html_theme = "alabaster"
"""

_SVG = re.compile(r'<svg xmlns="http://www.w3.org/2000/svg" class="modelvis-svg[^"]*".*?</svg>', re.DOTALL)


def write_projects() -> None:
    """``live/``: the page with ``modelvis`` directives; ``static/``: the same page with images; ``plain.py``."""
    live, static = OUT / "live", OUT / "static"
    for folder in (live, static):
        folder.mkdir(parents=True, exist_ok=True)
    (live / "conf.py").write_text(
        CONF.format(bench=str(BENCH), extensions=["myst_parser", "sphinx_modelvis", "sphinx_probe"]), encoding="utf-8"
    )
    (static / "conf.py").write_text(
        CONF.format(bench=str(BENCH), extensions=["myst_parser", "sphinx_probe"]), encoding="utf-8"
    )
    head = "# Visualize the parameters\n\nThe tutorial's four BERT figures.\n"
    live_page, static_page, plain = [head], [head], []
    for index, (name, caption, options, code) in enumerate(FIGURES, start=1):
        code = textwrap.dedent(code)
        live_page.append(f"\n```{{modelvis}}\n:name: {name}\n:caption: {caption}\n{options}\n{code}```\n")
        static_page.append(f"\n```python\n{code}```\n\n```{{figure}} fig{index}.svg\n:name: {name}\n\n{caption}\n```\n")
        plain.append(code)
    (live / "index.md").write_text("".join(live_page), encoding="utf-8")
    (static / "index.md").write_text("".join(static_page), encoding="utf-8")
    (OUT / "plain.py").write_text("\n".join(plain), encoding="utf-8")
    # The same, ending as the worker does (os._exit: no interpreter clean-up, which takes a second with torch).
    quick_exit = "\nimport os\nimport sys\n\nsys.stdout.flush()\nsys.stderr.flush()\nos._exit(0)\n"
    (OUT / "plain_exit.py").write_text("\n".join(plain) + quick_exit, encoding="utf-8")


@dataclass
class Run:
    """One process run: wall time, the peak RSS ``wait4`` reports (the largest process of its tree), the probe."""

    seconds: float
    tree_maxrss_kib: int
    probe: dict[str, Any] = field(default_factory=dict)
    figures: int = 0


def run_process(command: list[str], *, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run ``command`` to its end; its wall time and ``ru_maxrss`` (KiB) as ``wait4`` gives them."""
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss


def plain_python(script: str = "plain.py") -> Run:
    """The four snippets in one plain ``python`` process, output to a file (not a terminal)."""
    seconds, maxrss = run_process([sys.executable, str(OUT / script)])
    return Run(seconds, maxrss)


def sphinx_build(project: str, *, cache: Path | None = None, fresh: bool, device: str | None = None) -> Run:
    """``sphinx-build -E -b html``; ``fresh``: empty output folder (and figure ``cache``, if any) first."""
    outdir = OUT / "html" / (project + ("-meta" if device else ""))
    if fresh:
        shutil.rmtree(outdir, ignore_errors=True)
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    probe = OUT / "probe.json"
    probe.unlink(missing_ok=True)
    command = [sys.executable, "-m", "sphinx", "-E", "-q", "-b", "html", str(OUT / project), str(outdir)]
    command += ["-D", f"modelvis_cache_dir={cache}"] if cache is not None else []
    command += ["-D", f"modelvis_device={device}"] if device else []
    seconds, maxrss = run_process(command, env={**os.environ, "MODELVIS_BENCH_PROBE": str(probe)})
    page = (outdir / "index.html").read_text(encoding="utf-8")
    figures = len(_SVG.findall(page)) if project == "live" else page.count('src="_images/fig')
    return Run(seconds, maxrss, json.loads(probe.read_text(encoding="utf-8")), figures)


def extract_images() -> list[int]:
    """Take the live build's four inline SVGs as the static page's images; their sizes in bytes."""
    page = (OUT / "html" / "live" / "index.html").read_text(encoding="utf-8")
    svgs = _SVG.findall(page)
    if len(svgs) != len(FIGURES):
        raise RuntimeError(f"expected {len(FIGURES)} figures in the live build, found {len(svgs)}")
    sizes = []
    for index, svg in enumerate(svgs, start=1):
        data = svg.encode("utf-8")
        (OUT / "static" / f"fig{index}.svg").write_bytes(data)
        sizes.append(len(data))
    return sizes


def median(runs: list[Run]) -> float:
    return statistics.median(run.seconds for run in runs)


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def check(runs: list[Run], *, figures: int, worker: bool) -> list[str]:
    """What is wrong with a series of builds: missing figures, failures, torch in Sphinx, a worker (or none)."""
    problems = []
    for run in runs:
        if run.figures != figures:
            problems.append(f"{run.figures} figures instead of {figures}")
        if run.probe.get("failed"):
            problems.append(f"{run.probe['failed']} failed figures")
        if run.probe.get("torch_imported"):
            problems.append("torch imported in the Sphinx process")
        if "worker_starts" in run.probe and bool(run.probe["worker_starts"]) != worker:
            problems.append(f"{run.probe['worker_starts']} worker starts")
    return sorted(set(problems))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="first builds (and plain runs) per kind; median shown")
    parser.add_argument("--repeat-warm", type=int, default=5, help="warm -E builds (live and static); median shown")
    args = parser.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    write_projects()
    cache, meta_cache = OUT / "cache", OUT / "cache-meta"
    log("warming up (one untimed plain run, so every series starts with torch's files in the page cache)")
    plain_python()
    plain: list[Run] = []
    plain_exit: list[Run] = []
    first: list[Run] = []
    meta: list[Run] = []
    for index in range(args.repeat):  # interleaved, so a slow moment of the machine hits every series alike
        plain.append(plain_python())
        plain_exit.append(plain_python("plain_exit.py"))
        first.append(sphinx_build("live", cache=cache, fresh=True))
        meta.append(sphinx_build("live", cache=meta_cache, fresh=True, device="meta"))
        log(
            f"run {index + 1}: plain {plain[-1].seconds:.2f} s, plain with os._exit {plain_exit[-1].seconds:.2f} s, "
            f"first build {first[-1].seconds:.2f} s, "
            f"meta first build {meta[-1].seconds:.2f} s"
        )
    sizes = extract_images()
    warm: list[Run] = []
    static: list[Run] = []
    sphinx_build("static", fresh=True)  # untimed: the first static build writes its output folder
    for index in range(args.repeat_warm):
        warm.append(sphinx_build("live", cache=cache, fresh=False))
        static.append(sphinx_build("static", fresh=False))
        log(f"warm run {index + 1}: live -E {warm[-1].seconds:.2f} s, static -E {static[-1].seconds:.2f} s")

    problems = {
        "first": check(first, figures=len(FIGURES), worker=True),
        "meta": check(meta, figures=len(FIGURES), worker=True),
        "warm": check(warm, figures=len(FIGURES), worker=False),
        "static": check(static, figures=len(FIGURES), worker=False),
    }
    ratio_a = median(first) / median(plain)
    ratio_a_exit = median(first) / median(plain_exit)
    ratio_b = median(warm) / median(static)
    saved = median(first) - median(meta)

    def peak(runs: list[Run], key: str) -> str:
        return mib(max(run.probe.get(key, 0) for run in runs))

    def torch_in_sphinx(runs: list[Run]) -> str:
        return "yes" if any(run.probe.get("torch_imported") for run in runs) else "no"

    def starts(runs: list[Run]) -> str:
        return "/".join(str(run.probe.get("worker_starts", "-")) for run in runs)

    print("\n".join(describe(("sphinx-modelvis", "sphinx", "myst-parser", "torch", "transformers", "peft", "rich"))))
    print(f"- page: {len(FIGURES)} BERT figures, MyST, alabaster theme; static images: {sizes} bytes")
    print()
    print("| build | median | runs | ratio | target | Sphinx peak RSS | worker peak RSS | torch in Sphinx | workers |")
    print("|---|---:|---:|---:|---|---:|---:|---|---|")
    print(
        f"| plain `python plain.py` | {median(plain):.2f} s | {len(plain)} | | | "
        f"{mib(max(run.tree_maxrss_kib for run in plain))} (python) | | | |"
    )
    print(
        f"| plain, ending with `os._exit(0)` | {median(plain_exit):.2f} s | {len(plain_exit)} | | | "
        f"{mib(max(run.tree_maxrss_kib for run in plain_exit))} (python) | | | |"
    )
    verdict_a = "met" if ratio_a <= 1.2 else "MISSED"
    print(
        f"| (a) first build, empty cache | {median(first):.2f} s | {len(first)} | {ratio_a:.2f} (vs plain); "
        f"{ratio_a_exit:.2f} (vs plain with `os._exit`) | "
        f"<= 1.2: {verdict_a} | {peak(first, 'sphinx_maxrss_kib')} | {peak(first, 'children_maxrss_kib')} | "
        f"{torch_in_sphinx(first)} | {starts(first)} |"
    )
    print(
        f"| (c) first build, device meta | {median(meta):.2f} s | {len(meta)} | {median(meta) / median(plain):.2f} "
        f"(vs plain) | saves {saved:.2f} s ({saved / median(first) * 100:.0f}%) | "
        f"{peak(meta, 'sphinx_maxrss_kib')} | {peak(meta, 'children_maxrss_kib')} | {torch_in_sphinx(meta)} | "
        f"{starts(meta)} |"
    )
    print(
        f"| static images, `-E` | {median(static):.2f} s | {len(static)} | | | {peak(static, 'sphinx_maxrss_kib')} "
        f"| | {torch_in_sphinx(static)} | |"
    )
    verdict_b = "met" if ratio_b <= 1.3 and not problems["warm"] else "MISSED"
    print(
        f"| (b) `-E`, warm cache | {median(warm):.2f} s | {len(warm)} | {ratio_b:.2f} (vs static) | "
        f"<= 1.3, no torch, no worker: {verdict_b} | {peak(warm, 'sphinx_maxrss_kib')} | | "
        f"{torch_in_sphinx(warm)} | {starts(warm)} |"
    )
    print()
    print(
        "Medians of wall time. Peak RSS: the largest of the runs; Sphinx = the sphinx-build process itself "
        "(getrusage SELF at build-finished), worker = its reaped child (getrusage CHILDREN after the worker exited). "
        "The worker ends with os._exit (no interpreter clean-up); a plain python run pays that clean-up, so it is "
        "also timed ending with os._exit. The target of (a) is judged against plain python as run by a user."
    )
    for name, found in problems.items():
        if found:
            print(f"- problems in {name} builds: {'; '.join(found)}")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
