"""A real headless Chromium for the browser tests, and the sites they load.

Debian's Chromium (scripts/chromium.sh installs it when missing), driven by
Playwright for Python through `executable_path`: Playwright never downloads a
browser of its own here. Pages come from a static HTTP server on loopback, so
they have a real origin of their own, distinct from the ingest's.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from .stack import ROOT, free_port


@functools.cache
def chromium_path() -> str:
    """scripts/chromium.sh's answer, asked once a session though each module launches a browser."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "chromium.sh")],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/chromium.sh failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


# Per module, not per session: while Playwright's sync API runs, its event loop
# counts as running in the main thread, and later tests' asyncio.run would refuse.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One Chromium for a test module; each test opens its own context (own storage)."""
    chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    yield chromium
    chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass

    def end_headers(self) -> None:
        # Each load of a test page must run its current scripts, not a cached copy.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@dataclass(frozen=True)
class Site:
    """A directory served over HTTP at `origin` (http://127.0.0.1:port)."""

    root: Path
    origin: str

    def url(self, path: str = "/") -> str:
        return self.origin + path


@contextmanager
def serve_site(root: Path, host: str = "127.0.0.1") -> Iterator[Site]:
    """Serve `root` on a free port of `host` until the block ends."""
    port = free_port()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name=f"site:{port}", daemon=True)
    thread.start()
    try:
        yield Site(root, f"http://{host}:{port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def console_of(page: Page) -> Iterator[list[str]]:
    """What the page writes to its console while the block runs, as `type: text` lines."""
    lines: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        lines.append(f"{message.type}: {message.text}")

    page.on("console", heard)
    try:
        yield lines
    finally:
        page.remove_listener("console", heard)
