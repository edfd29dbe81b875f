"""Events casework consumes: the registry's company events, which build the company read model.

Each handler runs inside the transaction in which the consumer records the event
in the inbox, so a redelivered event changes nothing; the read model keeps the
newest `aggregate_version`, so events arriving out of order cannot roll it back.
"""

from __future__ import annotations

from asf_contracts import Envelope
from asf_contracts import registry as reg
from asf_kit.consumer import EventConsumer
from asf_kit.db import Conn
from casework.service import Casework

COMPANY_EVENTS = (
    reg.COMPANY_REGISTERED, reg.COMPANY_UPDATED, reg.COMPANY_VERIFIED, reg.COMPANY_REJECTED,
    reg.COMPANY_DEREGISTERED,
)


def register(consumer: EventConsumer, casework: Casework) -> None:
    """Attach every handler to the consumer."""

    async def on_company(
        conn: Conn, event: Envelope, company: reg.CompanyPayload
    ) -> None:
        await casework.apply_company(conn, event.aggregate_version, company)

    for event_type in COMPANY_EVENTS:
        consumer.on(event_type, 1, reg.CompanyPayload)(on_company)
