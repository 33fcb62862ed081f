"""Page workers forked from a build's template process: shared by every process of a build, warm, replaceable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import build_sphinx
from sphinx_html import figure_by_name, figure_lines

from sphinx_modelvis.capture import TextBlock
from sphinx_modelvis.config import FigureOptions, ModelvisConfig
from sphinx_modelvis.execution.preload import preload_statements
from sphinx_modelvis.execution.session import FigureRunner, Snippet

FAST = FigureOptions(timeout=60.0)
REPORT = "import os, sys\nprint(os.getpid(), os.getppid(), 'torch' in sys.modules)\n"


def report(runner: FigureRunner, page: str, code: str = REPORT) -> tuple[int, int, bool]:
    """Run ``code`` (which prints pid, parent pid and whether torch is imported) as a page of its own."""
    result = runner.page(page).run(Snippet(code, page, 1), FAST)
    assert result.capture is not None, result.failure
    (block,) = result.capture.blocks
    assert isinstance(block, TextBlock)
    pid, parent, torch = block.ansi.split()
    return int(pid), int(parent), torch == "True"


def gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_pages_are_forked_from_one_template_that_imported_what_snippets_import() -> None:
    runner = FigureRunner(ModelvisConfig(), cache_dir=None)
    try:
        first = report(runner, "a.md", "from torch import nn\n" + REPORT)
        second = report(runner, "b.md")  # imports nothing itself
        template = runner.template
        assert template is not None
        assert first[1] == second[1] == template.pid() != os.getpid(), "both forked by the template"
        assert first[0] != second[0], "each page has a worker of its own"
        assert second[2], "torch is imported before the page's own code runs: the template imported it"
        assert gone(first[0]), "the worker of a finished page goes away"
        # The second start was a fork of a warm template: torch is loaded in the template itself (imported for the
        # first page), so the second worker has it without importing it. (bench/parallel_build.py times the starts.)
        assert "/libtorch" in Path(f"/proc/{template.pid()}/maps").read_text()
    finally:
        runner.close()
    assert template.pid() is None and not template.folder.exists(), "closing the runner ends the template"
    assert gone(first[1])


def test_without_fork_workers_each_worker_is_a_new_process() -> None:
    runner = FigureRunner(ModelvisConfig(fork_workers=False), cache_dir=None)
    try:
        first, _, _ = report(runner, "a.md")
        pid, parent, torch = report(runner, "b.md")
        assert parent == os.getpid() and not torch, "started by this process: nothing imported ahead"
        assert pid == first and runner.stats.worker_starts == 1, "one worker, its namespace reset between pages"
    finally:
        runner.close()


def test_a_template_that_cannot_start_leaves_workers_started_as_new_processes(tmp_path: Path) -> None:
    messages: list[str] = []
    runner = FigureRunner(ModelvisConfig(), cache_dir=None, progress=messages.append)
    try:
        template = runner.template
        assert template is not None
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("in the way")
        template.folder = blocker / "template"
        _, parent, _ = report(runner, "a.md")
        assert parent == os.getpid()
        assert any(message.startswith("modelvis: no template process to fork workers from") for message in messages)
    finally:
        runner.close()


def test_a_template_that_died_is_started_again() -> None:
    runner = FigureRunner(ModelvisConfig(), cache_dir=None)
    try:
        _, first_template, _ = report(runner, "a.md")
        os.kill(first_template, 9)
        assert gone(first_template)
        _, second_template, _ = report(runner, "b.md")
        template = runner.template
        assert template is not None
        assert second_template == template.pid() != first_template, "forked by a new template"
    finally:
        runner.close()


def test_the_template_ends_with_the_build_that_started_it(tmp_path: Path) -> None:
    # A build killed, or a host ending with os._exit: no close(), no clean-up. The template notices.
    code = (
        "import os\n"
        "from sphinx_modelvis.config import ModelvisConfig, FigureOptions\n"
        "from sphinx_modelvis.execution.session import FigureRunner, Snippet\n"
        "runner = FigureRunner(ModelvisConfig(), cache_dir=None)\n"
        "runner.page('p').run(Snippet('print(1)\\n', 'p', 1), FigureOptions())\n"
        "print(runner.template.pid(), runner.template.folder, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    pid, folder = done.stdout.split()
    assert gone(int(pid))
    assert not Path(folder).exists()


def test_a_parallel_sphinx_build_forks_every_page_from_one_template(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["sphinx_modelvis"]\nexclude_patterns = ["_build"]\n')
    pages = [f"page{number}" for number in range(6)]
    (src / "index.rst").write_text("Pages\n=====\n\n.. toctree::\n\n" + "".join(f"   {page}\n" for page in pages))
    for page in pages:
        (src / f"{page}.rst").write_text(
            f"{page}\n{'=' * len(page)}\n\n.. modelvis::\n   :name: {page}\n\n"
            "   import os\n   from torch import nn\n   print(os.getppid())\n"
        )
    build = build_sphinx("unused", src, "html", parallel=2)
    assert build.warnings == ""
    parents = {figure_lines(figure_by_name(build.soup(page), page))[0] for page in pages}
    assert len(parents) == 1, "one template forked every page's worker, whichever process read the page"
    assert int(parents.pop()) != os.getpid()


def test_only_installed_packages_are_imported_ahead() -> None:
    code = (
        "import json, os.path\n"
        "from torch import nn\n"
        "import nearby_module_of_the_page\n"
        "from . import sibling\n"
        "import torch, nearby_module_of_the_page\n"
        "x = 1\n"
        "if x:\n"
        "    import csv\n"
    )
    assert preload_statements(code) == ["import json, os.path", "from torch import nn"]
    assert preload_statements("def broken(:\n") == []
