"""Changes after verification (SPEC 3.1): the company goes back to review, the event says
which fields changed, and the officers' queue shows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from asf_testing import event_tap

Headers = dict[str, dict[str, str]]


async def patch(client: httpx.AsyncClient, company: dict[str, Any], h: dict[str, str],
                **fields: Any) -> httpx.Response:
    return await client.patch(f"/companies/{company['id']}",
                              json={"version": company["version"], **fields}, headers=h)


async def queue(client: httpx.AsyncClient, h: Headers) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"needs_review": "true", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/companies", params=params, headers=h["officer"])).json()
        ids |= {c["id"] for c in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_a_verified_company_that_changes_its_workforce_is_reviewed_again(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    broker_url: str,
) -> None:
    c = await new_company(status="active")
    assert c["verification"]["level"] == "verified"
    async with event_tap(broker_url, "registry.company.updated.v1") as tap:
        r = await patch(client, c, headers["rep"], description="Ny beskrivning",
                        workforce={"as_of": "2026-06-01", "employees_total": 12,
                                   "engaged_total": 30, "target_group_engaged": 15})
        assert r.status_code == 200, r.text
        bodies = await tap.wait_for(lambda b: any(e["aggregate_id"] == c["id"] for e in b))
    changed = r.json()
    assert changed["status"] == "active"
    assert changed["verification"]["level"] == "self_declared"
    assert changed["verification"]["valid_until"] is None
    assert changed["needs_review"] is True
    [event] = [e for e in bodies if e["aggregate_id"] == c["id"]]
    assert event["payload"]["changed_fields"] == ["description", "workforce"]
    assert event["payload"]["needs_review"] is True
    assert event["payload"]["verification_level"] == "self_declared"
    assert event["aggregate_version"] == changed["version"]
    assert c["id"] in await queue(client, headers)

    # The officer verifies it again: out of the queue, verified for two more years.
    r = await client.post(f"/companies/{c['id']}/verification", json={"decision": "verified"},
                          headers=headers["officer"])
    assert r.status_code == 200, r.text
    assert r.json()["needs_review"] is False
    assert r.json()["verification"]["level"] == "verified"
    assert c["id"] not in await queue(client, headers)


async def test_a_change_that_no_longer_qualifies_goes_back_to_pending(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
) -> None:
    c = await new_company(status="active")
    r = await patch(client, c, headers["rep"], criteria={
        "runs_business": True, "integration_purpose": True, "participation": None,
        "reinvests_profits": True, "independent_of_public_sector": True})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    assert r.json()["qualifies_as_asf"] is False
    assert c["id"] in await queue(client, headers)
    # Out of the public register at once.
    assert (await client.get(f"/public/companies/{c['id']}")).status_code == 404
    r = await client.post(f"/companies/{c['id']}/verification", json={"decision": "verified"},
                          headers=headers["officer"])
    assert r.status_code == 409
    assert r.json()["unmet_criteria"] == ["participation"]


async def test_contacts_and_names_change_without_review(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    broker_url: str,
) -> None:
    c = await new_company(status="active")
    async with event_tap(broker_url, "registry.company.updated.v1") as tap:
        r = await patch(client, c, headers["rep"], name=c["name"] + " Ek. för.",
                        contacts=[{"name": "Bo", "email": "bo@example.se", "public": True}])
        assert r.status_code == 200
        bodies = await tap.wait_for(lambda b: any(e["aggregate_id"] == c["id"] for e in b))
    assert r.json()["verification"] == c["verification"]
    assert r.json()["needs_review"] is False
    [event] = [e for e in bodies if e["aggregate_id"] == c["id"]]
    assert event["payload"]["changed_fields"] == ["name", "contacts"]
    assert c["id"] not in await queue(client, headers)


async def test_a_patch_that_changes_nothing_publishes_nothing(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    registry_app: Any,
) -> None:
    c = await new_company(status="active")
    pool = registry_app.state.runtime.pool
    before = await pool.fetchval("SELECT count(*) FROM outbox")
    r = await patch(client, c, headers["rep"], training_places=c["training_places"])
    assert r.status_code == 200
    assert r.json()["version"] == c["version"]
    assert r.json()["verification"]["level"] == "verified"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before


async def test_the_queue_is_the_officers(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
) -> None:
    """A case worker sees the active company, not its decision note."""
    c = await new_company(status="active")
    await patch(client, c, headers["rep"], training_places=c["training_places"] + 1)
    r = await client.get("/companies", params={"needs_review": "true", "limit": 500},
                         headers=headers["case_worker"])
    mine = [x for x in r.json()["items"] if x["id"] == c["id"]]
    assert mine and mine[0]["registered_by"] is None
