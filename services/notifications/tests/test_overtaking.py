"""A company event that commits while a casework event for that company is being routed:
the casework event is retried, never skipped (real PostgreSQL, two connections)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_contracts.registry import CompanyPayload
from asf_kit.db import Conn
from asf_testing import envelope
from notifications.routing import ROUTED_EVENTS
from notifications.samples import SAMPLE_PAYLOADS
from notifications.service import CompanyNotHeardOf, Notifications


class CommitsBetween:
    """A connection that lets another transaction commit right after a statement of ours
    whose SQL contains `after`: the interleaving READ COMMITTED allows, made certain."""

    def __init__(self, conn: Conn, after: str,
                 meanwhile: Callable[[], Any]) -> None:
        self._conn, self._after, self._meanwhile, self.done = conn, after, meanwhile, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, sql: str, *args: Any) -> Any:
        rows = await self._conn.fetch(sql, *args)
        if self._after in sql and not self.done:
            self.done = True
            await self._meanwhile()
        return rows


async def test_a_company_committed_mid_routing_makes_the_event_wait_not_skip(
    notifications_app: FastAPI, company_payload: Callable[..., dict[str, Any]],
) -> None:
    notifications: Notifications = notifications_app.state.notifications
    company_id = uuid.uuid4()
    registered = envelope(reg.COMPANY_REGISTERED, company_payload(
        company_id, f"mid-{company_id.hex[:8]}@example.se"))
    started = envelope(cw.PLACEMENT_STARTED,
                       {**SAMPLE_PAYLOADS[cw.PLACEMENT_STARTED], "company_id": str(company_id),
                        "placement_id": str(uuid.uuid4())})

    async def registry_event_commits() -> None:
        async with notifications.pool.acquire() as other, other.transaction():
            await notifications.route_event(
                other, registered, CompanyPayload.model_validate(registered.payload))

    async with notifications.pool.acquire() as conn:
        racing = CommitsBetween(conn, "FROM contacts", registry_event_commits)
        transaction = conn.transaction()
        await transaction.start()
        try:
            with pytest.raises(CompanyNotHeardOf):
                await notifications.route_event(
                    racing, started,  # type: ignore[arg-type]
                    ROUTED_EVENTS[cw.PLACEMENT_STARTED].payload.model_validate(started.payload))
        finally:
            await transaction.rollback()
    # Raised, the consumer's transaction rolls back and the event is retried, now with the
    # contacts; before, it stored a `skipped` delivery ("no contact with an email").
    assert racing.done, "the company event was never committed in between"
