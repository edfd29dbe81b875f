"""Notifications' smoke checks, versioned with its code: ready, a contact written and read,
and an event consumed into a stored delivery. tests/operations/test_rolling_migrations.py
runs the previous release's copy of this file against the previous release's process,
before and after the newest migrations are applied.

Plain HTTP (httpx) and the standard library only: it runs against other releases' code.
Keep the keys of the dict it returns: the next release's copy reads them (`earlier`).
`publish(routing_key, body, message_id)` puts an event on the exchange.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx


def _company_registered(company_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "event_type": "registry.company.registered",
        "event_version": 1, "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "registry/smoke", "correlation_id": f"smoke-{uuid.uuid4().hex[:8]}",
        "causation_id": None, "aggregate_id": company_id, "aggregate_version": 1,
        "payload": {
            "id": company_id, "org_number": "556036-0793", "name": "Röktest AB",
            "legal_form": "aktiebolag", "municipality_code": "0180", "county_code": "01",
            "industries": ["cleaning"], "training_places": 2, "origin": "existing",
            "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": True,
            "verification_level": "self_declared",
            "contacts": [{"name": "Rök Test", "role": "manager",
                          "email": f"smoke-{company_id[:8]}@example.se"}],
        },
    }


async def smoke(client: httpx.AsyncClient, base_url: str, auth: Callable[..., dict[str, str]],
                publish: Callable[[str, bytes, str], Awaitable[None]],
                earlier: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
    """Returns what it wrote, for a later run (`earlier`) to read back."""
    assert (await client.get(f"{base_url}/readyz")).status_code == 200
    analyst = auth("analyst", sub="smoke-analyst")
    r = await client.post(f"{base_url}/contacts", headers=analyst, json={
        "name": "Rök Informationsansvarig", "email": "smoke-info@example.se",
        "role": "information_officer"})
    assert r.status_code == 201, f"contact: {r.status_code} {r.text[:500]}"
    contact_id = r.json()["id"]
    r = await client.get(f"{base_url}/contacts/{contact_id}", headers=analyst)
    assert r.status_code == 200, f"read contact: {r.status_code} {r.text[:500]}"

    event = _company_registered(str(uuid.uuid4()))
    await publish("registry.company.registered.v1", json.dumps(event).encode(),
                  event["event_id"])
    deliveries: list[dict[str, Any]] = []
    for _attempt in range(150):
        r = await client.get(f"{base_url}/deliveries", params={"event_id": event["event_id"]},
                             headers=analyst)
        assert r.status_code == 200, f"deliveries: {r.status_code} {r.text[:500]}"
        deliveries = r.json()["items"]
        if deliveries:
            break
        await asyncio.sleep(0.2)
    assert deliveries, "the event was not consumed into a delivery within 30 s"
    if earlier:
        r = await client.get(f"{base_url}/contacts/{earlier['contact_id']}", headers=analyst)
        assert r.status_code == 200, f"read earlier: {r.status_code} {r.text[:500]}"
        r = await client.get(f"{base_url}/deliveries", params={"event_id": earlier["event_id"]},
                             headers=analyst)
        assert r.status_code == 200 and r.json()["items"], "earlier deliveries are gone"
    return {"contact_id": contact_id, "event_id": event["event_id"]}
