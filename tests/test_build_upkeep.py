"""What a build does around its snippets, in real Sphinx and MkDocs builds: progress while a snippet runs, the
snippet's children ended with its page, ``sys.exit`` reported as such, ill-formed cache entries rebuilt, and the
figure cache's size and pruning."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import Build, build_sphinx
from processes import eventually
from sphinx_html import figure_lines

from sphinx_modelvis.execution.processes import alive

CONF = 'extensions = ["sphinx_modelvis"]\nproject = "upkeep"\nexclude_patterns = ["_build"]\n'


def _project(tmp_path: Path, page: str, conf: str = "") -> Path:
    src = tmp_path / "src"
    src.mkdir(parents=True)
    (src / "conf.py").write_text(CONF + conf, encoding="utf-8")
    (src / "index.rst").write_text("Upkeep\n======\n\n" + page, encoding="utf-8")
    return src


def test_sys_exit_is_reported_as_the_call_at_its_line(tmp_path: Path) -> None:
    page = ".. modelvis::\n\n   import sys\n   x = 1\n   sys.exit(0)\n"
    build = build_sphinx("errors", _project(tmp_path, page))
    warnings = [line for line in build.warnings.splitlines() if "WARNING: modelvis:" in line]
    assert len(warnings) == 1, build.warnings
    assert warnings[0].endswith("index.rst:8: WARNING: modelvis: the snippet called sys.exit(0) [modelvis.snippet]")
    assert "raised" not in build.warnings


def _entries(cache: Path) -> list[Path]:
    return sorted(path for path in cache.glob("??/*.json"))


def _first_shape(entry: dict[str, object]) -> dict[str, object]:
    """The first parameter of the first tree block's nodes, in a cache entry's capture."""
    capture = json.loads(str(entry["capture"]))
    for block in capture["blocks"]:
        if block["kind"] == "tree":
            for node in block["tree"]["root"]:
                for param in node.get("params", ()):
                    return {"capture": capture, "param": param}
    raise AssertionError("no parameter in the entry")


def test_an_entry_that_parses_but_is_wrong_is_a_miss_that_is_rebuilt(tmp_path: Path) -> None:
    page = ".. modelvis:: net\n\n   from torch import nn\n   net = nn.Linear(3, 4)\n"
    src = _project(tmp_path, page, 'modelvis_cache_dir = "cache"\n')
    first = build_sphinx("errors", src)
    assert first.stats.executed == 1
    (entry_file,) = _entries(src / "cache")
    entry = json.loads(entry_file.read_text(encoding="utf-8"))
    found = _first_shape(entry)
    assert found["param"]["shape"] == [4, 3]  # type: ignore[index]
    found["param"]["shape"] = "[4, 3]"  # type: ignore[index]
    entry["capture"] = json.dumps(found["capture"])
    entry_file.write_text(json.dumps(entry), encoding="utf-8")

    again = build_sphinx("errors", src)
    assert again.warnings.strip() == "", again.warnings
    assert again.stats.executed == 1 and again.stats.cached == 0
    lines = figure_lines(again.soup("index").select_one("div.modelvis-figure"))
    assert any("[4, 3]" in line for line in lines), lines
    rewritten = json.loads(entry_file.read_text(encoding="utf-8"))
    assert _first_shape(rewritten)["param"]["shape"] == [4, 3]  # type: ignore[index]

    third = build_sphinx("errors", src)
    assert third.stats.cached == 1 and third.stats.executed == 0


def _status_lines(build: Build, text: str) -> list[str]:
    return [line for line in build.status.splitlines() if text in line]


def _gone(pid: int) -> bool:
    """Whether process ``pid`` ends (or is a zombie: exited, not yet reaped), polling."""
    return eventually(lambda: not alive(pid))


CHILD = (
    ".. modelvis::\n\n"
    "   import pathlib, subprocess\n"
    '   child = subprocess.Popen(["sleep", "60"])\n'
    '   pathlib.Path("{pid_file}").write_text(str(child.pid))\n'
    "   print('started')\n"
)
#: A later page's snippet: whether the first page's child ended with its page (polled, at most 30 s).
LATER = """\
.. modelvis::

   import os, pathlib, time
   first = int(pathlib.Path("child.pid").read_text())
   deadline = time.monotonic() + 30
   def running(pid):
       try:
           return "State:\\tZ" not in pathlib.Path(f"/proc/{pid}/status").read_text()
       except FileNotFoundError:
           return False
   while running(first) and time.monotonic() < deadline:
       time.sleep(0.05)
   print("first page's child running" if running(first) else "first page's child ended")
