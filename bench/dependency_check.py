"""What checking figures' dependency manifests costs a build in which nothing changed, in one run.

A site of 10 pages with 5 figures each (50 figures); every snippet imports ``mylib``, a package next to the pages of
20 modules (so each figure's manifest holds 21 local files, and torch's version). Measured: ``sphinx-build -E``
with the figure cache warm against the same pages with static SVG images instead of directives (as
``build_cost.py``'s row (b)); the same after every module was touched (new mtimes, same contents: a fresh CI
checkout, where each file is read and digested once); and, in this process, the time to check one figure's
manifest (stat of 21 files, the distributions' versions), cold (a new checker per figure) and as a build does it
(one checker: what one figure learnt serves the next). Run it with the dev environment:
``.venv/bin/python bench/dependency_check.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from build_cost import Run, check, median, run_process
from machine import describe

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "dependency_check"
PAGES, FIGURES_PER_PAGE, MODULES = 10, 5, 20
FIGURES = PAGES * FIGURES_PER_PAGE

CONF = """\
import sys

sys.path.insert(0, {bench!r})
project = "modelvis dependency-check bench"
extensions = {extensions!r}
html_theme = "alabaster"
modelvis_format = "svg"
"""
_SVG = re.compile(r'<svg xmlns="http://www.w3.org/2000/svg" class="modelvis-svg[^"]*".*?</svg>', re.DOTALL)


def write_projects() -> None:
    """``live/``: pages of ``modelvis`` directives importing ``mylib``; ``static/``: the same pages with images."""
    live, static = OUT / "live", OUT / "static"
    for folder, extensions in ((live, ["sphinx_modelvis", "sphinx_probe"]), (static, ["sphinx_probe"])):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "conf.py").write_text(CONF.format(bench=str(BENCH), extensions=extensions), encoding="utf-8")
        toctree = "".join(f"   page{page}\n" for page in range(PAGES))
        (folder / "index.rst").write_text(f"Site\n====\n\n.. toctree::\n\n{toctree}", encoding="utf-8")
    package = live / "mylib"
    package.mkdir(exist_ok=True)
    names = [f"m{index:02d}" for index in range(MODULES)]
    for index, name in enumerate(names):
        (package / f"{name}.py").write_text(f'"""Module {index}."""\n\nWIDTH = {index + 2}\n', encoding="utf-8")
    (package / "__init__.py").write_text(f"from . import {', '.join(names)}\n", encoding="utf-8")
    for page in range(PAGES):
        live_page = [f"Page {page}\n=======\n"]
        static_page = [f"Page {page}\n=======\n"]
        for figure in range(FIGURES_PER_PAGE):
            layer = f"layer_{page}_{figure} = nn.Linear(mylib.m{figure:02d}.WIDTH, {page + 2})"
            code = f"import mylib\nfrom torch import nn\n\n{layer}\n"
            indented = "".join(f"   {line}\n" if line else "\n" for line in code.splitlines())
            live_page.append(f"\n.. modelvis::\n\n{indented}")
            static_page.append(f"\n.. code-block:: python\n\n{indented}\n.. image:: fig{page}_{figure}.svg\n")
        (live / f"page{page}.rst").write_text("".join(live_page), encoding="utf-8")
        (static / f"page{page}.rst").write_text("".join(static_page), encoding="utf-8")


def build_environment(probe: Path, *, bytecode: bool) -> dict[str, str]:
    """The builds' environment; ``bytecode``: every module compiled once and its bytecode kept (under ``OUT``).

    An installed sphinx-modelvis runs from bytecode (pip compiles a wheel's modules as it installs them), and so
    does Sphinx from site-packages. A checkout on ``PYTHONPATH`` under ``PYTHONDONTWRITEBYTECODE=1`` (as on the
    machine of the records) compiles the extension's modules from source in every build: 50-100 ms that only
    the figures' side pays.
    """
    env = {**os.environ, "MODELVIS_BENCH_PROBE": str(probe)}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")  # both sides alike: Sphinx's modules too
    return env


def sphinx_build(project: str, *, fresh: bool = False, bytecode: bool = True) -> Run:
    """``sphinx-build -E -q -b html``; ``fresh``: empty output folder (and, for ``live``, figure cache) first."""
    outdir = OUT / "html" / project
    if fresh:
        shutil.rmtree(outdir, ignore_errors=True)
        shutil.rmtree(OUT / project / "_build", ignore_errors=True)
    probe = OUT / "probe.json"
    probe.unlink(missing_ok=True)
    command = [sys.executable, "-m", "sphinx", "-E", "-q", "-b", "html", str(OUT / project), str(outdir)]
    seconds, maxrss = run_process(command, env=build_environment(probe, bytecode=bytecode))
    figures = 0
    for page in range(PAGES):
        html = (outdir / f"page{page}.html").read_text(encoding="utf-8")
        figures += len(_SVG.findall(html)) if project == "live" else html.count('src="_images/fig')
    return Run(seconds, maxrss, json.loads(probe.read_text(encoding="utf-8")), figures)


def extract_images() -> None:
    """Take the live build's inline SVGs as the static pages' images."""
    for page in range(PAGES):
        html = (OUT / "html" / "live" / f"page{page}.html").read_text(encoding="utf-8")
        svgs = _SVG.findall(html)
        if len(svgs) != FIGURES_PER_PAGE:
            raise RuntimeError(f"expected {FIGURES_PER_PAGE} figures on page {page}, found {len(svgs)}")
        for figure, svg in enumerate(svgs):
            (OUT / "static" / f"fig{page}_{figure}.svg").write_text(svg, encoding="utf-8")


def manifest_check_seconds(rounds: int) -> tuple[float, float, int]:
    """Seconds to check one figure's manifest: with a new checker each time, and with one checker for all 50
    (as a build does); and how many local files a manifest holds."""
    from sphinx_modelvis.execution.cache import FigureCache
    from sphinx_modelvis.execution.manifest import DependencyChecker

    cache = FigureCache(OUT / "live" / "_build" / ".modelvis-cache")
    manifests = [cache.entry(path.stem).depends for path in cache.directory.glob("*/*.json")]  # type: ignore[union-attr]
    if len(manifests) != FIGURES:
        raise RuntimeError(f"expected {FIGURES} cache entries, found {len(manifests)}")
    cold, shared = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for manifest in manifests:
            assert DependencyChecker(OUT / "live").changed(manifest) == (None, False)
        cold.append((time.perf_counter() - started) / FIGURES)
        started = time.perf_counter()
        checker = DependencyChecker(OUT / "live")
        for manifest in manifests:
            assert checker.changed(manifest) == (None, False)
        shared.append((time.perf_counter() - started) / FIGURES)
    return statistics.median(cold), statistics.median(shared), len(manifests[0]["files"])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="warm -E builds of each side; median shown")
    parser.add_argument(
        "--no-bytecode",
        dest="bytecode",
        action="store_false",
        help="run the builds with the environment as it is (PYTHONDONTWRITEBYTECODE kept): the extension's modules "
        "compiled from source in each build when it runs from a checkout",
    )
    args = parser.parse_args(argv)
    bytecode = args.bytecode
    shutil.rmtree(OUT, ignore_errors=True)
    write_projects()
    # The figures run without the bytecode folder: the workers would record its .pyc files as files the snippets
    # read (48 in a manifest instead of 21), which is not this bench's site.
    first = sphinx_build("live", fresh=True, bytecode=False)
    log(f"first live build (runs the {FIGURES} figures): {first.seconds:.2f} s")
    extract_images()
    sphinx_build("static", fresh=True, bytecode=bytecode)  # untimed: writes the static output folder (and bytecode)
    sphinx_build("live", bytecode=bytecode)  # untimed: the extension's bytecode written
    warm: list[Run] = []
    static: list[Run] = []
    for index in range(args.repeat):
        warm.append(sphinx_build("live", bytecode=bytecode))
        static.append(sphinx_build("static", bytecode=bytecode))
        log(f"round {index + 1}: live -E {warm[-1].seconds:.2f} s, static -E {static[-1].seconds:.2f} s")
    touched: list[Run] = []
    for _ in range(args.repeat):
        for module in (OUT / "live" / "mylib").glob("*.py"):
            module.touch()  # new mtimes, same contents: each file is digested once, the entries rewritten
        touched.append(sphinx_build("live", bytecode=bytecode))
    cold, shared, files = manifest_check_seconds(rounds=20)
    problems = {
        "warm": check(warm, figures=FIGURES, worker=False),
        "static": check(static, figures=FIGURES, worker=False),
        "touched": check(touched, figures=FIGURES, worker=False),
    }
    ratio = median(warm) / median(static)
    print("\n".join(describe(("sphinx-modelvis", "sphinx", "torch"))))
    print(
        f"- site: {PAGES} pages x {FIGURES_PER_PAGE} figures, each importing `mylib` ({MODULES} modules and its "
        f"`__init__`): {files} local files per manifest, plus torch's version"
    )
    print()
    print("| build | median | runs | ratio | torch in Sphinx | workers | problems |")
    print("|---|---|---|---|---|---|---|")
    for name, runs, ratio_text in (
        ("static images, `-E`", static, ""),
        ("figures, `-E`, warm cache, nothing changed", warm, f"{ratio:.2f} (vs static)"),
        ("figures, `-E`, every module touched (same contents)", touched, f"{median(touched) / median(static):.2f}"),
    ):
        torch_seen = "yes" if any(run.probe.get("torch_imported") for run in runs) else "no"
        starts = "/".join(str(run.probe.get("worker_starts", "-")) for run in runs)
        key = {"static images, `-E`": "static"}.get(name, "warm" if "nothing" in name else "touched")
        print(
            f"| {name} | {median(runs):.2f} s | {len(runs)} | {ratio_text} | {torch_seen} | {starts} | "
            f"{'; '.join(problems[key]) or 'none'} |"
        )
    print()
    print(
        f"Checking one figure's manifest ({files} files stat'ed, 1+ distribution versions): "
        f"{cold * 1e6:.0f} us with a new checker, {shared * 1e6:.0f} us per figure with the build's one checker "
        f"(median of 20 rounds over the {FIGURES} entries)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
