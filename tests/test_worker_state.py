"""The worker client knows which namespace its worker holds and how far it has run there (issue 18, item 2).

Starting, resetting, running and killing the worker keep that right, so a page session replays exactly what
the worker has not run yet. Plain-Python snippets: no torch is imported.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sphinx_modelvis.capture import Capture, TextBlock
from sphinx_modelvis.config import FigureOptions, ModelvisConfig
from sphinx_modelvis.execution.client import WorkerClient, WorkerCrashed, WorkerTimeout
from sphinx_modelvis.execution.session import FigureRunner, Snippet
from sphinx_modelvis.execution.wire import RunRequest

FAST = FigureOptions(timeout=20.0)


def text(capture: Capture | None) -> str:
    assert capture is not None
    return "".join(block.ansi for block in capture.blocks if isinstance(block, TextBlock))


def snippet(code: str, *, replay: bool = False) -> RunRequest:
    return RunRequest(code=code, filename="page.md", first_line=1, replay=replay)


@pytest.fixture
def client() -> Iterator[WorkerClient]:
    client = WorkerClient()
    yield client
    client.close()


def test_reset_and_run_move_the_position_and_a_failed_prelude_leaves_no_namespace(client: WorkerClient) -> None:
    assert client.ensure_started()
    assert (client.namespace, client.position, client.used) == (None, 0, False), "a new worker holds nothing"
    client.reset("page a", cwd=None)
    assert (client.namespace, client.position) == ("page a", 0)
    assert client.run(snippet("x = 1\nprint(x)\n"), timeout=20).ok
    assert (client.position, client.used) == (1, True)
    raised = client.run(snippet("1 / 0\n"), timeout=20)
    assert not raised.ok and raised.kind == "snippet"
    assert client.position == 2, "a snippet that raised ran: what it did before raising is in the namespace"
    assert client.run(snippet("x += 1\n", replay=True), timeout=20).ok
    assert client.position == 3
    client.reset("page b", cwd=None)
    assert (client.namespace, client.position) == ("page b", 0)
    assert client.run(snippet("y = 2\n", replay=True), timeout=20, prelude=True).ok
    assert (client.namespace, client.position) == ("page b", 0), "a prelude is not one of the page's snippets"
    assert not client.run(snippet("1 / 0\n", replay=True), timeout=20, prelude=True).ok
    assert (client.namespace, client.position) == (None, 0), "a namespace whose prelude failed is nobody's"


def test_a_timeout_or_a_killed_worker_leaves_no_namespace(client: WorkerClient) -> None:
    client.ensure_started()
    client.reset("page", cwd=None)
    client.run(snippet("x = 1\n"), timeout=20)
    with pytest.raises(WorkerTimeout):
        client.run(snippet("import time\ntime.sleep(60)\n"), timeout=0.5)
    assert (client.namespace, client.position, client.used, client.running) == (None, 0, False, False)
    assert client.ensure_started(), "the next request needs a new worker"
    client.reset("page", cwd=None)
    client.run(snippet("x = 1\n"), timeout=20)
    pid = client.pid
    assert pid is not None and client.position == 1
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while client.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (client.namespace, client.position) == (None, 0), "a worker that died between requests holds nothing"
    client.ensure_started()
    client.reset("page", cwd=None)
    with pytest.raises(WorkerCrashed):
        client.run(snippet("import os\nos._exit(3)\n"), timeout=20)
    assert (client.namespace, client.position) == (None, 0)


def test_a_forked_host_process_does_not_take_its_parents_namespace(client: WorkerClient) -> None:
    client.ensure_started()
    client.reset("page", cwd=None)
    client.run(snippet("x = 1\n"), timeout=20)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, json.dumps([client.namespace, client.position, client.pid]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        seen = json.loads(stream.read())
    os.waitpid(child, 0)
    assert seen == [None, 0, None]
    assert (client.namespace, client.position) == ("page", 1), "the parent's worker is untouched"


def test_a_snippet_that_hangs_when_replayed_leaves_the_page_and_the_rest_is_replayed(tmp_path: Path) -> None:
    marker = f"{tmp_path}/ran-once"
    # Runs the first time; hangs when run again (as a replay would), past its own timeout.
    once = (
        f"import os, time\nif os.path.exists({marker!r}):\n    time.sleep(60)\nopen({marker!r}, 'w').close()\nb = 2\n"
    )
    runner = FigureRunner(ModelvisConfig(), cache_dir=None)
    try:
        page = runner.page("p.md")
        page.run(Snippet("a = 1\n", "p.md", 1), FAST)
        page.run(Snippet(once, "p.md", 10), FigureOptions(timeout=1.0))
        crashed = page.run(Snippet("import os\nos._exit(3)\n", "p.md", 20), FAST)
        assert crashed.failure is not None and crashed.failure.kind == "crash"
        lost = page.run(Snippet("print(a, b)\n", "p.md", 30), FAST)
        assert lost.failure is not None and lost.failure.kind == "timeout"
        assert lost.failure.message.startswith("replaying the earlier snippet at p.md:10")
        assert runner.stats.replayed == 2, "a = 1 and the hanging snippet; not the one that crashed"
        after = page.run(Snippet("print(a, 'b' in globals())\n", "p.md", 40), FAST)
        assert text(after.capture) == "1 False\n"
        assert runner.stats.replayed == 4, "a = 1 and print(a, b) (it raised NameError); not the other two"
        assert [step.snippet.line for step in page.history.steps] == [1, 30, 40]
    finally:
        runner.close()