"""


@pytest.mark.parametrize("fork", [True, False], ids=["forked-workers", "one-worker"])
def test_a_snippet_s_child_ends_with_its_page_and_build(tmp_path: Path, fork: bool) -> None:
    conf = f"modelvis_fork_workers = {fork}\n"
    src = _project(tmp_path, CHILD.format(pid_file="child.pid") + "\n.. toctree::\n\n   second\n", conf)
    second = "Second\n======\n\n" + LATER + "\n" + CHILD.format(pid_file="second.pid")
    (src / "second.rst").write_text(second, encoding="utf-8")
    build = build_sphinx("errors", src)
    assert build.warnings.strip() == "", build.warnings
    figures = build.soup("second").select("div.modelvis-figure")
    assert figure_lines(figures[0]) == ["first page's child ended"]
    for name in ("child.pid", "second.pid"):
        pid = int((src / name).read_text())
        assert _gone(pid), f"the snippet's child {pid} outlived the build"


def test_a_snippet_s_child_ends_when_the_build_is_interrupted(tmp_path: Path) -> None:
    page = CHILD.format(pid_file="child.pid") + "   import time\n   time.sleep(120)\n"
    src = _project(tmp_path, page)
    command = [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "out")]
    build = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pid_file = src / "child.pid"
        started = eventually(lambda: build.poll() is not None or (pid_file.exists() and bool(pid_file.read_text())))
        assert started and build.poll() is None, build.communicate()
        pid = int(pid_file.read_text())
        assert alive(pid)
        build.send_signal(signal.SIGINT)  # what Ctrl-C sends to the build
        build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert _gone(pid), f"the snippet's child {pid} outlived the interrupted build"


SLOW = "import time\ntime.sleep(1.5)\nprint('slow done')\n"


def _progress(lines: list[str], location: str) -> list[str]:
    """The progress lines about ``location``, each reduced to what it says (``running``, ``still``, ``done``)."""
    said = []
    for line in lines:
        if f"modelvis: {location} running (timeout 60 s)" in line:
            said.append("running")
        elif re.search(rf"modelvis: {re.escape(location)} still running after [\d.]+ s \(timeout 60 s\)", line):
            said.append("still")
        elif re.search(rf"modelvis: {re.escape(location)} \.\.\. \d+\.\d s$", line):
            said.append("done")
    return said


def _said_while_running(said: list[str]) -> None:
    assert said[0] == "running" and said[-1] == "done" and len(said) >= 3, said
    assert set(said[1:-1]) == {"still"}, said


def test_a_slow_snippet_says_it_started_and_is_still_running_in_sphinx_s_log(tmp_path: Path) -> None:
    page = ".. modelvis::\n\n" + textwrap.indent(SLOW, "   ")
    src = _project(tmp_path, page, "modelvis_timeout = 60\nmodelvis_progress_interval = 0.3\n")
    build = build_sphinx("errors", src)
    assert build.warnings.strip() == "", build.warnings
    _said_while_running(_progress(build.status.splitlines(), "index.rst:6"))


def _mkdocs_build(project: Path) -> list[str]:
    """Build ``project/mkdocs.yml`` as ``mkdocs build`` does; what MkDocs and the plugin logged."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    records = _Records()
    mkdocs_logger = logging.getLogger("mkdocs")
    level = mkdocs_logger.level
    mkdocs_logger.addHandler(records)
    mkdocs_logger.setLevel(logging.INFO)  # as `mkdocs build` does
    try:
        build(load_config(str(project / "mkdocs.yml"), site_dir=str(project / "site")))
    finally:
        mkdocs_logger.removeHandler(records)
        mkdocs_logger.setLevel(level)
    return records.lines


