"""Case changes for connected frontends (`GET /stream`), fed by PostgreSQL LISTEN/NOTIFY.

Each change is NOTIFYed in the transaction that makes it, so PostgreSQL delivers it
only after commit, and to every replica: a frontend connected to any replica sees
changes made on all of them. Messages carry ids, stages and versions only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from asf_kit.db import Conn
from asf_kit.logging import get_logger
from casework.store import CHANGES_CHANNEL

log = get_logger(__name__)


class Broadcaster:
    """One LISTEN connection per process, fanned out to each connected frontend's queue."""

    def __init__(self, dsn: str, queue_size: int = 256) -> None:
        self._dsn = dsn
        self._queue_size = queue_size
        self._subscribers: set[tuple[str | None, asyncio.Queue[dict[str, Any]]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        """Start listening; waits a few seconds for the first connection, then goes on."""
        self._task = asyncio.create_task(self._run(), name="casework-stream")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        """Listen, and reconnect with a growing pause when the connection drops."""
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                lost = asyncio.Event()
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANGES_CHANNEL, self._on_notify)
                self._connected.set()
                backoff = 0.5
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("stream listener lost; reconnecting", error=str(e), retry_in=backoff)
            finally:
                self._connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def _on_notify(self, _conn: Conn, _pid: int, _channel: str, payload: object) -> None:
        try:
            change = orjson.loads(str(payload))
        except orjson.JSONDecodeError:
            return
        for municipality, queue in list(self._subscribers):
            if municipality is None or municipality == change.get("municipality_code"):
                with contextlib.suppress(asyncio.QueueFull):  # a slow client loses changes
                    queue.put_nowait(change)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, municipality: str | None
    ) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the changes in one municipality (all when None) while the block runs."""
        entry: tuple[str | None, asyncio.Queue[dict[str, Any]]] = (
            municipality, asyncio.Queue(self._queue_size))
        self._subscribers.add(entry)
        try:
            yield entry[1]
        finally:
            self._subscribers.discard(entry)
