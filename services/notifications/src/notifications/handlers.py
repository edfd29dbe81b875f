"""Events in: each event type notifications consumes, and what it does with it.

Every handler runs inside the transaction that records the event in the inbox, so the
deliveries it stores are stored once however often the broker delivers the message.
"""

from __future__ import annotations

from pydantic import BaseModel

from asf_contracts import Envelope
from asf_kit.consumer import EventConsumer
from asf_kit.db import Conn
from notifications import service
from notifications.domain import ROUTED_EVENTS
from notifications.settings import NotificationsSettings


def install(consumer: EventConsumer, settings: NotificationsSettings) -> None:
    """Bind every routed event type (registry company, contract and learning-example
    events; casework placement, follow-up and employment events) to the router.

    Company events also update the company read model first (see `service.apply_company`).
    """

    async def route(conn: Conn, event: Envelope, payload: BaseModel) -> None:
        await service.route_event(conn, event, payload, settings.frontend_base_url)

    for event_type, routed in ROUTED_EVENTS.items():
        consumer.on(event_type, 1, routed.payload)(route)
