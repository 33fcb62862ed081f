"""Waiting on other processes in tests: a bounded poll, and an author's ``mkdocs serve`` in a subprocess."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

#: How often a test polls for something another process does (every 0.05 s, so at most two minutes): a bound on
#: a wait that would otherwise hang the suite, not a measure of speed.
POLLS = 2400


def eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within :data:`POLLS` polls."""
    for _ in range(POLLS):
        if condition():
            return True
        time.sleep(0.05)
    return False


def free_address() -> str:
    """A free loopback address for a server to listen on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def served(address: str, ready: Callable[[str], bool], server: subprocess.Popen[bytes]) -> str:
    """The served index page once ``ready`` says so (polled a bounded number of times, while the server runs)."""
    page = ""
    for _ in range(POLLS):
        if server.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://{address}/", timeout=10) as response:
                page = response.read().decode("utf-8")
        except OSError:
            page = ""
        if ready(page):
            return page
        time.sleep(0.05)
    return page


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop a server as an author does, with Ctrl-C (so it runs its shutdown)."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def mkdocs_serve(project: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``mkdocs serve`` of ``project`` on a free address, its output in ``log``: the address and the server,
    stopped with Ctrl-C at the end."""
    address = free_address()
    with open(log, "w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", address],
            cwd=project,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield address, server
    finally:
        stop(server)
