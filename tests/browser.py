"""A real headless Chromium for the HTML report's tests, driven by Playwright.

The browser is Debian's `chromium` (`make test` and `.ci/run` install it when missing), or the
executable named by `TRANSFER_RUNNER_CHROMIUM`. Pages open from `file://`; every request the
page makes is recorded, so a test can prove that nothing leaves it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OpenedPage", "chromium_path", "open_page"]

READY = "body[data-ready='1']"


def chromium_path() -> str:
    """The Chromium executable; AssertionError (a failed test, not a skip) when there is none."""
    named = os.environ.get("TRANSFER_RUNNER_CHROMIUM", "")
    found = named or shutil.which("chromium") or shutil.which("chromium-browser") or ""
    assert found, "no chromium: `make test` installs Debian's chromium package (apt-get)"
    return found


@dataclass
class OpenedPage:
    """A loaded page with what it asked for and what it complained about."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def open_page(path: Path, *, width: int = 1400, height: int = 900) -> Iterator[OpenedPage]:
    """`path` opened in headless Chromium, its script done (`body[data-ready]`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            opened = OpenedPage(page)
            page.on("request", lambda request: opened.requests.append(request.url))
            page.on("pageerror", lambda error: opened.errors.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    opened.errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.goto(path.resolve().as_uri())
            page.wait_for_selector(READY, timeout=30_000)
            yield opened
        finally:
            browser.close()