def test_a_slow_snippet_says_it_started_and_is_still_running_in_mkdocs_log(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: slow\nplugins:\n  - modelvis:\n      timeout: 60\n      progress_interval: 0.3\n", encoding="utf-8"
    )
    (tmp_path / "docs" / "index.md").write_text(f"# Slow\n\n```{{modelvis}}\n{SLOW}```\n", encoding="utf-8")
    _said_while_running(_progress(_mkdocs_build(tmp_path), "index.md:4"))


def test_an_mkdocs_build_prunes_entries_unused_for_cache_max_age_and_says_the_cache_s_size(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: kept\nplugins:\n  - modelvis:\n      cache_max_age: 10\n", encoding="utf-8"
    )
    (tmp_path / "docs" / "index.md").write_text("# Kept\n\n```{modelvis}\nprint('kept')\n```\n", encoding="utf-8")
    (tmp_path / "docs" / "gone.md").write_text("# Gone\n\n```{modelvis}\nprint('gone')\n```\n", encoding="utf-8")
    cache = tmp_path / ".modelvis-cache"
    first = _mkdocs_build(tmp_path)
    entries = _entries(cache)
    assert len(entries) == 2
    (summary,) = [line for line in first if "worker start(s)" in line]
    assert summary.endswith(f"; cache: 2 entries, {_size(cache)} in {cache}"), summary
    for entry in entries:
        _age(entry, 11)
    (tmp_path / "docs" / "gone.md").unlink()
    again = _mkdocs_build(tmp_path)
    (kept,) = _entries(cache)
    assert time.time() - kept.stat().st_mtime < 86400  # its use recorded
    (summary,) = [line for line in again if "worker start(s)" in line]
    assert summary.startswith("modelvis: 0 figure(s) run, 1 from the cache, 0 failed; 0 worker start(s); cache: ")
    assert "; removed 1 entry" in summary and summary.endswith("unused for 10 days"), summary


class _Records(logging.Handler):
    """What MkDocs and its plugins log, as lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _age(path: Path, days: float) -> None:
    """Make ``path`` look last used ``days`` days ago."""
    when = time.time() - days * 86400
    os.utime(path, (when, when))


PAGES = {
    "index": "Kept\n====\n\n.. toctree::\n\n   dropped\n\n.. modelvis::\n\n   print('kept')\n",
    "dropped": "Dropped\n=======\n\n.. modelvis::\n\n   print('dropped')\n",
}


def _pages_project(tmp_path: Path, conf: str = "") -> Path:
    """A project of :data:`PAGES` whose cache is the folder ``cache`` in its source folder."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(CONF + 'modelvis_cache_dir = "cache"\n' + conf, encoding="utf-8")
    for name, text in PAGES.items():
        (src / f"{name}.rst").write_text(text, encoding="utf-8")
    return src


def test_a_build_prunes_entries_unused_for_the_max_age_and_says_the_cache_s_size(tmp_path: Path) -> None:
    src = _pages_project(tmp_path, "modelvis_cache_max_age = 10\n")
    first = build_sphinx("errors", src)
    entries = _entries(src / "cache")
    assert len(entries) == 2
    summary = [line for line in first.status.splitlines() if "figure(s) from the cache" in line]
    assert summary == [
        f"modelvis: 0 figure(s) from the cache, 2 ran, 0 failed; cache: 2 entries, "
        f"{_size(src / 'cache')} in {src / 'cache'}"
    ], first.status
    # Both entries last used 11 days ago; then the page that uses the first is the only one left.
    for entry in entries:
        _age(entry, 11)
    (src / "dropped.rst").unlink()
    (src / "index.rst").write_text(PAGES["index"].replace("   dropped\n", ""), encoding="utf-8")
    again = build_sphinx("errors", src)
    assert again.stats.cached == 1 and again.stats.executed == 0
    kept = _entries(src / "cache")
    assert len(kept) == 1 and time.time() - kept[0].stat().st_mtime < 86400  # its use recorded
    assert "; removed 1 entry" in again.status and "unused for 10 days" in again.status


def _size(folder: Path) -> str:
    from sphinx_modelvis.execution.cache import format_size

    return format_size(sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()))


