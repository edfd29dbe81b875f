"""The stack every web test shares (one per session), and a browser when Chromium is here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import launched, skip_without_chromium
from .stack import Stack, running_stack


@pytest.fixture(scope="session")
async def stack(postgres_url: str, broker_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("web-stack")
    async with running_stack(postgres_url, broker_url, logs) as s:
        yield s


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
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
