"""The stack every web test shares (one per session), and a browser when Chromium is here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import launched, skip_without_chromium
from .stack import Stack, stack_in_thread

# A loaded 2-core machine renders slowly: assertions wait for the page, up to 15 s.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def stack(postgres_url: str, broker_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_in_thread(postgres_url, broker_url, tmp_path_factory.mktemp("web-stack")) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an
    event loop running in the main thread while it is open, and every async test after it
    (in this suite or the next) could not run its own."""
    skip_without_chromium()
    with launched() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    p = context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        context.close()
