"""The memory of a template's checkpoints: measured per process, bounded by ``checkpoint_memory``, oldest ended first.

A checkpoint is a fork: it shares its pages with its worker and the other checkpoints until one of them writes, so
what ending it frees is its *private* memory (``Private_Clean + Private_Dirty`` of ``/proc/PID/smaps_rollup``).
Reading that walks the process's page tables (milliseconds for one holding a model, times every checkpoint), so a
host keeps the bound in a thread of its own (:class:`MemoryKeeper`), off the figures' path, and reads private
memory only when the checkpoints' resident total (one counter each) exceeds the bound.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..option_text import memory_size

__all__ = ["BOUND_INTERVAL", "MemoryKeeper", "memory_bound", "private_memory", "resident_memory"]

#: Seconds between two passes of the bound while snippets run (a page's snippets ask after each one).
BOUND_INTERVAL = 1.0


def memory_bound(setting: int | str) -> int:
    """The ``checkpoint_memory`` setting in bytes (a percentage of the machine's memory, when one is given)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 0
    return memory_size(setting, total=total)


def private_memory(pid: int) -> int | None:
    """The memory process ``pid`` holds alone (``Private_Clean + Private_Dirty``: a fork shares the rest with its
    parent and siblings until one of them writes), in bytes; ``None`` when it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    total = 0
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("Private_Clean", "Private_Dirty"):
            total += int(value.split()[0]) * 1024
    return total


def resident_memory(pid: int) -> int | None:
    """The memory process ``pid`` has resident, shared or not (a cheap upper bound of its private memory), in
    bytes; ``None`` when it cannot be read."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class MemoryKeeper:
    """Keeps the bound in a thread: :meth:`ask` after each new checkpoint; ``keep()`` ends the oldest beyond the
    bound and returns what it said of each; :meth:`said` gives those lines to the host's own thread."""

    def __init__(self, keep: Callable[[], list[str]]) -> None:
        self.keep = keep
        self._start()

    def _start(self) -> None:
        """No pass under way (in a new keeper, or in a process forked from its host: ``-j``, where the thread
        did not follow)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._again = False
        self._thread: threading.Thread | None = None
        self._finishing = threading.Event()
        self._said: list[str] = []

    def ask(self) -> None:
        """Keep the bound soon (now, or once more after the pass under way)."""
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            self._again = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="modelvis-checkpoint-memory", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
            started = time.monotonic()
            self._said.extend(self.keep())
            # At most one pass a BOUND_INTERVAL while snippets run; at the build's end at once.
            self._finishing.wait(BOUND_INTERVAL - (time.monotonic() - started))

    def said(self) -> list[str]:
        """The lines said since the last call (read in the host's thread: hosts log from theirs)."""
        lines = []
        while self._said:
            lines.append(self._said.pop(0))
        return lines

    def finish(self) -> list[str]:
        """At the end of a build: the last pass done (a bounded wait); the lines said since the last call."""
        if self._pid != os.getpid():
            self._start()
        self._finishing.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10.0)
        self._finishing.clear()
        return self.said()
