"""Events casework consumes: the registry's company events, which keep the company read model.

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


def register(consumer: EventConsumer, casework: Casework) -> None:
    """Attach every handler to the consumer."""

    async def on_company(
        conn: Conn, event: Envelope, company: reg.CompanyPayload
    ) -> None:
        await casework.apply_company(conn, event.aggregate_version, company)

    # Every company event carries the whole company, including the verification that is
    # expiring or expired: each one keeps the read model current.
    for event_type in reg.COMPANY_EVENTS:
        consumer.on(event_type, 1, reg.CompanyPayload)(on_company)
