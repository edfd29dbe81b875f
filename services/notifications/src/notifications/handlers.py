"""Events in: each event type notifications consumes, bound to the service.

Every handler runs inside the transaction that records the event in the inbox, so the
deliveries it stores are stored once however often the broker delivers the message.
"""

from __future__ import annotations

from pydantic import BaseModel

from asf_contracts import Envelope
from asf_kit.consumer import EventConsumer
from asf_kit.db import Conn
from notifications.routing import ROUTED_EVENTS
from notifications.service import Notifications


def register(consumer: EventConsumer, notifications: Notifications) -> None:
    """Bind every routed event type (the registry's company, contract and learning-example
    events; casework's placement, follow-up, employment, reassignment, plan and statement
    events) to the router. Company events also update the company read model first."""

    async def route(conn: Conn, event: Envelope, payload: BaseModel) -> None:
        await notifications.route_event(conn, event, payload)

    for event_type, routed in ROUTED_EVENTS.items():
        consumer.on(event_type, 1, routed.payload)(route)
