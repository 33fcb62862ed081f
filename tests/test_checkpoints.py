"""Checkpoints (issue 21 §1): while the template is kept warm, an edited figure resumes from the paused copy of its
page's worker after the snippet before it, instead of replaying the page.

Each test keeps the template of its site warm (``keep_warm``, as an author's ``sphinx-autobuild`` or ``mkdocs serve``
does) across builds made with the session API in this process, as a host makes them; the log lines say what
resumed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import eventually

from sphinx_modelvis.capture import TextBlock
from sphinx_modelvis.config import FigureOptions, ModelvisConfig
from sphinx_modelvis.errors import ConfigError
from sphinx_modelvis.execution.checkpoints import CHECKPOINTS
from sphinx_modelvis.execution.processes import alive
from sphinx_modelvis.execution.session import FigureResult, FigureRunner, Snippet
from sphinx_modelvis.execution.template import TemplateLink
from sphinx_modelvis.option_text import memory_size

#: The snippet timeout: a resumed worker that hangs (GNU OpenMP after a fork) fails its figure, not the suite.
OPTIONS = FigureOptions(timeout=60.0)
#: Seconds the template of a test's site is kept warm (it is ended at the end of the test).
KEEP = 600.0


class Build:
    """One build of one page (``p.md``, snippets 10 lines apart), with the kept template: its figures and log."""

    def __init__(self, keep_warm: float, cache: Path, codes: list[str], config: ModelvisConfig) -> None:
        self.log: list[str] = []
        site = cache.parent
        runner = FigureRunner(
            config, cache_dir=cache, keep_warm=keep_warm, progress=self.log.append, explain=self.log.append, root=site
        )
        try:
            page = runner.page("p.md", cwd=str(site))
            self.results: list[FigureResult] = [
                page.run(Snippet(code, "p.md", 1 + 10 * number), OPTIONS) for number, code in enumerate(codes)
            ]
            runner.end_page("p.md")
        finally:
            runner.close()
        self.stats = runner.stats

    def text(self, figure: int) -> str:
        result = self.results[figure]
        assert result.capture is not None, result.failure
        return "".join(block.ansi for block in result.capture.blocks if isinstance(block, TextBlock))

    def lines(self, text: str) -> list[str]:
        """The log's lines that say ``text``, from ``modelvis: `` on."""
        return [line[line.index("modelvis: ") + 10 :] for line in self.log if text in line]


@pytest.fixture
def link(tmp_path: Path) -> Iterator[TemplateLink]:
    """The link to the kept template of the test's site (its cache folder ``tmp_path / "cache"``)."""
    link = TemplateLink(keep_warm=KEEP, cache_dir=tmp_path / "cache")
    yield link
    pids = checkpoint_pids(link)
    link.end()
    assert all(eventually(lambda pid=pid: not alive(pid)) for pid in pids), "ending the template ends them"


def checkpoint_pids(link: TemplateLink) -> list[int]:
    folder = link.folder / CHECKPOINTS
    return [int(path.read_text()) for path in folder.glob("*.pid")] if folder.is_dir() else []


def checkpoint_places(link: TemplateLink) -> dict[str, int]:
    """The pid of each checkpoint, by the place of the snippet it is after (from the host's records)."""
    records = {path.with_suffix(".pid"): json.loads(path.read_text()) for path in link.folder.glob("*/*.json")}
    return {record["place"]: int(pid.read_text()) for pid, record in records.items() if pid.exists()}


def builder(link: TemplateLink, tmp_path: Path, **settings: object) -> Callable[[list[str]], Build]:
    config = ModelvisConfig(**settings)  # type: ignore[arg-type]
    return lambda codes: Build(link.keep_warm, tmp_path / "cache", codes, config)


#: Six snippets; each appends its number to ``seen`` (so a replay would show twice); the last prints it.
SIX = [f"seen = []\nseen.append({number})\n" if number == 1 else f"seen.append({number})\n" for number in range(1, 6)]
SIX = [code + "print(seen)\n" for code in SIX] + ["import os\nprint(seen, os.getppid())\n"]


