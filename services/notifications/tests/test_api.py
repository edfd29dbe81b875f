"""The HTTP API: contacts, subscriptions, templates, deliveries; bad input and roles."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_testing import auth


def fields(r: httpx.Response) -> set[str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in r.json()["errors"]}


async def test_contact_lifecycle(client: httpx.AsyncClient, analyst: dict[str, str]) -> None:
    body = {"name": "Ina Informationsansvarig", "email": "ina@example.se",
            "role": "information_officer", "locale": "en"}
    r = await client.post("/contacts", json=body, headers=analyst)
    assert r.status_code == 201, r.text
    contact = r.json()
    assert r.headers["Location"] == f"/contacts/{contact['id']}"
    assert contact["version"] == 1 and contact["source"] == "manual" and contact["active"]

    r = await client.get(f"/contacts/{contact['id']}", headers=analyst)
    assert r.status_code == 200 and r.json() == contact

    r = await client.patch(f"/contacts/{contact['id']}",
                           json={"locale": "sv", "municipality_code": "0180", "version": 1},
                           headers=analyst)
    assert r.status_code == 200, r.text
    assert r.json()["locale"] == "sv" and r.json()["version"] == 2
    r = await client.patch(f"/contacts/{contact['id']}", json={"name": "X", "version": 1},
                           headers=analyst)
    assert r.status_code == 412 and r.json()["current_version"] == 2
    r = await client.patch(f"/contacts/{contact['id']}", json={"name": "X"}, headers=analyst)
    assert r.status_code == 428
    r = await client.patch(f"/contacts/{contact['id']}", json={"name": "Y"},
                           headers={**analyst, "If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["name"] == "Y"
    r = await client.patch(f"/contacts/{contact['id']}", json={"email": None, "version": 3},
                           headers=analyst)
    assert fields(r) == {"email"}

    r = await client.delete(f"/contacts/{contact['id']}", headers=analyst)
    assert r.status_code == 204
    r = await client.get(f"/contacts/{contact['id']}", headers=analyst)
    assert r.status_code == 404
    r = await client.delete(f"/contacts/{contact['id']}", headers=analyst)
    assert r.status_code == 404


async def test_bad_contacts_name_each_field(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    r = await client.post("/contacts", json={
        "name": "", "email": "not-an-email", "role": "Bad Role", "municipality_code": "18",
        "company_id": "nope", "locale": "fi",
    }, headers=analyst)
    assert fields(r) == {"name", "email", "role", "municipality_code", "company_id", "locale"}
    r = await client.post("/contacts", json={"name": "A", "email": "a@example.se",
                                             "role": "x_y", "shoe_size": 42}, headers=analyst)
    assert fields(r) == {"shoe_size"}
    r = await client.post("/contacts", content=b"{not json", headers={
        **analyst, "content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post("/contacts", json={"name": "A\u0000B", "email": "a@example.se",
                                             "role": "x_y", "subject": "s\u0000"},
                          headers=analyst)
    assert fields(r) == {"name", "subject"}
    r = await client.get("/subscriptions", params={"event_type": "a\u0000"}, headers=analyst)
    assert fields(r) == {"event_type"}
    r = await client.post("/templates/Bad%00Name/preview", headers=analyst)
    assert fields(r) == {"name"}
    r = await client.get("/contacts/not-a-uuid", headers=analyst)
    assert fields(r) == {"contact_id"}
    r = await client.get("/contacts", params={"cursor": "garbage!"}, headers=analyst)
    assert fields(r) == {"cursor"}
    r = await client.get("/contacts", params={"limit": 0}, headers=analyst)
    assert fields(r) == {"limit"}


async def test_contacts_page_with_a_cursor(
    client: httpx.AsyncClient, analyst: dict[str, str], new_contact: Any
) -> None:
    role = f"pager_{uuid.uuid4().hex[:8]}"
    made = [await new_contact(role) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"role": role, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/contacts", params=params, headers=analyst)
        assert r.status_code == 200
        seen += [c["id"] for c in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in made]


async def test_roles(client: httpx.AsyncClient) -> None:
    r = await client.get("/contacts")
    assert r.status_code == 401
    r = await client.get("/contacts", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401
    for role in ("case_worker", "company_rep", "auditor", "registry_officer"):
        r = await client.get("/contacts", headers=auth(role))
        assert r.status_code == 403, role
        r = await client.post("/subscriptions", json={}, headers=auth(role))
        assert r.status_code == 403, role
    r = await client.get("/deliveries", headers=auth("registry_officer"))
    assert r.status_code == 200
    r = await client.get("/deliveries", headers=auth("case_worker"))
    assert r.status_code == 403
    r = await client.post(f"/deliveries/{uuid.uuid4()}/retry", headers=auth("registry_officer"))
    assert r.status_code == 403


async def test_default_routing_is_seeded_once(
    client: httpx.AsyncClient, analyst: dict[str, str], notifications_app: FastAPI
) -> None:
    async def routing() -> list[tuple[str, str | None, str, str]]:
        r = await client.get("/subscriptions", params={"limit": 500}, headers=analyst)
        return sorted((s["event_type"], s["role"], s["template"], s["mode"])
                      for s in r.json()["items"] if s["role"])

    before = await routing()
    assert (reg.LEARNING_EXAMPLE_SUBMITTED, "information_officer",
            "learning_example_submitted", "immediate") in before
    assert (cw.PARTICIPANT_EMPLOYED, "information_officer", "participant_employed",
            "daily_digest") in before
    assert (cw.PLACEMENTS_FLAGGED, "case_worker", "placements_flagged", "immediate") in before
    assert (reg.COMPANY_REGISTERED, "company_contact", "company_registered_receipt",
            "immediate") in before
    async with notifications_app.state.runtime.pool.acquire() as conn:
        await notifications_app.state.notifications.seed(conn)
    assert await routing() == before


async def test_subscription_lifecycle(
    client: httpx.AsyncClient, analyst: dict[str, str], new_contact: Any
) -> None:
    contact = await new_contact("information_officer")
    r = await client.post("/subscriptions", json={
        "event_type": cw.PARTICIPANT_EMPLOYED, "contact_id": contact["id"],
        "municipality_code": "0180",
    }, headers=analyst)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["template"] == "participant_employed" and sub["mode"] == "immediate"

    r = await client.get("/subscriptions", params={"contact_id": contact["id"]}, headers=analyst)
    assert [s["id"] for s in r.json()["items"]] == [sub["id"]]
    r = await client.patch(f"/subscriptions/{sub['id']}",
                           json={"mode": "daily_digest", "municipality_code": None, "version": 1},
                           headers=analyst)
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "daily_digest" and r.json()["municipality_code"] is None
    r = await client.patch(f"/subscriptions/{sub['id']}", json={"mode": "immediate",
                                                               "version": 1}, headers=analyst)
    assert r.status_code == 412
    r = await client.patch(f"/subscriptions/{sub['id']}",
                           json={"event_type": reg.LEARNING_EXAMPLE_SUBMITTED, "version": 2},
                           headers=analyst)
    assert r.status_code == 200 and r.json()["template"] == "learning_example_submitted"
    r = await client.get(f"/subscriptions/{sub['id']}", headers=analyst)
    assert r.json()["version"] == 3
    r = await client.delete(f"/subscriptions/{sub['id']}", headers=analyst)
    assert r.status_code == 204
    r = await client.get(f"/subscriptions/{sub['id']}", headers=analyst)
    assert r.status_code == 404


async def test_bad_subscriptions_name_the_field(
    client: httpx.AsyncClient, analyst: dict[str, str], new_contact: Any
) -> None:
    contact = await new_contact("information_officer")
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"event_type": "registry.company.exploded", "role": "x_y"}, {"event_type"}),
        ({"event_type": cw.FOLLOW_UP_DUE}, {"role"}),
        ({"event_type": cw.FOLLOW_UP_DUE, "role": "case_worker", "contact_id": contact["id"]},
         {"role"}),
        ({"event_type": cw.FOLLOW_UP_DUE, "contact_id": str(uuid.uuid4())}, {"contact_id"}),
        ({"event_type": cw.FOLLOW_UP_DUE, "role": "case_worker", "template": "daily_digest"},
         {"template"}),
        ({"event_type": reg.COMPANY_UPDATED, "role": "registry_officer"}, {"template"}),
        ({"event_type": cw.FOLLOW_UP_DUE, "role": "case_worker", "mode": "weekly"}, {"mode"}),
    ]
    for body, expected in cases:
        r = await client.post("/subscriptions", json=body, headers=analyst)
        assert fields(r) == expected, body


async def test_templates_and_previews(client: httpx.AsyncClient, analyst: dict[str, str]) -> None:
    r = await client.get("/templates", headers=analyst)
    assert r.status_code == 200
    items = r.json()["items"]
    assert {(t["name"], t["locale"]) for t in items} >= {
        ("learning_example_submitted", "sv"), ("learning_example_submitted", "en"),
        ("daily_digest", "sv"), ("placements_flagged", "en")}
    assert all(t["version"] >= 1 for t in items)

    r = await client.post("/templates/follow_up_due/preview", headers=analyst)
    assert r.status_code == 200, r.text
    assert "Uppföljning" in r.json()["subject"] and "https://asf.test/participants/" in \
        r.json()["text"]
    r = await client.post("/templates/follow_up_due/preview", json={"locale": "en"},
                          headers=analyst)
    assert r.json()["subject"].startswith("Follow-up") and r.json()["locale"] == "en"
    payload = {"id": str(uuid.uuid4()), "municipality_code": "1480", "company_ids": [],
               "title": "<script>Göteborg</script>", "summary": "S",
               "collaboration_types": ["other"], "contact": {"name": "N", "email": "n@e.se"}}
    r = await client.post("/templates/learning_example_submitted/preview",
                          json={"payload": payload}, headers=analyst)
    assert r.status_code == 200, r.text
    assert "&lt;script&gt;" in r.json()["html"] and "<script>" in r.json()["text"]
    r = await client.post("/templates/daily_digest/preview", headers=analyst)
    assert r.status_code == 200 and "0180: 3" in r.json()["text"]

    r = await client.post("/templates/learning_example_submitted/preview",
                          json={"payload": {**payload, "title": None, "contact": {}}},
                          headers=analyst)
    assert fields(r) == {"payload.title", "payload.contact.name", "payload.contact.email"}
    r = await client.post("/templates/learning_example_submitted/preview",
                          json={"locale": "de"}, headers=analyst)
    assert fields(r) == {"locale"}
    r = await client.post("/templates/nope/preview", headers=analyst)
    assert r.status_code == 404


async def test_deliveries_filters_and_retry_of_unknown(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    r = await client.get("/deliveries", params={"status": "lost"}, headers=analyst)
    assert fields(r) == {"status"}
    r = await client.get("/deliveries", params={"event_id": "x"}, headers=analyst)
    assert fields(r) == {"event_id"}
    r = await client.post(f"/deliveries/{uuid.uuid4()}/retry", headers=analyst)
    assert r.status_code == 404


async def test_mailcatcher_page_only_without_smtp_host(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    r = await client.get("/mailcatcher", headers=analyst)
    assert r.status_code == 404
    assert (await client.get("/mailcatcher")).status_code == 401


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["sweeper"] is True
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/asyncapi")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert "notifications_email_attempts_total" in metrics
    assert 'notifications_deliveries{status="failed"}' in metrics  # deliveries by status
    assert "messages_consumed_total" in metrics
