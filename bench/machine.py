"""Where and with what a benchmark ran: the lines each script prints above its table (standard library only)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["describe"]


def _first(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe(packages: tuple[str, ...]) -> list[str]:
    """Markdown list items: date, machine (CPUs, model, RAM, load), Python and ``packages``, commit, command."""
    memory = _first("/proc/meminfo", "MemTotal")
    ram = f"{int(memory.split()[0]) / 1024**2:.1f} GiB" if memory != "unknown" else memory
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    # What the package's working tree has that the commit has not (read only: no optional index refresh).
    changed = subprocess.run(
        ["git", "-C", str(repo), "--no-optional-locks", "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    if changed:
        commit += f" with uncommitted changes ({len(changed)} paths under src/)"
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(repo) if script.is_relative_to(repo) else script
    return [
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs, {_first('/proc/cpuinfo', 'model name')}, {ram} RAM; "
        f"load average at start {load} (other processes share the machine)",
        f"- python {sys.version.split()[0]} ({sys.executable}); {versions}; sphinx-modelvis at commit {commit}",
        f"- command: `{' '.join([Path(sys.executable).name, str(shown), *sys.argv[1:]])}`",
    ]
