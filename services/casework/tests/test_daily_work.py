"""Daily work over HTTP: correcting and reassigning a case, and the worklists of follow-ups
and placements."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from asf_contracts import registry as reg
from asf_testing import auth, event_tap


def deregistered(company_id: uuid.UUID, name: str) -> dict[str, Any]:
    return {"id": str(company_id), "org_number": "769612-3450", "name": name,
            "legal_form": "aktiebolag", "municipality_code": "0180", "county_code": "01",
            "industries": ["cleaning"], "training_places": 10, "origin": "existing",
            "status": "deregistered", "qualifies_as_asf": True,
            "reserved_contract_eligible": False, "verification_level": "verified",
            "deregistration_reason": "bankruptcy"}


async def _signed_in(client: Any, headers: dict[str, str]) -> None:
    """The person calls casework once, so casework knows them (and their role)."""
    assert (await client.get("/participants", headers=headers)).status_code == 200


async def _read(client: Any, pid: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(f"/participants/{pid}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{r.json()["version"]}"'
    body: dict[str, Any] = r.json()
    return body


# --- PATCH /participants/{id} ----------------------------------------------------------


async def test_a_correction_needs_the_version_read(
    client: Any, refer: Any, case_worker: Any, env: Any
) -> None:
    headers = case_worker("0180")
    p = await refer(headers, phone="070-111 11 11")
    url = f"/participants/{p['id']}"
    r = await client.patch(url, headers=headers, json={"phone": "070-222 22 22"})
    assert r.status_code == 428, r.text
    r = await client.patch(url, headers={**headers, "If-Match": '"7"'},
                           json={"phone": "070-222 22 22"})
    assert r.status_code == 412 and r.json()["current_version"] == 1
    assert (await _read(client, p["id"], headers))["phone"] == "070-111 11 11"

    r = await client.patch(url, headers={**headers, "If-Match": '"1"'},
                           json={"phone": "070-222 22 22", "email": None,
                                 "family_name": "Rättadsson", "referral_source": "self"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["phone"], body["email"], body["family_name"], body["referral_source"]) == (
        "070-222 22 22", None, "Rättadsson", "self")
    assert body["version"] == 2 and r.headers["ETag"] == '"2"'
    assert body["personal_identity_number"] == p["personal_identity_number"]
    read = await _read(client, p["id"], headers)
    assert (read["phone"], read["family_name"], read["version"]) == (
        "070-222 22 22", "Rättadsson", 2)
    async with env.pool.acquire() as conn:
        sealed = await conn.fetchval("SELECT personal FROM participants WHERE id = $1",
                                     uuid.UUID(p["id"]))
    assert b"R\xc3\xa4ttadsson" not in bytes(sealed) and b"070-222" not in bytes(sealed)
    # the same version again is stale now; the version in the body works like If-Match
    r = await client.patch(url, headers={**headers, "If-Match": '"1"'}, json={"phone": None})
    assert r.status_code == 412
    r = await client.patch(url, headers=headers, json={"phone": None, "version": 2})
    assert r.status_code == 200 and r.json()["phone"] is None and r.json()["version"] == 3


@pytest.mark.parametrize(("body", "field"), [
    ({"personal_identity_number": "19900101-0017"}, "personal_identity_number"),
    ({"personal_identity_number": None}, "personal_identity_number"),
    ({"given_name": None}, "given_name"),
    ({"family_name": ""}, "family_name"),
    ({"email": "not-an-email"}, "email"),
    ({"phone": "call me"}, "phone"),
    ({"referral_source": "neighbour"}, "referral_source"),
    ({"assigned_to": None}, "assigned_to"),
    ({"stage": "closed"}, "stage"),
])
async def test_a_bad_correction_names_the_field(
    client: Any, refer: Any, case_worker: Any, body: dict[str, Any], field: str
) -> None:
    headers = case_worker("0180")
    p = await refer(headers)
    r = await client.patch(f"/participants/{p['id']}", headers={**headers, "If-Match": '"1"'},
                           json=body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_a_reassignment_goes_to_a_case_worker_of_the_same_municipality_only(
    client: Any, refer: Any, case_worker: Any, broker_url: str, env: Any
) -> None:
    me = case_worker("0180", sub="cw-handing-over")
    colleague = case_worker("0180", sub="cw-taking-over")
    elsewhere = case_worker("1480", sub="cw-in-goteborg")
    auditor = auth("auditor", sub="auditor-0180", municipality_code="0180")
    await _signed_in(client, colleague)
    await _signed_in(client, elsewhere)
    await client.get(f"/participants/{uuid.uuid4()}/access-log", headers=auditor)
    p = await refer(me, phone="070-333 33 33")
    url = f"/participants/{p['id']}"
    v1 = {**me, "If-Match": '"1"'}
    for sub in ("cw-in-goteborg", "auditor-0180", "cw-never-signed-in"):
        r = await client.patch(url, headers=v1, json={"assigned_to": sub,
                                                      "phone": "070-999 99 99"})
        assert r.status_code == 422, (sub, r.text)
        assert r.json()["errors"][0]["field"] == "assigned_to"
        assert "municipality 0180" in r.json()["errors"][0]["message"]
    read = await _read(client, p["id"], me)  # nothing half-saved
    assert (read["assigned_to"], read["phone"], read["version"]) == (
        "cw-handing-over", "070-333 33 33", 1)

    async with event_tap(broker_url, "casework.participant.reassigned.v1") as tap:
        r = await client.patch(url, headers=v1, json={"assigned_to": "cw-taking-over"})
        assert r.status_code == 200, r.text
        assert r.json()["assigned_to"] == "cw-taking-over" and r.json()["version"] == 2
        bodies = await tap.wait_for(lambda bs: any(b["aggregate_id"] == p["id"] for b in bs))
    [event] = [b for b in bodies if b["aggregate_id"] == p["id"]]
    assert event["aggregate_version"] == 2
    assert event["payload"] == {"participant_id": p["id"], "municipality_code": "0180",
                                "from_assigned_to": "cw-handing-over",
                                "assigned_to": "cw-taking-over"}
    r = await client.get(f"{url}/timeline", headers=colleague)
    [item] = [i for i in r.json()["items"] if i["kind"] == "reassigned"]
    assert (item["by"], item["details"]) == ("cw-handing-over", {
        "from_assigned_to": "cw-handing-over", "assigned_to": "cw-taking-over"})
    r = await client.get(f"{url}/access-log", headers=auth("auditor", sub="auditor-x"))
    actions = [(e["actor"], e["action"]) for e in r.json()["items"]]
    assert ("cw-handing-over", "reassign") in actions
    assert ("cw-handing-over", "update") in actions
    r = await client.get("/participants", headers=colleague,
                         params={"assigned_to": "cw-taking-over"})
    assert p["id"] in [c["id"] for c in r.json()["items"]]


async def test_a_referral_is_assigned_only_to_a_case_worker_of_the_municipality(
    client: Any, case_worker: Any, identity_number: Any
) -> None:
    me = case_worker("0180", sub="cw-referring")
    await _signed_in(client, case_worker("0180", sub="cw-colleague-0180"))
    await _signed_in(client, case_worker("1480", sub="cw-colleague-1480"))
    body = {"given_name": "Tilldelad", "family_name": "Testsson", "referral_source": "self"}
    r = await client.post("/participants", headers=me, json={
        **body, "personal_identity_number": identity_number(),
        "assigned_to": "cw-colleague-1480"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "assigned_to"
    r = await client.post("/participants", headers=me, json={
        **body, "personal_identity_number": identity_number(),
        "assigned_to": "cw-colleague-0180"})
    assert r.status_code == 201 and r.json()["assigned_to"] == "cw-colleague-0180"


async def test_who_casework_knows_is_noted_cheaply_and_follows_the_token(
    client: Any, env: Any
) -> None:
    sub = f"cw-moving-{uuid.uuid4().hex[:6]}"

    async def noted() -> Any:
        async with env.pool.acquire() as conn:
            return await conn.fetchrow("SELECT * FROM known_users WHERE sub = $1", sub)

    await _signed_in(client, auth("case_worker", sub=sub, municipality_code="0180"))
    first = await noted()
    assert (first["municipality_code"], first["roles"]) == ("0180", ["case_worker"])
    await _signed_in(client, auth("case_worker", sub=sub, municipality_code="0180"))
    assert (await noted())["seen_at"] == first["seen_at"]  # not again within the hour
    await _signed_in(client, auth("case_worker", sub=sub, municipality_code="1480"))
    assert (await noted())["municipality_code"] == "1480"  # a new token counts at once


async def test_corrections_of_erased_or_other_municipalities_cases(
    client: Any, refer: Any, case_worker: Any, move: Any
) -> None:
    headers = case_worker("0180")
    p = await refer(headers)
    r = await client.patch(f"/participants/{p['id']}", json={"phone": None},
                           headers={**case_worker("1480"), "If-Match": '"1"'})
    assert r.status_code == 404
    await move(p["id"], headers, "closed", exit_reason="moved")
    assert (await client.delete(f"/participants/{p['id']}", headers=headers)).status_code == 204
    version = (await _read(client, p["id"], headers))["version"]
    r = await client.patch(f"/participants/{p['id']}", json={"phone": None},
                           headers={**headers, "If-Match": f'"{version}"'})
    assert r.status_code == 409


# --- worklists -------------------------------------------------------------------------

WORKLIST_MUNICIPALITY = "0996"  # no other test uses it, so the lists are exact


async def _employed(client: Any, refer: Any, move: Any, place: Any, headers: dict[str, str],
                    company: uuid.UUID, start: date) -> str:
    pid: str = (await refer(headers))["id"]
    await move(pid, headers, "assessment")
    assert (await place(pid, headers, company)).status_code == 201
    r = await move(pid, headers, "employed", employment={
        "form": "unsubsidised", "employer_name": "Lista AB", "start": start.isoformat()})
    assert r.status_code == 200, r.text
    return pid


async def _pages(client: Any, url: str, headers: dict[str, str],
                 params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        page = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(url, headers=headers, params=page)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


async def test_the_follow_up_worklist(
    client: Any, refer: Any, move: Any, place: Any, registry: Any, env: Any
) -> None:
    anna = auth("case_worker", sub="cw-list-anna", municipality_code=WORKLIST_MUNICIPALITY)
    bo = auth("case_worker", sub="cw-list-bo", municipality_code=WORKLIST_MUNICIPALITY)
    company = await registry.active_company(places=20)
    today = date.today()
    long_ago = await _employed(client, refer, move, place, anna, company,
                               today - timedelta(days=200))  # 90 and 180 due
    recent = await _employed(client, refer, move, place, bo, company,
                             today - timedelta(days=100))  # 90 due
    await _employed(client, refer, move, place, auth(
        "case_worker", sub="cw-list-other", municipality_code="0180"), company,
        today - timedelta(days=300))  # another municipality: never on these lists
    r = await client.post(f"/participants/{long_ago}/follow-ups", headers=anna,
                          json={"offset_days": 90, "still_employed": True})
    assert r.status_code == 201

    due = await _pages(client, "/follow-ups", anna, {"status": "due"})
    assert [(f["participant_id"], f["offset_days"]) for f in due] == [
        (long_ago, 180), (recent, 90)]
    assert all(f["status"] == "due" and f["municipality_code"] == WORKLIST_MUNICIPALITY
               for f in due)
    assert [f["assigned_to"] for f in due] == ["cw-list-anna", "cw-list-bo"]
    everything = await _pages(client, "/follow-ups", anna, {})
    assert len(everything) == 6  # three per employment, none cancelled
    assert [f["due_date"] for f in everything] == sorted(f["due_date"] for f in everything)
    assert {f["participant_id"] for f in everything} == {long_ago, recent}
    r = await client.get("/follow-ups", headers=anna, params={"status": "recorded"})
    assert [(f["participant_id"], f["offset_days"], f["still_employed"])
            for f in r.json()["items"]] == [(long_ago, 90, True)]
    r = await client.get("/follow-ups", headers=anna, params={"assigned_to": "cw-list-bo"})
    assert {f["participant_id"] for f in r.json()["items"]} == {recent}
    r = await client.get("/follow-ups", headers=anna, params={
        "due_before": (today - timedelta(days=15)).isoformat()})
    assert [(f["participant_id"], f["offset_days"]) for f in r.json()["items"]] == [
        (long_ago, 90), (long_ago, 180)]
    r = await client.get("/follow-ups", headers=anna, params={"status": "upcoming"})
    assert {f["offset_days"] for f in r.json()["items"]} == {180, 365}
    r = await client.get(f"/participants/{long_ago}/access-log",
                         headers=auth("auditor", sub="auditor-list"))
    assert ("cw-list-anna", "worklist") in [(e["actor"], e["action"])
                                            for e in r.json()["items"]]
    for params in ({"status": "overdue"}, {"due_before": "soon"}, {"cursor": "bm9wZQ"},
                   {"limit": 0}, {"assigned_to": "a\x01b"}):
        r = await client.get("/follow-ups", headers=anna, params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"], params


async def test_a_follow_up_is_due_on_the_swedish_date(
    client: Any, refer: Any, move: Any, place: Any, registry: Any, env: Any
) -> None:
    """At 23:30 UTC in winter it is already 00:30 the next day in Sweden: a follow-up due
    that day is on the worklist as due, not as upcoming (a UTC date would be a day late)."""
    anna = auth("case_worker", sub="cw-swedish-day", municipality_code=WORKLIST_MUNICIPALITY)
    company = await registry.active_company(places=5)
    due = date(2026, 1, 15)
    pid = await _employed(client, refer, move, place, anna, company, due - timedelta(days=90))
    real_clock = env.casework.now
    env.casework.now = lambda: datetime.combine(due - timedelta(days=1), time(23, 30), UTC)
    try:
        r = await client.get("/follow-ups", headers=anna, params={"status": "due"})
    finally:
        env.casework.now = real_clock
    assert r.status_code == 200, r.text
    assert (pid, 90, due.isoformat()) in [
        (f["participant_id"], f["offset_days"], f["due_date"]) for f in r.json()["items"]]


async def test_the_placement_worklist(
    client: Any, refer: Any, move: Any, place: Any, registry: Any, env: Any
) -> None:
    municipality = "0995"
    headers = auth("case_worker", sub="cw-placements", municipality_code=municipality)
    closing = await registry.active_company(places=10, name="Stänger AB")
    staying = await registry.active_company(places=10, name="Stannar AB")
    pids = []
    for company in (closing, closing, staying):
        pid = (await refer(headers))["id"]
        await move(pid, headers, "assessment")
        assert (await place(pid, headers, company)).status_code == 201
        pids.append(pid)
    other = (await refer(auth("case_worker", sub="cw-p-other",
                              municipality_code="0180")))["id"]
    await move(other, auth("case_worker", sub="cw-p-other", municipality_code="0180"),
               "assessment")
    ended = (await client.get("/placements", headers=headers, params={
        "company_id": str(closing)})).json()["items"][1]
    r = await client.post(f"/placements/{ended['id']}/end", headers=headers,
                          json={"reason": "completed"})
    assert r.status_code == 200
    await registry.publish(reg.COMPANY_DEREGISTERED, deregistered(closing, "Stänger AB"), 3)
    await registry.wait_version(closing, 3)

    async def flagged() -> list[dict[str, Any]]:
        r = await client.get("/placements", headers=headers, params={"flagged": "true"})
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    for _ in range(100):  # the flagging commits with the company event
        if await flagged():
            break
        await asyncio.sleep(0.05)
    [flag] = await flagged()
    assert (flag["participant_id"], flag["flag_reason"], flag["company_name"]) == (
        pids[0], "bankruptcy", "Stänger AB")
    assert flag["assigned_to"] == "cw-placements" and flag["municipality_code"] == municipality
    every = await _pages(client, "/placements", headers, {})
    assert [p["participant_id"] for p in every] == pids
    active = await _pages(client, "/placements", headers, {"active": "true"})
    assert [p["participant_id"] for p in active] == [pids[0], pids[2]]
    r = await client.get("/placements", headers=headers, params={"active": "false"})
    assert [p["id"] for p in r.json()["items"]] == [ended["id"]]
    r = await client.get("/placements", headers=headers,
                         params={"flagged": "false", "active": "true"})
    assert [p["participant_id"] for p in r.json()["items"]] == [pids[2]]
    for params in ({"flagged": "perhaps"}, {"company_id": "x"}, {"cursor": "bm9wZQ"}):
        assert (await client.get("/placements", headers=headers,
                                 params=params)).status_code == 422, params