def test_an_edited_last_figure_resumes_from_the_checkpoint_after_the_snippet_before_it(
    link: TemplateLink, tmp_path: Path
) -> None:
    build = builder(link, tmp_path)
    first = build(SIX)
    assert first.lines("resumed") == []
    # Each is taken once the worker has replied: the last may still be forking when the build is done.
    assert eventually(lambda: len(checkpoint_pids(link)) == 6), "one checkpoint after each snippet"
    edited = [*SIX[:5], SIX[5].replace("print(seen,", "print('edited', seen,")]
    second = build(edited)
    seen, parent = second.text(5).rsplit(" ", 1)
    assert seen == "edited [1, 2, 3, 4, 5]", "the namespace after the fifth snippet, each snippet run once"
    assert second.lines(": ran: ") == ["p.md:51: ran: code changed"]
    start, figure = second.lines("resumed")
    assert start.startswith("resumed a worker process (pid ")
    assert start.endswith(" s (resumed from the checkpoint after p.md:41)"), "no torch: its threads are left alone"
    assert figure.startswith("p.md:51 ... ")
    assert figure.endswith(" s (resumed from the checkpoint after p.md:41; 5 snippet(s) not replayed)")
    assert second.stats.replayed == 0 and second.stats.executed == 1
    assert int(parent) in checkpoint_pids(link), "the edited figure's worker was forked by a checkpoint"


def test_an_edit_earlier_in_the_page_resumes_before_it_and_runs_what_follows_it_anew(
    link: TemplateLink, tmp_path: Path
) -> None:
    build = builder(link, tmp_path)
    build(SIX)
    edited = [*SIX[:2], SIX[2].replace("seen.append(3)", "seen.append(30)"), *SIX[3:]]
    second = build(edited)
    assert [second.text(number) for number in range(2, 5)] == ["[1, 2, 30]\n", "[1, 2, 30, 4]\n", "[1, 2, 30, 4, 5]\n"]
    assert second.text(5).startswith("[1, 2, 30, 4, 5] "), "not the old checkpoints after snippets 3, 4 and 5"
    resumed = second.lines("not replayed")
    assert len(resumed) == 1 and resumed[0].startswith("p.md:21 ... ")
    assert resumed[0].endswith("(resumed from the checkpoint after p.md:11; 2 snippet(s) not replayed)")
    assert second.stats.replayed == 0 and second.stats.executed == 4
    third = build([*edited[:5], edited[5].replace("print(seen,", "print('edited', seen,")])
    assert third.text(5).startswith("edited [1, 2, 30, 4, 5] "), "resumed from a checkpoint of the edited page"
    assert third.lines("not replayed")[0].endswith(
        "(resumed from the checkpoint after p.md:41; 5 snippet(s) not replayed)"
    )


MODULE = 'LAYERS = ["first_layer"]\n'
PAGE = [
    "import mylib\nprint(mylib.LAYERS)\n",
    "layers = list(mylib.LAYERS)\nprint(len(layers))\n",
    "print(mylib.LAYERS, layers)\n",
]


def test_a_checkpoint_whose_dependency_changed_is_ended_and_not_resumed_from(
    link: TemplateLink, tmp_path: Path
) -> None:
    (tmp_path / "mylib.py").write_text(MODULE)
    build = builder(link, tmp_path)
    build(PAGE)
    assert eventually(lambda: len(checkpoint_places(link)) == 3)
    (tmp_path / "mylib.py").write_text(MODULE.replace("]", ', "gained_layer"]'))
    # Another build (its template not kept: a one-shot build) brings the shared cache up to date with the new
    # module, so that the next build's first two figures are cache hits and only its third runs.
    other = FigureRunner(ModelvisConfig(), cache_dir=tmp_path / "cache", root=tmp_path)
    try:
        page = other.page("p.md", cwd=str(tmp_path))
        for number, code in enumerate(PAGE):
            assert page.run(Snippet(code, "p.md", 1 + 10 * number), OPTIONS).capture is not None
    finally:
        other.close()
    stale = [pid for place, pid in checkpoint_places(link).items() if place in ("p.md:1", "p.md:11")]
    third = build([*PAGE[:2], PAGE[2].replace("print(", "print('edited', ")])
    assert third.text(2) == "edited ['first_layer', 'gained_layer'] ['first_layer', 'gained_layer']\n"
    assert third.lines("ended the checkpoint") == [
        "ended the checkpoint after p.md:11: mylib.py changed",
        "ended the checkpoint after p.md:1: mylib.py changed",
    ]
    assert third.lines("resumed") == [] and third.stats.replayed == 2, "a fresh worker replayed the page"
    assert len(stale) == 2 and all(eventually(lambda pid=pid: not alive(pid)) for pid in stale), "they ended"


