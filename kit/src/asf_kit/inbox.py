"""The inbox: a consumer records each event id in the transaction of its effect.

If the id is already there, the event was handled before and the effect is
skipped, so a redelivered message changes nothing.
"""

from __future__ import annotations

from asf_contracts import Envelope
from asf_kit.db import Conn


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
