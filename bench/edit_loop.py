"""The author's edit loop: edit the last figure of the tutorial page, and see it rebuilt, in ``sphinx-autobuild``
and in ``mkdocs serve``, with the template process kept warm between builds (``keep_warm``) and without.

A copy of ``docs/tutorial/visualization.md`` goes into a temporary Sphinx project (MyST) and a temporary MkDocs
project, one of each for each way (a cold figure cache each). For each, the script starts the real server
(``sphinx-autobuild`` / ``mkdocs serve`` on a free port), waits for the first build, then makes a one-line edit
to the page's last snippet (``BertConfig()`` -> ``BertConfig(num_hidden_layers=6)``) and waits for the rebuild.
Every line the server writes is time-stamped as it is read. From the rebuild's modelvis lines:

- **modelvis's own time**: the worker's start (``forked a worker process ... in 3.90 s``), the earlier snippets
  replayed (``... 0.4 s (replayed)``) and the edited snippet's run, as the lines give them; and the wall time
  from the rebuild's first modelvis line to the edited snippet's last;
- **the snippet's own run**: from its ``running`` line to its ``...`` line, as read.

Keep-warm off is today's rule (``modelvis_keep_warm = 0`` / ``keep_warm: 0``: the template ends with each
build); on is the default of each server (unset: 900 s under ``sphinx-autobuild`` and ``mkdocs serve``). The
issue's goal: modelvis's own time at most the snippet's run + 0.3 s. Kept warm, checkpoints are on too (the
worker resumes after the earlier snippets instead of replaying them); this script prints whether the goal is met
and gates nothing.
Run it with the dev environment: ``.venv/bin/python bench/edit_loop.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from machine import describe

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out" / "edit_loop"
PAGE = REPO / "docs" / "tutorial" / "visualization.md"
EDIT = ("backbone = BertForMaskedLM(BertConfig())", "backbone = BertForMaskedLM(BertConfig(num_hidden_layers=6))")
#: Bounds on waiting for a build (a safety net against a hung server, not a measure).
BUILD_LIMIT = 900.0

SPHINX_CONF = """\
extensions = ["myst_parser", "sphinx_modelvis"]
myst_enable_extensions = ["colon_fence", "deflist"]
exclude_patterns = ["_build"]
suppress_warnings = ["myst.xref_missing", "ref.ref"]
"""
MKDOCS_YML = """\
site_name: edit loop
theme: mkdocs
nav:
  - visualization.md
plugins:
  - modelvis{options}
"""


@dataclass
class Log:
    """A server's output, each line with the monotonic time it was read."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            with self.lock:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    def since(self, index: int) -> list[tuple[float, str]]:
        with self.lock:
            return self.lines[index:]

    def wait_for(self, marker: str, index: int, server: subprocess.Popen[bytes]) -> int:
        """The index just past the first line after ``index`` holding ``marker``."""
        deadline = time.monotonic() + BUILD_LIMIT
        while time.monotonic() < deadline and server.poll() is None:
            for offset, (_when, line) in enumerate(self.since(index)):
                if marker in line:
                    return index + offset + 1
            time.sleep(0.05)
        tail = "\n".join(line for _when, line in self.since(max(0, index - 40)))
        raise RuntimeError(f"no {marker!r} from the server:\n{tail}")


@dataclass
class Rebuild:
    """What one way's first build and rebuild came to."""

    host: str
    warm: bool
    first_build: float = 0.0
    rebuild: float = 0.0
    worker_start: float = 0.0
    replayed: float = 0.0
    replays: int = 0
    #: Earlier snippets a checkpoint spared (the worker resumed after them instead of replaying them).
    spared: int = 0
    snippet_logged: float = 0.0
    snippet_read: float = 0.0
    own_logged: float = 0.0
    own_read: float = 0.0
    template: str = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def project(root: Path, host: str, warm: bool) -> Path:
    """A temporary project holding the tutorial page, its server's folder."""
    folder = root / f"{host}-{'warm' if warm else 'cold'}"
    docs = folder / "docs"
    docs.mkdir(parents=True)
    shutil.copy(PAGE, docs / "visualization.md")
    if host == "sphinx":
        (docs / "conf.py").write_text(SPHINX_CONF + ("" if warm else "modelvis_keep_warm = 0\n"), encoding="utf-8")
        (docs / "index.md").write_text("# Edit loop\n\n```{toctree}\nvisualization\n```\n", encoding="utf-8")
    else:
        options = "" if warm else ":\n      keep_warm: 0"
        (folder / "mkdocs.yml").write_text(MKDOCS_YML.format(options=options), encoding="utf-8")
    return folder


