"""Parallel docs builds: ``sphinx-build -j 1`` against ``-j 2``, with workers forked from the template and without.

Two generated sites, each built cold (empty figure cache, ``-E``) in every way, interleaved so a busy moment of
the machine hits every series alike:

- ``bert8``: eight pages, one small-BERT figure each (``BertForMaskedLM`` of a 4-layer config), the site the
  hardening issue measured;
- ``cpu16``: sixteen pages whose snippets each do about a second of single-threaded CPU work
  (``torch.set_num_threads(1)``, matrix products), where two processes can really work side by side.

Each site is built with ``-j 1`` and ``-j 2``, with ``modelvis_fork_workers`` on (workers forked from one
template process per build) and off (each worker a new Python process, as before the template). From the
builds' logs: how long each worker start took (the first, then the rest). Plain Python running the same
snippets one after another in one process is the reference. The figures of ``-j 1`` and ``-j 2`` are compared
byte for byte. Targets (the hardening issue): a worker start after the first under 100 ms; ``-j 2`` no slower
than ``-j 1`` on ``bert8``, and faster on ``cpu16``.
Run it with the dev environment: ``.venv/bin/python bench/parallel_build.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from machine import describe

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "parallel_build"

SNIPPETS = {
    "bert8": (
        8,
        """\
        from transformers import BertConfig, BertForMaskedLM

        config = BertConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)
        model = BertForMaskedLM(config)
        """,
    ),
    "cpu16": (
        16,
        """\
        import torch
        from torch import nn

        torch.set_num_threads(1)
        weights = torch.randn(384, 384)
        product = torch.eye(384)
        for _ in range(400):
            product = torch.tanh(product @ weights)
        model = nn.Linear(384, 384)
        """,
    ),
}
_STARTED = re.compile(
    r"modelvis: (forked|started) a worker process \(pid \d+\) in (\d+\.\d+) s"
    r"(?: \((\d+\.\d+) s of it waiting for the template to import\))?"
)
_SVG = re.compile(r'<svg xmlns="http://www.w3.org/2000/svg" class="modelvis-svg[^"]*".*?</svg>', re.DOTALL)


def write_site(name: str) -> Path:
    pages, code = SNIPPETS[name]
    code = textwrap.dedent(code)
    site = OUT / name
    site.mkdir(parents=True, exist_ok=True)
    (site / "conf.py").write_text('extensions = ["sphinx_modelvis"]\nproject = "parallel"\nhtml_theme = "alabaster"\n')
    names = [f"page{number:02d}" for number in range(pages)]
    (site / "index.rst").write_text("Pages\n=====\n\n.. toctree::\n\n" + "".join(f"   {page}\n" for page in names))
    for page in names:
        # Each page's code its own (identical code would share one cached figure).
        body = textwrap.indent(f"page = {page!r}\n{code}", "   ")
        (site / f"{page}.rst").write_text(f"{page}\n{'=' * len(page)}\n\n.. modelvis::\n   :name: {page}\n\n{body}")
    (OUT / f"{name}_plain.py").write_text((code + "\n") * pages)
    return site


def build(site: Path, *, jobs: int, fork: bool) -> tuple[float, list[tuple[float, bool]], dict[str, str]]:
    """A cold ``sphinx-build -E -j N``: wall seconds, the figures by page, and each worker start's seconds and
    whether it waited for the template to import (the first starts of a build do: its template warms up)."""
    out = OUT / "html" / f"{site.name}-j{jobs}-{'fork' if fork else 'spawn'}"
    cache = OUT / "cache"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-E", "-j", str(jobs), "-b", "html", str(site), str(out)]
    command += ["-D", f"modelvis_cache_dir={cache}", "-D", f"modelvis_fork_workers={int(fork)}"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    starts = [(float(took), bool(importing)) for _how, took, importing in _STARTED.findall(done.stdout + done.stderr)]
    figures = {path.stem: "".join(_SVG.findall(path.read_text())) for path in out.glob("page*.html")}
    return seconds, starts, figures


def plain(name: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(OUT / f"{name}_plain.py")], check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="builds of each kind; medians shown")
    args = parser.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    sites = {name: write_site(name) for name in SNIPPETS}
    kinds = [(jobs, fork) for fork in (True, False) for jobs in (1, 2)]
    times: dict[tuple[str, int, bool], list[float]] = {}
    starts: dict[tuple[str, int, bool], list[float]] = {}
    firsts: dict[tuple[str, int, bool], list[float]] = {}
    plains: dict[str, list[float]] = {name: [] for name in sites}
    identical: dict[str, bool] = {}
    for name in sites:
        plain(name)  # untimed: torch's files into the page cache
    for round_number in range(args.repeat):
        for name, site in sites.items():
            plains[name].append(plain(name))
            figures: dict[tuple[int, bool], dict[str, str]] = {}
            for jobs, fork in kinds:
                seconds, started, figures[(jobs, fork)] = build(site, jobs=jobs, fork=fork)
                key = (name, jobs, fork)
                times.setdefault(key, []).append(seconds)
                firsts.setdefault(key, []).extend(took for took, waited in started if waited)
                starts.setdefault(key, []).extend(took for took, waited in started if not waited)
                print(
                    f"round {round_number + 1} {name} -j {jobs} {'fork' if fork else 'spawn'}: {seconds:.2f} s, "
                    f"{len(started)} worker starts",
                    file=sys.stderr,
                    flush=True,
                )
            same = all(figures[kind] == figures[kinds[0]] and figures[kind] for kind in kinds)
            identical[name] = identical.get(name, True) and same

    print("\n".join(describe(("sphinx-modelvis", "sphinx", "torch", "transformers"))))
    print()
    print(
        "| site | workers | -j | build (median) | vs -j 1 | worker starts a build | starts that waited for the "
        "template's imports | other starts (median / max) | plain python |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for name in sites:
        for jobs, fork in kinds:
            key = (name, jobs, fork)
            median = statistics.median(times[key])
            one = statistics.median(times[(name, 1, fork)])
            later = starts[key]
            later_text = f"{statistics.median(later) * 1000:.0f} ms / {max(later) * 1000:.0f} ms" if later else "-"
            first_text = f"{statistics.median(firsts[key]):.2f} s" if firsts[key] else "-"
            count = (len(firsts[key]) + len(later)) / args.repeat
            print(
                f"| {name} | {'forked' if fork else 'new processes'} | {jobs} | {median:.2f} s | "
                f"{median / one:.2f}x | {count:g} | {first_text} | {later_text} | "
                f"{statistics.median(plains[name]):.2f} s |"
            )
        forked_one = statistics.median(times[(name, 1, True)])
        forked_two = statistics.median(times[(name, 2, True)])
        if name == "bert8":
            verdicts.append(
                f"bert8: -j 2 no slower than -j 1 (forked): {forked_two:.2f} s vs {forked_one:.2f} s, "
                f"{'met' if forked_two <= forked_one * 1.05 else 'MISSED'} (within 5% noise)"
            )
        else:
            verdicts.append(
                f"cpu16: -j 2 faster than -j 1 (forked): {forked_two:.2f} s vs {forked_one:.2f} s, "
                f"{'met' if forked_two < forked_one else 'MISSED'}"
            )
    later_all = [value for (name, jobs, fork), values in starts.items() if fork for value in values]
    verdicts.append(
        "a worker start once the template is warm (forked, every build): "
        f"median {statistics.median(later_all) * 1000:.0f} ms, max {max(later_all) * 1000:.0f} ms: "
        f"{'met' if max(later_all) < 0.1 else 'MISSED'} (< 100 ms)"
    )
    for name, same in identical.items():
        verdicts.append(f"{name}: figures byte-identical across -j 1 / -j 2, forked or not: {'yes' if same else 'NO'}")
    print()
    print("\n".join(f"- {verdict}" for verdict in verdicts))
    print()
    print(
        "Cold builds (`-E`, empty figure cache), wall time, medians. Worker starts from the build's log "
        "(`modelvis: forked a worker process (pid N) in S s`): the first start of a build, and under -j 2 the first of "
        "the other reading process too, wait while the template starts and imports what the snippets import; the "
        "others only fork. Without the template, one worker per reading process is started as a new Python process "
        "(fast to start, but its snippets then import torch and transformers again). plain python: the same snippets "
        "one after another in one process."
    )
    return 0 if all("MISSED" not in verdict and "NO" not in verdict for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
