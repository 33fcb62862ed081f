"""Run a command in a real pseudo-terminal of a given width, as a reader's terminal runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

__all__ = ["run_in_terminal"]


def run_in_terminal(command: list[str], *, cwd: Path, columns: int) -> tuple[int, str, str]:
    """Run ``command`` with its standard output on a terminal ``columns`` wide.

    Returns the exit status, what the terminal showed (escape codes removed, lines ending in ``\\n``) and the
    standard error. ``COLUMNS`` and ``LINES`` are left out of the environment, so the program must ask the terminal.
    """
    reader, writer = pty.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(command, cwd=cwd, stdout=writer, stderr=subprocess.PIPE, env=environment)
    os.close(writer)
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    status = process.wait()
    error = process.stderr.read().decode() if process.stderr else ""
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode()).replace("\r\n", "\n")
    return status, shown, error