def command(host: str, folder: Path, port: int) -> list[str]:
    if host == "sphinx":
        script = str(Path(sys.executable).parent / "sphinx-autobuild")
        # The figure cache lies in the watched folder (docs/_build/.modelvis-cache): as the Sphinx guide says,
        # ignore it, or each build that writes it starts another.
        ignore = ["--ignore", "*/.modelvis-cache/*"]
        return [script, "--host", "127.0.0.1", "--port", str(port), *ignore, "docs", "_build/html"]
    return [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{port}"]


def measure(root: Path, host: str, warm: bool) -> Rebuild:
    folder = project(root, host, warm)
    done_marker = "Serving on" if host == "sphinx" else "Documentation built in"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = Log()
    started = time.monotonic()
    server = subprocess.Popen(
        command(host, folder, free_port()),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    reader = threading.Thread(target=log.read, args=(server.stdout,), daemon=True)
    reader.start()
    result = Rebuild(host, warm)
    try:
        first = log.wait_for(done_marker, 0, server)
        result.first_build = log.lines[first - 1][0] - started
        time.sleep(1.0)  # let the watcher settle after the first build
        mark = len(log.lines)
        page = folder / "docs" / "visualization.md"
        text = page.read_text(encoding="utf-8")
        assert EDIT[0] in text, "the tutorial's last snippet changed: update EDIT"
        edited = time.monotonic()
        page.write_text(text.replace(EDIT[0], EDIT[1]), encoding="utf-8")
        end = log.wait_for(done_marker, mark, server)
        result.rebuild = log.lines[end - 1][0] - edited
        read(result, log.since(mark)[: end - mark])
    finally:
        os.killpg(server.pid, signal.SIGINT)  # as Ctrl-C: the servers shut down (mkdocs ends its template)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        reader.join(timeout=10)
        (OUT / f"{host}-{'warm' if warm else 'cold'}.log").write_text(
            "\n".join(f"{when - started:9.3f} {line}" for when, line in log.lines) + "\n", encoding="utf-8"
        )
        end_kept(folder, host)
    return result


def read(result: Rebuild, lines: list[tuple[float, str]]) -> None:
    """Fill ``result`` from the rebuild's time-stamped lines (the edited snippet is the one run, not replayed)."""
    first_modelvis = began = None
    location = ""
    running = finished = None
    for when, line in lines:
        if "modelvis: " not in line:
            continue
        message = line[line.index("modelvis: ") + len("modelvis: ") :]
        if first_modelvis is None and not message.startswith(("cache:", "visualization.md unchanged")):
            first_modelvis = when
        if match := re.match(r"(forked|started|resumed) a worker process \(pid \d+\) in ([\d.]+) s", message):
            result.worker_start += float(match[2])
            if began is None:  # the line comes when the worker has started: it began that long before
                began = when - float(match[2])
        elif match := re.match(r".*\.\.\. ([\d.]+) s \(replayed\)", message):
            result.replayed += float(match[1])
            result.replays += 1
        elif match := re.match(r"(\S+\.md:\d+) running \(timeout", message):
            location, running = match[1], when
        elif location and (
            match := re.match(
                rf"{re.escape(location)} \.\.\. ([\d.]+) s"
                r"(?: \(resumed from the checkpoint after \S+; (\d+) snippet\(s\) not replayed\))?$",
                message,
            )
        ):
            result.snippet_logged = float(match[1])
            result.spared = int(match[2] or 0)
            finished = when
        elif "warm template process" in message:
            result.template = message.split(" the warm")[0].split(" a warm")[0]
    if running is None or finished is None or first_modelvis is None:
        raise RuntimeError("the rebuild's log has no run of the edited snippet:\n" + "\n".join(x for _, x in lines))
    result.snippet_read = finished - running
    result.own_logged = result.worker_start + result.replayed + result.snippet_logged
    result.own_read = finished - min(first_modelvis, began if began is not None else first_modelvis)


def end_kept(folder: Path, host: str) -> None:
    """End a template kept warm by the run (``sphinx-autobuild`` leaves it for its idle time)."""
    sys.path.insert(0, str(REPO / "src"))
    from sphinx_modelvis.execution.link import TemplateLink

    cache = folder / "docs" / "_build" / ".modelvis-cache" if host == "sphinx" else folder / ".modelvis-cache"
    TemplateLink(keep_warm=1, cache_dir=cache).end()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", default="sphinx,mkdocs", help="which servers, comma-separated")
    args = parser.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    root = OUT / "projects"
    results = []
    # Untimed: torch's and transformers' files into the page cache, so the first way measured pays no more.
    subprocess.run([sys.executable, "-c", "import torch, transformers, peft"], check=True)
    for host in args.hosts.split(","):
        for warm in (False, True):
            result = measure(root, host, warm)
            results.append(result)
            print(
                f"{host} keep-warm {'on' if warm else 'off'}: first build {result.first_build:.1f} s, "
                f"rebuild {result.rebuild:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    print("\n".join(describe(("sphinx-modelvis", "sphinx", "sphinx-autobuild", "mkdocs", "torch", "transformers"))))
    print()
    print(
        "| server | template | first build | rebuild (edit to served) | worker start | replayed (snippets) | "
        "spared by a checkpoint | "
        "edited snippet (logged / read) | modelvis's own (logged / read) | own - snippet | goal (<= +0.3 s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for result in results:
        server = "sphinx-autobuild" if result.host == "sphinx" else "mkdocs serve"
        if result.template:
            template = result.template
        elif not result.warm:
            template = "ends with each build"
        else:  # the rebuild did not need the template: its worker was forked from the page's checkpoint
            template = "not asked (resumed from a checkpoint)" if result.spared else "?"
        over = result.own_read - result.snippet_read
        print(
            f"| {server} | {'kept: ' if result.warm else ''}{template} | {result.first_build:.1f} s | "
            f"{result.rebuild:.2f} s | {result.worker_start:.2f} s | {result.replayed:.1f} s ({result.replays}) | "
            f"{result.spared} | "
            f"{result.snippet_logged:.1f} s / {result.snippet_read:.2f} s | "
            f"{result.own_logged:.1f} s / {result.own_read:.2f} s | {over:+.2f} s | "
            f"{'met' if over <= 0.3 else 'not met'} |"
        )
    print()
    print(
        "Logged: the numbers the modelvis lines carry (0.1 s steps for snippets); read: the time between the "
        "lines as the script read them from the server's output. The rebuild column runs from the edit to the "
        "server's end-of-build line (the watcher's delay included)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
