"""Headless Chromium for the tests that look at pages as readers do: Debian's chromium driven by Playwright,
a local server for a built site, and the colors the browser computed."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
#: Skips a test that drives the browser where Debian's chromium is not installed.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps installs it)"
)


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` served over HTTP on localhost (a secure context: the clipboard works); yields its address."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/favicon.ico" and not (folder / "favicon.ico").exists():
                self.send_response(204)  # the browser asks for one whatever the page says: no error for it
                self.end_headers()
                return
            super().do_GET()

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def shoot(page: Any, name: str, folder: Path, selector: str | None = None, *, least: int = 5_000) -> Path:
    """A screenshot of ``selector`` (else the whole page) as ``folder/name.png``, copied to ``$MODELVIS_SCREENSHOTS``
    when set, so that a person can look at it."""
    shot = folder / f"{name}.png"
    if selector:
        page.locator(selector).first.screenshot(path=str(shot))
    else:
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > least
    if os.environ.get("MODELVIS_SCREENSHOTS"):
        target = Path(os.environ["MODELVIS_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)
    return shot


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def rgb(css: str) -> tuple[int, int, int]:
    """A CSS color as the browser computes it (``rgb(...)``, ``#rrggbb``) as three integers."""
    if css.startswith("#"):
        return int(css[1:3], 16), int(css[3:5], 16), int(css[5:7], 16)
    r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])
    return r, g, b
