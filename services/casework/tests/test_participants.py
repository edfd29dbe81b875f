"""Participants over HTTP: input, duplicates, scope, roles, listing, the access log, erasure."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from asf_testing import auth, event_tap


async def test_create_returns_the_whole_participant(
    client: Any, case_worker: Any, identity_number: Any
) -> None:
    headers = case_worker("0180", sub="cw-creator")
    number = identity_number(dash=False)
    r = await client.post("/participants", headers=headers, json={
        "given_name": "Per", "family_name": "Persson", "personal_identity_number": number,
        "referral_source": "employment_service"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/participants/{body['id']}"
    assert body["personal_identity_number"] == f"{number[:8]}-{number[8:]}"
    assert body["assigned_to"] == "cw-creator"
    assert body["stage"] == "referred" and body["version"] == 1
    assert body["municipality_code"] == "0180"
    assert body["phone"] is None and body["email"] is None


async def test_personal_data_is_encrypted_at_rest(
    env: Any, refer: Any, case_worker: Any, identity_number: Any
) -> None:
    number = identity_number()
    p = await refer(case_worker(), given_name="Klartextsson", personal_identity_number=number)
    async with env.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM participants WHERE id = $1", uuid.UUID(p["id"]))
        key = await conn.fetchrow("SELECT * FROM participant_keys WHERE participant_id = $1",
                                  uuid.UUID(p["id"]))
    dump = str(dict(row)).encode() + bytes(row["personal"])
    assert b"Klartextsson" not in dump and number.encode() not in dump
    assert row["key_id"] == "k1" and key["key_id"] == "k1" and len(row["identity_hash"]) == 32


@pytest.mark.parametrize(("field", "value"), [
    ("personal_identity_number", "19880320-0018"),
    ("personal_identity_number", "not a number"),
    ("personal_identity_number", "19881332-0016"),
    ("given_name", ""),
    ("family_name", "x" * 101),
    ("email", "not-an-email"),
    ("phone", "call me"),
    ("referral_source", "neighbour"),
    ("assigned_to", ""),
])
async def test_bad_input_names_the_field(
    client: Any, case_worker: Any, identity_number: Any, field: str, value: Any
) -> None:
    body = {"given_name": "A", "family_name": "B",
            "personal_identity_number": identity_number(), "referral_source": "self",
            field: value}
    r = await client.post("/participants", headers=case_worker(), json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_every_bad_field_is_named_at_once(client: Any, case_worker: Any) -> None:
    r = await client.post("/participants", headers=case_worker(), json={
        "given_name": "A", "personal_identity_number": "123", "referral_source": "x",
        "unknown": 1})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"family_name", "personal_identity_number", "referral_source", "unknown"} <= fields


@pytest.mark.parametrize("body", [b"not json", b"[]", b"null", b'{"given_name": 5}'])
async def test_garbage_bodies_are_422_not_500(client: Any, case_worker: Any,
                                              body: bytes) -> None:
    r = await client.post("/participants", headers={
        **case_worker(), "content-type": "application/json"}, content=body)
    assert r.status_code == 422


async def test_duplicate_identity_number_is_409_with_the_existing_id(
    client: Any, refer: Any, case_worker: Any, identity_number: Any, move: Any
) -> None:
    headers = case_worker("0180")
    number = identity_number()
    first = await refer(headers, personal_identity_number=number)
    for written in (number, number.replace("-", ""), number[2:], number[2:].replace("-", "")):
        r = await client.post("/participants", headers=case_worker("0180"), json={
            "given_name": "Other", "family_name": "Name", "personal_identity_number": written,
            "referral_source": "self"})
        assert r.status_code == 409, r.text
        assert r.json()["existing_id"] == first["id"]
    # another municipality has its own cases
    await refer(case_worker("1480"), personal_identity_number=number)
    # once the case is closed, a new referral opens a new case
    assert (await move(first["id"], headers, "closed", exit_reason="moved")).status_code == 200
    again = await refer(headers, personal_identity_number=number)
    assert again["id"] != first["id"]


async def test_another_municipality_sees_a_404(
    client: Any, refer: Any, case_worker: Any, registry: Any
) -> None:
    p = await refer(case_worker("0180"))
    other = case_worker("1480")
    pid = p["id"]
    company = await registry.active_company()
    for method, url, body in [
        ("GET", f"/participants/{pid}", None),
        ("GET", f"/participants/{pid}/timeline", None),
        ("DELETE", f"/participants/{pid}", None),
        ("POST", f"/participants/{pid}/transitions", {"to": "assessment"}),
        ("POST", f"/participants/{pid}/placements", {
            "company_id": str(company), "kind": "internship", "start": "2026-01-01"}),
        ("POST", f"/participants/{pid}/follow-ups", {"still_employed": True}),
        ("POST", f"/participants/{pid}/notes", {"text": "hej"}),
    ]:
        r = await client.request(method, url, headers=other, json=body)
        assert r.status_code == 404, (method, url, r.text)
    r = await client.get("/participants", headers=other, params={"limit": 500})
    assert pid not in [i["id"] for i in r.json()["items"]]
    r = await client.get(f"/participants/{uuid.uuid4()}", headers=case_worker("0180"))
    assert r.status_code == 404


@pytest.mark.parametrize("role", ["registry_officer", "company_rep", "analyst", "auditor"])
async def test_only_case_workers_do_participant_work(
    client: Any, refer: Any, case_worker: Any, role: str, identity_number: Any
) -> None:
    p = await refer(case_worker("0180"))
    headers = auth(role, municipality_code="0180")
    assert (await client.get(f"/participants/{p['id']}", headers=headers)).status_code == 403
    assert (await client.get("/participants", headers=headers)).status_code == 403
    r = await client.post("/participants", headers=headers, json={
        "given_name": "A", "family_name": "B", "personal_identity_number": identity_number(),
        "referral_source": "self"})
    assert r.status_code == 403
    assert (await client.get("/stream", headers=headers)).status_code == 403


async def test_no_token_or_a_bad_one_is_401(client: Any) -> None:
    assert (await client.get("/participants")).status_code == 401
    r = await client.get("/participants", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


async def test_a_case_worker_without_municipality_is_403(client: Any) -> None:
    r = await client.get("/participants", headers=auth("case_worker"))
    assert r.status_code == 403


async def test_list_filters_and_pages_without_personal_data(
    client: Any, refer: Any, case_worker: Any, move: Any
) -> None:
    sub = f"cw-{uuid.uuid4().hex[:8]}"
    headers = case_worker("0180", sub=sub)
    made = [await refer(headers, given_name=f"Lista{i}") for i in range(5)]
    await move(made[0]["id"], headers, "assessment")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"assigned_to": sub, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/participants", headers=headers, params=params)
        assert r.status_code == 200
        page = r.json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["id"] for i in seen] == [p["id"] for p in made]
    assert "Lista" not in r.text and "given_name" not in seen[0]
    r = await client.get("/participants", headers=headers,
                         params={"assigned_to": sub, "stage": "assessment"})
    assert [i["id"] for i in r.json()["items"]] == [made[0]["id"]]
    for bad in ({"cursor": "garbage"}, {"limit": 0}, {"limit": 501}, {"stage": "flying"},
                {"company_id": "x"}, {"cursor": base64.urlsafe_b64encode(b'["x","y"]').decode()}):
        r = await client.get("/participants", headers=headers, params=bad)
        assert r.status_code == 422, bad


async def test_list_by_company(client: Any, refer: Any, case_worker: Any, registry: Any,
                               move: Any, place: Any) -> None:
    headers = case_worker("0180")
    company = await registry.active_company(places=5)
    p = await refer(headers)
    await move(p["id"], headers, "assessment")
    assert (await place(p["id"], headers, company)).status_code == 201
    r = await client.get("/participants", headers=headers, params={"company_id": str(company)})
    assert [i["id"] for i in r.json()["items"]] == [p["id"]]


async def test_every_read_and_change_is_in_the_access_log(
    client: Any, refer: Any, case_worker: Any, move: Any
) -> None:
    headers = case_worker("0180", sub="cw-logged")
    p = await refer(headers)
    await client.get(f"/participants/{p['id']}", headers=headers)
    await move(p["id"], headers, "assessment")
    await client.post(f"/participants/{p['id']}/notes", headers=headers, json={"text": "x"})
    await client.get(f"/participants/{p['id']}/timeline", headers=headers)
    auditor = auth("auditor", sub="auditor-1")
    r = await client.get(f"/participants/{p['id']}/access-log", headers=auditor,
                         params={"limit": 2})
    assert r.status_code == 200
    first = r.json()
    r = await client.get(f"/participants/{p['id']}/access-log", headers=auditor,
                         params={"cursor": first["next_cursor"]})
    entries = first["items"] + r.json()["items"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("cw-logged", "create"), ("cw-logged", "read"), ("cw-logged", "transition"),
        ("cw-logged", "note"), ("cw-logged", "timeline"),
        ("auditor-1", "access_log")]  # the auditor's first read, logged after its page
    assert all(e["participant_id"] == p["id"] and e["at"] for e in entries)
    for role in ("case_worker", "analyst", "registry_officer"):
        r = await client.get(f"/participants/{p['id']}/access-log",
                             headers=auth(role, municipality_code="0180"))
        assert r.status_code == 403
    r = await client.get(f"/participants/{uuid.uuid4()}/access-log", headers=auditor)
    assert r.status_code == 404


async def test_erasure_shreds_personal_data_and_keeps_figures(
    env: Any, client: Any, refer: Any, case_worker: Any, move: Any, broker_url: str,
    identity_number: Any,
) -> None:
    headers = case_worker("0180")
    number = identity_number()
    p = await refer(headers, given_name="Raderas", personal_identity_number=number)
    pid = p["id"]
    await client.post(f"/participants/{pid}/notes", headers=headers, json={"text": "anteckning"})
    r = await client.delete(f"/participants/{pid}", headers=headers)
    assert r.status_code == 409 and r.json()["allowed"] == ["closed"]
    await move(pid, headers, "assessment")
    await move(pid, headers, "closed", exit_reason="moved")
    async with event_tap(broker_url, "casework.participant.erased.v1") as tap:
        r = await client.delete(f"/participants/{pid}", headers=headers)
        assert r.status_code == 204
        bodies = await tap.wait_for(lambda bs: any(b["aggregate_id"] == pid for b in bs))
    erased = next(b for b in bodies if b["aggregate_id"] == pid)
    assert erased["payload"] == {"participant_id": pid, "municipality_code": "0180"}
    assert (await client.delete(f"/participants/{pid}", headers=headers)).status_code == 204
    r = await client.get(f"/participants/{pid}", headers=headers)
    body = r.json()
    assert body["erased_at"] is not None and body["stage"] == "closed"
    assert body["given_name"] is None and body["personal_identity_number"] is None
    r = await client.get(f"/participants/{pid}/timeline", headers=headers)
    items = r.json()["items"]
    assert [i["details"]["to_stage"] for i in items if i["kind"] == "stage_changed"] == [
        "referred", "assessment", "closed"]
    assert next(i for i in items if i["kind"] == "note")["details"]["text"] is None
    async with env.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT personal, identity_hash, key_id FROM participants "
                                  "WHERE id = $1", uuid.UUID(pid))
        keys = await conn.fetchval("SELECT count(*) FROM participant_keys "
                                   "WHERE participant_id = $1", uuid.UUID(pid))
    assert tuple(row) == (None, None, None) and keys == 0
    # the identity number is free again, and no event ever carried it
    again = await refer(headers, personal_identity_number=number)
    assert again["id"] != pid
    assert (await client.post(f"/participants/{pid}/notes", headers=headers,
                              json={"text": "x"})).status_code == 409


async def test_find_cases_by_identity_number(
    client: Any, refer: Any, case_worker: Any, identity_number: Any, move: Any
) -> None:
    headers = case_worker("0180", sub="cw-search")
    number = identity_number()
    first = await refer(headers, personal_identity_number=number)
    await move(first["id"], headers, "closed", exit_reason="moved")
    second = await refer(headers, personal_identity_number=number)
    await refer(case_worker("1480"), personal_identity_number=number)
    r = await client.post("/participants/search", headers=headers,
                          json={"personal_identity_number": number[2:].replace("-", "")})
    assert r.status_code == 200
    assert [c["id"] for c in r.json()["items"]] == [first["id"], second["id"]]
    assert "given_name" not in r.text
    r = await client.post("/participants/search", headers=headers,
                          json={"personal_identity_number": "19880320-0018"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "personal_identity_number"
    r = await client.post("/participants/search", headers=auth("analyst"),
                          json={"personal_identity_number": number})
    assert r.status_code == 403