def test_modelvis_cache_prune_removes_entries_older_than_max_age_and_keeps_used_ones(tmp_path: Path) -> None:
    src = _pages_project(tmp_path)
    build_sphinx("errors", src)
    old, recent = _entries(src / "cache")
    _age(old, 40)
    _age(recent, 5)
    command = [sys.executable, "-m", "sphinx_modelvis"]
    size = subprocess.run([*command, "cache", "size", str(src / "cache")], capture_output=True, text=True)
    assert size.returncode == 0 and size.stdout.startswith(f"{src / 'cache'}: 2 entries, "), size
    pruned = subprocess.run(
        [*command, "cache", "prune", "--max-age", "30", str(src / "cache")], capture_output=True, text=True
    )
    assert pruned.returncode == 0, pruned.stderr
    assert not old.exists() and recent.exists()
    assert pruned.stdout.startswith(f"{src / 'cache'}: removed 1 entry"), pruned.stdout
    assert "1 entry" in pruned.stdout.splitlines()[-1]
    # Without --max-age, the command prunes what the settings' default does (30 days): nothing left to remove.
    again = subprocess.run([*command, "cache", "prune", str(src / "cache")], capture_output=True, text=True)
    assert again.returncode == 0 and "removed 0 entries" in again.stdout and recent.exists()


def test_modelvis_cache_is_a_subcommand_and_a_snippet_still_draws(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sphinx_modelvis"]
    helped = subprocess.run([*command, "--help"], capture_output=True, text=True)
    assert "modelvis cache size|prune" in " ".join(helped.stdout.split())
    nowhere = subprocess.run([*command, "cache", "size"], capture_output=True, text=True, cwd=tmp_path)
    assert nowhere.returncode == 2 and "give the cache folder" in nowhere.stderr
    (tmp_path / ".modelvis-cache").mkdir()
    here = subprocess.run([*command, "cache", "size"], capture_output=True, text=True, cwd=tmp_path)
    assert here.returncode == 0 and here.stdout == ".modelvis-cache: 0 entries, 0 B\n", here
    bad = subprocess.run([*command, "cache", "prune", "--max-age", "-1"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "0 or more" in bad.stderr
    (tmp_path / "cache").write_text("from torch import nn\nnamed_cache = nn.Linear(2, 3)\n", encoding="utf-8")
    drawn = subprocess.run([*command, "./cache", "--format", "text"], capture_output=True, text=True, cwd=tmp_path)
    assert drawn.returncode == 0 and "weight:[3, 2]" in drawn.stdout, drawn


#: A snippet that runs until the test has seen it said "still running" in the build's output (at most 30 s).
WAITING = """\
import pathlib, time
deadline = time.monotonic() + 30
while not pathlib.Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print("went on when told" if pathlib.Path("go").exists() else "never told")
"""


def test_under_j_progress_is_written_while_the_snippets_run_naming_their_page(tmp_path: Path) -> None:
    pages = [f"page{number}" for number in range(6)]
    toctree = "\n.. toctree::\n\n" + "".join(f"   {name}\n" for name in pages)
    src = _project(tmp_path, toctree, "modelvis_timeout = 60\nmodelvis_progress_interval = 0.3\n")
    for name in pages:
        snippet = WAITING + f"print({name!r})\n"
        (src / f"{name}.rst").write_text(f"{name}\n=====\n\n.. modelvis::\n\n" + textwrap.indent(snippet, "   "))
    command = [sys.executable, "-m", "sphinx", "-j", "2", "-b", "html", str(src), str(tmp_path / "out")]
    build = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert build.stdout is not None
        for line in build.stdout:  # as the build writes it: Sphinx holds a -j reader's log back until it is done
            lines.append(line.rstrip("\n"))
            if re.search(r"modelvis: page\d\.rst:6 still running after", line):
                (src / "go").touch()
        stderr = build.stderr.read() if build.stderr is not None else ""
    finally:
        if build.poll() is None:
            build.kill()
        build.wait()
    assert build.returncode == 0 and "WARNING" not in stderr, stderr
    for name in pages:
        said = _progress(lines, f"{name}.rst:6")
        assert said[0] == "running" and said[-1] == "done", said
        page = BeautifulSoup((tmp_path / "out" / f"{name}.html").read_text(encoding="utf-8"), "html.parser")
        assert figure_lines(page.select_one("div.modelvis-figure")) == ["went on when told", name]