def test_a_resumed_worker_runs_tensor_work_after_a_checkpoint_taken_after_tensor_work(
    link: TemplateLink, tmp_path: Path
) -> None:
    # GNU OpenMP hangs at a forked child's next parallel operation: the resumed worker must stay on one thread,
    # even when its snippet asks for two (the snippet timeout turns a hang into a failed figure).
    before = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1000, 1000)\nb = a @ a\nprint(b.shape)\n"
    after = "torch.set_num_threads(2)\nc = a @ a\nprint('{}', tuple(c.shape), torch.get_num_threads())\n"
    build = builder(link, tmp_path)
    first = build([before, after.format("first")])
    assert first.text(1) == "first (1000, 1000) 2\n", "a worker forked from the template keeps its threads"
    second = build([before, after.format("edited")])
    assert second.text(1) == "edited (1000, 1000) 1\n", second.results[1].failure
    (start,) = second.lines("resumed a worker process")
    assert start.endswith("(threads: 1, resumed from the checkpoint after p.md:1)")


#: A page whose first two snippets each hold 96 MiB, which the next one lets go: the checkpoints after them hold it
#: alone (a fork's own memory), the three after hold little.
BLOBS = [
    "blob = bytes([1]) * (96 << 20)\nprint(1)\n",
    "blob = bytes([2]) * (96 << 20)\nprint(2)\n",
    "del blob\nx = 3\nprint(3)\n",
    "x = 4\nprint(4)\n",
    "x = 5\nprint(5)\n",
]


def test_the_oldest_checkpoints_are_ended_when_they_hold_more_memory_than_the_bound(
    link: TemplateLink, tmp_path: Path
) -> None:
    build = builder(link, tmp_path, checkpoint_memory="150MiB")
    first = build(BLOBS)
    (ended,) = first.lines("ended the checkpoint")  # the checkpoint after p.md:11 alone is within the bound
    assert ended.startswith("ended the checkpoint after p.md:1 (")
    assert ended.endswith("): the checkpoints held more than checkpoint_memory = '150MiB' (157.3 MB)")
    assert eventually(lambda: sorted(checkpoint_places(link)) == ["p.md:11", "p.md:21", "p.md:31", "p.md:41"])
    edited = build([*BLOBS[:4], "print(x, 'blob' in globals())\n"])
    assert edited.text(4) == "4 False\n"
    (resumed,) = edited.lines("not replayed")
    assert resumed.endswith("(resumed from the checkpoint after p.md:31; 4 snippet(s) not replayed)")


@pytest.mark.parametrize(("keep", "memory"), [(KEEP, 0), (0.0, "25%")], ids=["bound 0", "one-shot builds"])
def test_no_checkpoints_when_the_bound_is_0_or_the_template_is_not_kept(
    tmp_path: Path, keep: float, memory: int | str
) -> None:
    link = TemplateLink(keep_warm=keep, cache_dir=tmp_path / "cache")
    try:
        build = builder(link, tmp_path, checkpoint_memory=memory)
        first = build(SIX)
        second = build([*SIX[:5], SIX[5].replace("print(seen,", "print('edited', seen,")])
        assert second.text(5).startswith("edited [1, 2, 3, 4, 5] ")
        assert second.stats.replayed == 5 and second.lines("resumed") == []
        if keep:
            assert first.lines("reused the warm template") == [] and second.lines("reused the warm template")
            assert not (link.folder / CHECKPOINTS).exists()
        else:
            assert first.lines("warm template") == second.lines("warm template") == []
    finally:
        link.end()


def test_checkpoints_end_when_their_folder_is_removed(link: TemplateLink, tmp_path: Path) -> None:
    builder(link, tmp_path)(SIX[:2])
    assert eventually(lambda: len(checkpoint_pids(link)) == 2)
    pids = checkpoint_pids(link)
    assert all(alive(pid) for pid in pids)
    shutil.rmtree(link.folder / CHECKPOINTS)
    assert all(eventually(lambda pid=pid: not alive(pid)) for pid in pids)
    assert alive(link.pid() or 0), "the template itself goes on"


def test_checkpoint_memory_reads_bytes_sizes_and_shares() -> None:
    assert [memory_size(value, total=1000) for value in (0, 123, "2GiB", "512 MiB", "1.5GB", "2k", "25%")] == [
        0,
        123,
        2 << 30,
        512 << 20,
        1_500_000_000,
        2000,
        250,
    ]
    for bad in ("lots", "-1", "2 GiBs", -3):
        with pytest.raises(ConfigError, match="checkpoint_memory"):
            ModelvisConfig(checkpoint_memory=bad)


