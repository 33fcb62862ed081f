"""Threads under ``sphinx-build -j``: each parallel reader's worker gets its share of the cores (issue 21 §3).

Two workers of torch's default thread count on two cores oversubscribe the machine (issue 21 measured ``-j 2``
slower than ``-j 1``). Each build here is a real ``sphinx-build`` in a subprocess, as a user runs it; each
snippet checks the thread count it was given, so a wrong one fails the build (``-W``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sphinx_modelvis.execution.processes import THREAD_VARIABLES, thread_share

#: A page whose snippet fails unless torch runs on ``{threads}`` threads (checked after a tensor operation, so the
#: count is the one torch's pool really took).
PAGE = """\
Page {number}
======

.. modelvis::

   import torch
   torch.ones(64, 64) @ torch.ones(64, 64)
   assert torch.get_num_threads() == {threads}, f"torch runs {{torch.get_num_threads()}} threads"
   model = torch.nn.Linear(2, {number} + 1)
"""


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _build(tmp_path: Path, threads: int, *options: str, conf: str = "", env: dict[str, str] | None = None) -> str:
    """Build eight pages (enough for Sphinx to read them in parallel) whose snippets expect ``threads``."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text(f'extensions = ["sphinx_modelvis"]\nexclude_patterns = ["_build"]\n{conf}')
    toctree = "".join(f"   page{number}\n" for number in range(8))
    (docs / "index.rst").write_text(f"Threads\n=======\n\n.. toctree::\n\n{toctree}")
    for number in range(8):
        (docs / f"page{number}.rst").write_text(PAGE.format(number=number, threads=threads))
    base = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "--no-color",
        "-W",
        "-b",
        "html",
        *options,
        str(docs),
        str(tmp_path / "out"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**base, **(env or {})})
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    return log


def _start_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "a worker process (pid" in line]


def test_the_share_of_the_cores() -> None:
    assert thread_share(1) is None, "one job keeps torch's default"
    assert thread_share(2) == max(1, _cores() // 2)
    assert thread_share(64) == 1, "never less than one thread"


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "started"])
def test_parallel_readers_give_each_worker_its_share(tmp_path: Path, fork: bool) -> None:
    # Forked from the template, torch is already imported (set_num_threads); started as a new process, the
    # snippet imports it later (the environment variables it reads then).
    share = max(1, _cores() // 2)
    log = _build(tmp_path, share, "-j", "2", conf=f"modelvis_fork_workers = {fork}\n")
    lines = _start_lines(log)
    assert lines, log
    assert all(f"(threads: {share}, its share of the cores among 2 parallel readers)" in line for line in lines), lines


def test_a_serial_build_keeps_torch_s_default(tmp_path: Path) -> None:
    default = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
        env={name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES},
    )
    log = _build(tmp_path, int(default.stdout))
    assert _start_lines(log) and not any("threads:" in line for line in _start_lines(log)), log


def test_the_user_s_omp_num_threads_stands(tmp_path: Path) -> None:
    log = _build(tmp_path, 2, "-j", "2", env={"OMP_NUM_THREADS": "2"})
    assert _start_lines(log) and not any("threads:" in line for line in _start_lines(log)), log
