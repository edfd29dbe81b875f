"""Waiting for what a test cannot know the moment of: an event consumed, an email sent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], what: str, within: float = 30.0,
                     every: float = 0.1) -> Any:
    """The first truthy result of `check`, asked every `every` seconds; an AssertionError
    naming `what` when none came within `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
