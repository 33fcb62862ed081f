"""The host-neutral runner: page namespaces in a worker process, timeouts, crashes, replays and the cache.

Most snippets here are plain Python, so the worker never imports torch and each test takes well under a second.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sphinx_modelvis.capture import Capture, TextBlock, TreeBlock
from sphinx_modelvis.config import FigureOptions, ModelvisConfig, TreeSettings
from sphinx_modelvis.execution.cache import FigureCache, chain_key, package_versions, page_key
from sphinx_modelvis.execution.session import FigureRunner, Snippet, cache_folder

FAST = FigureOptions(timeout=20.0)


def text(capture: Capture | None) -> str:
    assert capture is not None
    return "".join(block.ansi for block in capture.blocks if isinstance(block, TextBlock))


@pytest.fixture
def messages() -> list[str]:
    return []


@pytest.fixture
def runner(tmp_path: Path, messages: list[str]) -> Iterator[FigureRunner]:
    runner = FigureRunner(ModelvisConfig(), cache_dir=tmp_path / "cache", progress=messages.append)
    yield runner
    runner.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited too.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def wait_until_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


# -- namespaces -----------------------------------------------------------------------------------


def test_a_page_shares_one_namespace_in_order_and_pages_do_not_share(runner: FigureRunner) -> None:
    page = runner.page("a.md")
    assert page.run(Snippet("x = 41\n", "a.md", 3), FAST).failure is not None, "printed nothing, bound no module"
    shown = page.run(Snippet("x += 1\nprint('x is', x)\n", "a.md", 9), FAST)
    assert text(shown.capture) == "x is 42\n"
    other = runner.page("b.md").run(Snippet("print('x' in globals())\n", "b.md", 1), FAST)
    assert text(other.capture) == "False\n"
    assert runner.stats.worker_starts == 2, "each page runs in a worker of its own, forked from the template"
    assert runner.stats.replayed == 0


def test_reset_starts_a_fresh_namespace_and_pre_code_runs_in_each(tmp_path: Path) -> None:
    config = ModelvisConfig(pre_code="greeting = 'hello'\n")
    runner = FigureRunner(config, cache_dir=None)
    try:
        page = runner.page("p.rst")
        page.run(Snippet("x = 1\n", "p.rst", 1), FAST)
        kept = page.run(Snippet("print(greeting, x)\n", "p.rst", 5), FAST)
        assert text(kept.capture) == "hello 1\n"
        reset = page.run(Snippet("print(greeting, 'x' in globals())\n", "p.rst", 9), FigureOptions(reset=True))
        assert text(reset.capture) == "hello False\n"
    finally:
        runner.close()


def test_ending_a_page_gives_it_a_fresh_namespace_when_read_again(runner: FigureRunner) -> None:
    runner.page("a.md").run(Snippet("x = 1\n", "a.md", 1), FAST)
    runner.end_page("a.md")
    again = runner.page("a.md").run(Snippet("print('x' in globals())\n", "a.md", 1), FAST)
    assert text(again.capture) == "False\n"


def test_snippets_run_in_the_page_folder(tmp_path: Path, runner: FigureRunner) -> None:
    folder = tmp_path / "docs" / "guide"
    folder.mkdir(parents=True)
    (folder / "data.txt").write_text("beside the page")
    shown = runner.page("guide/p.md", cwd=folder).run(Snippet("print(open('data.txt').read())\n", "p.md", 1), FAST)
    assert text(shown.capture) == "beside the page\n"


def test_writing_to_the_real_stdout_does_not_disturb_the_protocol(runner: FigureRunner) -> None:
    code = (
        "import os, sys\n"
        "os.write(1, b'raw bytes on fd 1\\n')\n"
        "sys.__stdout__.write('{\"ok\": false}\\n'); sys.__stdout__.flush()\n"
        "os.write(2, b'and on fd 2\\n')\n"
        "print('captured')\n"
    )
    shown = runner.page("p.md").run(Snippet(code, "p.md", 1), FAST)
    assert shown.failure is None
    assert text(shown.capture) == "captured\n"


def test_the_figure_of_a_module_is_its_tree(runner: FigureRunner) -> None:
    page = runner.page("m.md")
    code = "from torch import nn\nnet = nn.Sequential(nn.Linear(2, 3), nn.ReLU())\n"
    built = page.run(Snippet(code, "m.md", 1), FAST)
    assert built.capture is not None and isinstance(built.capture.blocks[0], TreeBlock)
    assert [child.type_name for child in built.capture.blocks[0].tree.root.children] == ["Linear"]
    options = FigureOptions(expr="net", tree=TreeSettings(keep_non_params=True, max_depth=1))
    named = page.run(Snippet("", "m.md", 8), options)
    assert named.capture is not None
    block = named.capture.blocks[0]
    assert isinstance(block, TreeBlock)
    assert block.max_depth == 1
    assert [child.type_name for child in block.tree.root.children] == ["Linear", "ReLU"]
    not_module = page.run(Snippet("", "m.md", 12), FigureOptions(expr="len"))
    assert not_module.failure is not None
    assert not_module.failure.kind == "not-a-module"
    assert "`len` is a builtin_function_or_method, not a torch.nn.Module" in not_module.failure.message


# -- failures -------------------------------------------------------------------------------------


def test_a_raising_snippet_reports_the_docs_line_that_raised(runner: FigureRunner) -> None:
    page = runner.page("guide.md")
    page.run(Snippet("def helper():\n    return {}['missing']\n", "guide.md", 10), FAST)
    result = page.run(Snippet("a = 1\nhelper()\n", "guide.md", 20), FAST)
    failure = result.failure
    assert failure is not None
    assert failure.kind == "snippet"
    assert failure.message == "the snippet raised KeyError: 'missing'"
    assert failure.line == 11, "the line inside the earlier snippet's function that raised"
    assert 'File "guide.md", line 21, in <module>' in failure.traceback
    assert 'File "guide.md", line 11, in helper' in failure.traceback
    assert "return {}['missing']" in failure.traceback
    assert "sphinx_modelvis" not in failure.traceback, "only the snippet's own frames"
    later = page.run(Snippet("print(a)\n", "guide.md", 30), FAST)
    assert text(later.capture) == "1\n", "what ran before the error stays in the namespace"


def test_a_syntax_error_reports_its_line(runner: FigureRunner) -> None:
    result = runner.page("s.md").run(Snippet("x = 1\ny = (\n", "s.md", 40), FAST)
    assert result.failure is not None
    assert result.failure.kind == "snippet"
    assert "SyntaxError" in result.failure.message
    assert result.failure.line == 41, "the line of the bracket that is never closed"


def test_a_timeout_kills_the_worker_and_what_it_started_then_the_page_goes_on(
    tmp_path: Path, runner: FigureRunner, messages: list[str]
) -> None:
    pid_file = tmp_path / "child.pid"
    page = runner.page("t.md")
    page.run(Snippet("value = 7\n", "t.md", 1), FAST)
    first_worker = runner.worker_pid
    assert first_worker is not None
    code = (
        "import subprocess, time\n"
        f"child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "def wait():\n"
        "    time.sleep(60)\n"
        "wait()\n"
    )
    result = page.run(Snippet(code, "t.md", 10), FigureOptions(timeout=1.0))
    # Stopped, not waited for: the worker is killed and reaped before run() returns (how soon after the timeout
    # is measured by bench/timeout_stop.py).
    assert not alive(first_worker), "the worker is gone when run() returns"
    failure = result.failure
    assert failure is not None
    assert failure.kind == "timeout"
    assert "ran for more than 1 s and was stopped" in failure.message
    assert failure.line == 14, "the line it was stuck on (inside wait())"
    assert 'File "t.md", line 14 in wait' in failure.traceback
    assert wait_until_gone(int(pid_file.read_text())), "the snippet's own child process is killed too"
    after = page.run(Snippet("print(value)\n", "t.md", 20), FAST)
    assert text(after.capture) == "7\n", "earlier snippets are replayed in the new worker"
    assert runner.stats.worker_starts == 2
    assert runner.stats.replayed == 1, "the snippet that timed out is not replayed"
    assert "modelvis: t.md:10 ... timeout" in messages


@pytest.mark.parametrize(
    ("code", "death", "line"),
    [
        ("import os\nos._exit(3)\n", "exited with status 3", 51),
        ("import ctypes\nctypes.string_at(0)\n", "crashed with SIGSEGV (segmentation fault)", 51),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed by SIGKILL (the system may have run", 50),
    ],
    ids=["os._exit", "segfault", "oom-kill"],
)
def test_a_crash_replaces_the_worker_and_the_page_goes_on(
    runner: FigureRunner, code: str, death: str, line: int
) -> None:
    page = runner.page("c.md")
    page.run(Snippet("before = 'kept'\n", "c.md", 40), FAST)
    result = page.run(Snippet(code, "c.md", 50), FAST)
    assert result.failure is not None
    assert result.failure.kind == "crash"
    assert death in result.failure.message
    assert result.failure.line == line
    after = page.run(Snippet("print(before)\n", "c.md", 60), FAST)
    assert text(after.capture) == "kept\n"
    assert runner.stats.worker_starts == 2


def test_a_worker_outlives_no_host_that_exits_without_cleaning_up(tmp_path: Path) -> None:
    # Sphinx's parallel readers end with os._exit: no close(), no atexit.
    code = (
        "import os, sys\n"
        "from sphinx_modelvis.config import ModelvisConfig, FigureOptions\n"
        "from sphinx_modelvis.execution.session import FigureRunner, Snippet\n"
        "runner = FigureRunner(ModelvisConfig(), cache_dir=None)\n"
        "runner.page('p').run(Snippet('x = 1\\nprint(x)\\n', 'p', 1), FigureOptions())\n"
        "print(runner.worker_pid, flush=True)\n"
        "os._exit(0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert wait_until_gone(int(result.stdout.strip()))


def test_a_forked_child_starts_its_own_worker(runner: FigureRunner) -> None:
    page = runner.page("f.md")
    page.run(Snippet("x = 'parent'\n", "f.md", 1), FAST)
    parent_worker = runner.worker_pid
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            shown = runner.page("g.md").run(Snippet("import os\nprint(os.getpid())\n", "g.md", 1), FAST)
            os.write(write, json.dumps({"worker": int(text(shown.capture)), "pid": runner.worker_pid}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        report = json.loads(stream.read())
    os.waitpid(child, 0)
    assert report["worker"] == report["pid"]
    assert report["worker"] != parent_worker
    again = page.run(Snippet("print(x)\n", "f.md", 5), FAST)
    assert text(again.capture) == "parent\n", "the parent's worker is untouched"
    assert runner.worker_pid == parent_worker


def test_progress_lines_name_the_page_line_and_seconds(runner: FigureRunner, messages: list[str]) -> None:
    runner.page("guide/p.md").run(Snippet("print(1)\n", "guide/p.md", 12), FAST)
    started = r"modelvis: forked a worker process \(pid \d+\) in \d+\.\d\d s"
    assert re.fullmatch(started + r"( \(\d+\.\d\d s of it waiting for the template to import\))?", messages[0])
    assert re.fullmatch(r"modelvis: guide/p\.md:12 \.\.\. \d+\.\d s", messages[-1])


# -- the cache ------------------------------------------------------------------------------------


def page_of(runner: FigureRunner, snippets: list[str]) -> list[Capture | None]:
    page = runner.page("cached.md")
    return [page.run(Snippet(code, "cached.md", 1 + 10 * index), FAST).capture for index, code in enumerate(snippets)]


SNIPPETS = ["a = 1\nprint('a')\n", "b = a + 1\nprint('b', b)\n", "print('c', a + b)\n"]


def test_a_fully_cached_page_starts_no_worker(tmp_path: Path) -> None:
    first = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        expected = page_of(first, SNIPPETS)
    finally:
        first.close()
    second = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    assert page_of(second, SNIPPETS) == expected
    assert second.stats.worker_starts == 0
    assert second.stats.cached == 3
    assert second.worker_pid is None


def test_a_partial_hit_replays_the_earlier_snippets_before_running_the_missed_one(tmp_path: Path) -> None:
    first = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        page_of(first, SNIPPETS)
    finally:
        first.close()
    second = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        captures = page_of(second, [*SNIPPETS[:2], "print('c', a * 10 + b)\n"])
    finally:
        second.close()
    assert text(captures[2]) == "c 12\n"
    assert (second.stats.cached, second.stats.replayed, second.stats.executed) == (2, 2, 1)


def test_changing_an_earlier_snippet_misses_every_later_figure(tmp_path: Path) -> None:
    first = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        page_of(first, SNIPPETS)
    finally:
        first.close()
    second = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        captures = page_of(second, ["a = 5\nprint('a')\n", *SNIPPETS[1:]])
    finally:
        second.close()
    assert text(captures[2]) == "c 11\n"
    assert second.stats.cached == 0


def test_a_corrupt_entry_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    first = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        page_of(first, SNIPPETS[:1])
    finally:
        first.close()
    (entry,) = tmp_path.glob("*/*.json")
    good = entry.read_text()
    entry.write_text(good[: len(good) // 2])
    second = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        assert text(page_of(second, SNIPPETS[:1])[0]) == "a\n"
    finally:
        second.close()
    assert second.stats.executed == 1
    assert entry.read_text() == good
    assert [path.name for path in tmp_path.rglob("*.json")] == [entry.name], "no temporary file left"
    assert not list(tmp_path.rglob(".tmp-*")), "no temporary file left"


def test_execute_never_fails_clearly_without_a_cached_figure_and_always_ignores_the_cache(tmp_path: Path) -> None:
    never = FigureRunner(ModelvisConfig(execute="never"), cache_dir=tmp_path)
    result = never.page("n.md").run(Snippet("print(1)\n", "n.md", 7), FAST)
    assert result.failure is not None
    assert result.failure.kind == "not-cached"
    assert result.failure.line == 7
    assert "execute = 'never'" in result.failure.message
    assert never.stats.worker_starts == 0
    first = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
    try:
        page_of(first, SNIPPETS[:1])
    finally:
        first.close()
    always = FigureRunner(ModelvisConfig(execute="always"), cache_dir=tmp_path)
    try:
        page_of(always, SNIPPETS[:1])
    finally:
        always.close()
    assert (always.stats.cached, always.stats.executed) == (0, 1)
    cached_only = FigureRunner(ModelvisConfig(execute="never"), cache_dir=tmp_path)
    assert text(page_of(cached_only, SNIPPETS[:1])[0]) == "a\n"


def test_failures_are_not_cached(tmp_path: Path) -> None:
    for _ in range(2):
        runner = FigureRunner(ModelvisConfig(), cache_dir=tmp_path)
        try:
            assert runner.page("e.md").run(Snippet("1 / 0\n", "e.md", 1), FAST).failure is not None
        finally:
            runner.close()
        assert runner.stats.executed == 1
    assert not list(tmp_path.rglob("*.json"))


def test_keys_chain_over_the_page_and_start_from_versions_and_pre_code() -> None:
    versions = package_versions()
    assert set(versions) >= {"sphinx-modelvis", "torch", "transformers", "peft"}
    assert versions["torch"] is not None
    start = page_key("", versions)
    assert start != page_key("import torch", versions)
    assert start != page_key("", {**versions, "torch": "0.0"})
    options = FAST.execution_key()
    first = chain_key(start, "a = 1\n", options)
    assert first == chain_key(start, "a = 1\n", dict(options)), "the same snippet in the same place, the same key"
    # Each input alone changes the key: the code, the options, the key before it.
    assert first != chain_key(start, "a = 2\n", options)
    assert first != chain_key(start, "a = 1\n", FigureOptions(timeout=20.0, device="meta").execution_key())
    assert first != chain_key(page_key("import torch", versions), "a = 1\n", options)
    # Over the page: a later snippet's key changes with an earlier snippet's code, its own unchanged.
    assert chain_key(first, "print(a)\n", options) != chain_key(
        chain_key(start, "a = 2\n", options), "print(a)\n", options
    )


def test_cache_round_trip_and_foreign_entries(tmp_path: Path) -> None:
    cache = FigureCache(tmp_path)
    capture = Capture([TextBlock("\x1b[1mbold\x1b[0m\n")])
    path = cache.put("ab" * 32, capture)
    assert path == tmp_path / "ab" / f"{'ab' * 32}.json"
    assert cache.get("ab" * 32) == capture
    assert cache.get("cd" * 32) is None
    other = cache.path("cd" * 32)
    other.parent.mkdir()
    other.write_text(path.read_text())  # an entry under the wrong name
    assert cache.get("cd" * 32) is None


def test_the_cache_folder_resolves_against_the_config_folder(tmp_path: Path) -> None:
    assert cache_folder("", config_dir=tmp_path, host="sphinx") == tmp_path / "_build" / ".modelvis-cache"
    assert cache_folder("", config_dir=tmp_path, host="mkdocs") == tmp_path / ".modelvis-cache"
    assert cache_folder("ci/cache", config_dir=tmp_path, host="sphinx") == tmp_path / "ci/cache"
    assert cache_folder("/abs", config_dir=tmp_path, host="mkdocs") == Path("/abs")


def test_the_host_side_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from sphinx_modelvis.execution import session, cache, client\n"
        "from sphinx_modelvis.execution.cache import package_versions\n"
        "package_versions()\n"
        "print(' '.join(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