def test_the_checkpoints_live_in_the_templates_private_folder(link: TemplateLink, tmp_path: Path) -> None:
    builder(link, tmp_path)(SIX[:1])
    for folder in (link.folder, link.folder / CHECKPOINTS):
        assert os.stat(folder).st_mode & 0o077 == 0, "only its user can reach a checkpoint's socket"


def test_checkpoints_end_when_their_template_is_gone(link: TemplateLink, tmp_path: Path) -> None:
    builder(link, tmp_path)(SIX[:2])
    assert eventually(lambda: len(checkpoint_pids(link)) == 2)
    template = link.pid()
    assert template is not None
    os.kill(template, signal.SIGKILL)  # no clean-up: its folder stays, with the checkpoints' sockets in it
    assert all(eventually(lambda pid=pid: not alive(pid)) for pid in checkpoint_pids(link))


# -- through a real host ------------------------------------------------------------------------------------

SPHINX_PAGE = """\
Page
====

.. modelvis::

   seen = [1]
   print(seen)

.. modelvis::

   seen.append(2)
   print(seen)

.. modelvis::
   :name: last

   print("{}", seen)
"""


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["-j 1", "-j 2"])
def test_sphinx_builds_with_the_template_kept_resume_an_edited_figure(tmp_path: Path, jobs: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text(
        'extensions = ["sphinx_modelvis"]\nexclude_patterns = ["_build"]\nmodelvis_format = "html"\n'
        "modelvis_keep_warm = 120\n"
    )
    pages = [f"page{number}" for number in range(4)]
    (docs / "index.rst").write_text("Pages\n=====\n\n.. toctree::\n\n" + "".join(f"   {page}\n" for page in pages))
    link = TemplateLink(keep_warm=1, cache_dir=docs / "_build" / ".modelvis-cache")  # the one the builds keep
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sphinx", "build", "--no-color", "-j", jobs, "-b", "html", str(docs), str(out)]
    try:
        logs = []
        for word in ("first", "edited"):
            for page in pages:
                (docs / f"{page}.rst").write_text(SPHINX_PAGE.format(f"{word} {page}"))
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
            logs.append(done.stdout + done.stderr)
        for page in pages:
            assert f"edited {page} [1, 2]" in (out / f"{page}.html").read_text()
        assert "resumed" not in logs[0]
        resumed = sorted(line for line in logs[1].splitlines() if "not replayed" in line)
        assert [line.split(" ... ")[0] for line in resumed] == [f"modelvis: {page}.rst:17" for page in pages]
        for page, line in zip(pages, resumed, strict=True):
            assert line.endswith(f"(resumed from the checkpoint after {page}.rst:11; 2 snippet(s) not replayed)")
    finally:
        link.end()


class _Records(logging.Handler):
    """What MkDocs and its plugins log, as messages."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_mkdocs_serve_rebuilds_resume_an_edited_figure(tmp_path: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: loop\ntheme: mkdocs\nplugins:\n  - modelvis:\n      format: html\n"
    )
    fences = [*SIX[:2], "print('{}', seen)\n"]
    page = "# Loop\n\n" + "".join(f"```{{modelvis}}\n{code}```\n\n" for code in fences)
    records = _Records()
    logger = logging.getLogger("mkdocs")
    level = logger.level
    logger.setLevel(logging.INFO)  # as `mkdocs serve` logs: the lines of each figure that ran
    logger.addHandler(records)
    plugin = None
    try:
        for number, word in enumerate(("first", "served", "edited")):
            (tmp_path / "docs" / "index.md").write_text(page.replace("{}", word))
            config = load_config(str(tmp_path / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
            if number == 1:  # as `mkdocs serve` does, after a first `mkdocs build`: one plugin from now on
                plugin = config.plugins["modelvis"]
                plugin.on_startup(command="serve", dirty=False)
            records.messages.clear()
            build(config)
            assert plugin is None or config.plugins["modelvis"] is plugin
        assert "edited [1, 2]" in (tmp_path / "site" / "index.html").read_text()
        (resumed,) = [message for message in records.messages if "not replayed" in message]
        assert resumed.startswith("modelvis: index.md:")
        assert resumed.endswith("(resumed from the checkpoint after index.md:10; 2 snippet(s) not replayed)")
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
        if plugin is not None:
            plugin.on_shutdown()
