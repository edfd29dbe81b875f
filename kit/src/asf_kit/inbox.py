"""The inbox: a consumer records each event id in the transaction of its effect.

If the id is already there, the event was handled before and the effect is
skipped, so a redelivered message changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

from asf_contracts import Envelope
from asf_kit.db import Conn
from asf_kit.outbox import collecting, hand_over

Once = Callable[[Envelope], AbstractAsyncContextManager[Conn | None]]
"""`async with once(event) as conn`: the effect's transaction, `conn` None when the event was
handled before. The consumer's one way to the database (a fast test passes an in-memory one,
`asf_testing.MemoryInbox`)."""


async def claim(conn: Conn, event: Envelope) -> bool:
    """True the first time this event is seen; call inside the effect's transaction."""
    inserted = await conn.fetchval(
        """
        INSERT INTO inbox (event_id, event_type) VALUES ($1, $2)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING true
        """,
        event.event_id,
        event.event_type,
    )
    return bool(inserted)


def once_in(pool: Callable[[], asyncpg.Pool]) -> Once:
    """The inbox in the service's database: a transaction on a pooled connection with the
    event claimed in it; the effect and the claim commit together or not at all, and the
    events the effect writes go to the relay right after the commit (`asf_kit.outbox`)."""

    @asynccontextmanager
    async def once(event: Envelope) -> AsyncIterator[Conn | None]:
        the_pool = pool()
        async with the_pool.acquire() as conn:
            with collecting(the_pool) as events:
                async with conn.transaction():
                    yield conn if await claim(conn, event) else None
            hand_over(events)

    return once
