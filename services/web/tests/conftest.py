"""The stack every web test shares (one per session), and a browser when Chromium is here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .stack import Stack, running_stack


@pytest.fixture(scope="session")
async def stack(postgres_url: str, broker_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("web-stack")
    async with running_stack(postgres_url, broker_url, logs) as s:
        yield s
