"""The case over HTTP: every move, placements and their rules, follow-ups, notes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from asf_contracts import registry as reg
from asf_testing import event_tap

EMPLOYMENT = {"form": "new_start_job", "employer_name": "Bygg AB",
              "start": (date.today() - timedelta(days=10)).isoformat()}


async def _at_stage(stage: str, headers: dict[str, str], refer: Any, move: Any, place: Any,
                    company: uuid.UUID) -> str:
    """A participant brought to `stage` the way a case worker would."""
    pid: str = (await refer(headers))["id"]
    path = {"referred": [], "assessment": ["assessment"],
            "in_training": ["assessment", "place"],
            "employed": ["assessment", "place", "employed"],
            "closed": ["closed"]}[stage]
    for step in path:
        if step == "place":
            r = await place(pid, headers, company)
        elif step == "employed":
            r = await move(pid, headers, "employed", employment=EMPLOYMENT)
        elif step == "closed":
            r = await move(pid, headers, "closed", exit_reason="unknown")
        else:
            r = await move(pid, headers, step)
        assert r.status_code in (200, 201), r.text
    return pid


@pytest.mark.parametrize(("start", "to", "status", "allowed"), [
    ("referred", "assessment", 200, None),
    ("referred", "closed", 200, None),
    ("referred", "in_training", 409, ["assessment", "closed"]),
    ("referred", "employed", 409, ["assessment", "closed"]),
    ("referred", "referred", 409, ["assessment", "closed"]),
    ("assessment", "in_training", 409, ["in_training", "closed"]),  # only by a placement
    ("assessment", "employed", 409, ["in_training", "closed"]),
    ("assessment", "closed", 200, None),
    ("assessment", "referred", 409, ["in_training", "closed"]),
    ("in_training", "employed", 200, None),
    ("in_training", "closed", 200, None),
    ("in_training", "assessment", 409, ["employed", "closed"]),
    ("employed", "closed", 200, None),
    ("employed", "in_training", 409, ["in_training", "closed"]),  # only by a placement
    ("employed", "referred", 409, ["in_training", "closed"]),
    ("closed", "assessment", 409, []),
    ("closed", "closed", 409, []),
])
async def test_every_move_over_http(
    refer: Any, move: Any, place: Any, registry: Any, case_worker: Any,
    start: str, to: str, status: int, allowed: list[str] | None,
) -> None:
    headers = case_worker("0180")
    company = await registry.active_company(places=50)
    pid = await _at_stage(start, headers, refer, move, place, company)
    extra: dict[str, Any] = {}
    if to == "closed":
        extra["exit_reason"] = "dropped_out"
    if to == "employed":
        extra["employment"] = EMPLOYMENT
    r = await move(pid, headers, to, **extra)
    assert r.status_code == status, r.text
    if allowed is not None:
        body = r.json()
        assert body["allowed"] == allowed and body["current_stage"] == start
        assert r.headers["content-type"].startswith("application/problem+json")
    else:
        assert r.json()["stage"] == to


async def test_transition_inputs(refer: Any, move: Any, case_worker: Any, client: Any) -> None:
    headers = case_worker()
    pid = (await refer(headers))["id"]
    r = await move(pid, headers, "closed")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "exit_reason"
    for body, field in [
        ({"to": "closed", "exit_reason": "holiday"}, "exit_reason"),
        ({"to": "space"}, "to"),
        ({}, "to"),
        ({"to": "employed", "employment": {"form": "x", "employer_name": "A",
                                            "start": "2026-01-01"}}, "employment.form"),
        ({"to": "employed", "employment": {"form": "wage_subsidy", "employer_name": "A",
                                            "start": "someday"}}, "employment.start"),
        ({"to": "employed", "employment": {"form": "wage_subsidy", "start": "2026-01-01"}},
         "employment"),
    ]:
        r = await client.post(f"/participants/{pid}/transitions", json=body, headers=headers)
        assert r.status_code == 422, body
        assert field in [e["field"] for e in r.json()["errors"]], r.json()
    r = await client.post(f"/participants/{pid}/transitions", json={"to": "assessment"},
                          headers=headers)
    assert r.json()["version"] == 2


async def test_closing_from_employed_needs_no_reason_and_keeps_the_job(
    refer: Any, move: Any, place: Any, registry: Any, case_worker: Any
) -> None:
    headers = case_worker()
    company = await registry.active_company(places=5)
    pid = await _at_stage("employed", headers, refer, move, place, company)
    r = await move(pid, headers, "closed")
    assert r.status_code == 200
    assert r.json()["employment"]["ended_on"] is None


async def test_employer_company_must_be_known(
    refer: Any, move: Any, place: Any, registry: Any, case_worker: Any
) -> None:
    headers = case_worker()
    company = await registry.active_company(places=5)
    pid = await _at_stage("in_training", headers, refer, move, place, company)
    r = await move(pid, headers, "employed", employment={
        "form": "wage_subsidy", "employer_company_id": str(uuid.uuid4()),
        "start": "2026-01-01"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "employment.employer_company_id"


async def test_placements_need_an_active_company_with_a_free_place(
    client: Any, refer: Any, move: Any, place: Any, registry: Any, case_worker: Any,
    broker_url: str,
) -> None:
    headers = case_worker()
    company = await registry.active_company(places=1)
    pid = await _at_stage("assessment", headers, refer, move, place, company)
    async with event_tap(broker_url, "casework.placement.*.v1",
                         "casework.participant.stage_changed.v1") as tap:
        r = await place(pid, headers, company, planned_end=(
            date.today() + timedelta(days=90)).isoformat(), hours_per_week=30)
        assert r.status_code == 201, r.text
        placement = r.json()
        await tap.wait_for(lambda bs: {b["event_type"] for b in bs if b["aggregate_id"] == pid}
                           >= {"casework.placement.started",
                               "casework.participant.stage_changed"})
    assert placement["status"] == "active" and placement["company_name"] == "Testföretaget"
    r = await client.get(f"/participants/{pid}", headers=headers)
    assert r.json()["stage"] == "in_training"
    assert r.json()["active_placement_ids"] == [placement["id"]]

    other = await _at_stage("assessment", headers, refer, move, place, company)
    r = await place(other, headers, company)
    assert r.status_code == 409 and r.json()["training_places"] == 1
    # a second placement beside the first, at a company with room, is fine
    roomy = await registry.active_company(places=3)
    assert (await place(pid, headers, roomy)).status_code == 201

    r = await client.post(f"/placements/{placement['id']}/end", headers=headers,
                          json={"reason": "completed"})
    assert r.status_code == 200 and r.json()["status"] == "ended"
    assert r.json()["end_reason"] == "completed" and r.json()["version"] == 2
    r = await client.post(f"/placements/{placement['id']}/end", headers=headers,
                          json={"reason": "completed"})
    assert r.status_code == 409
    assert (await place(other, headers, company)).status_code == 201  # the place is free again


async def test_placement_refusals(
    client: Any, refer: Any, move: Any, place: Any, registry: Any, case_worker: Any,
) -> None:
    headers = case_worker()
    active = await registry.active_company(places=5)
    pid = await _at_stage("assessment", headers, refer, move, place, active)
    pending = uuid.uuid4()
    await registry.publish(reg.COMPANY_REGISTERED, _company(pending), 1)
    await registry.wait_version(pending, 1)
    r = await place(pid, headers, pending)
    assert r.status_code == 409 and r.json()["current_status"] == "pending"
    r = await place(pid, headers, uuid.uuid4())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "company_id"
    referred = (await refer(headers))["id"]
    r = await place(referred, headers, active)
    assert r.status_code == 409 and r.json()["allowed"] == ["assessment", "closed"]
    for extra, field in [({"kind": "holiday"}, "kind"), ({"hours_per_week": 0}, "hours_per_week"),
                         ({"hours_per_week": 61}, "hours_per_week"),
                         ({"planned_end": "2000-01-01"}, "body"),
                         ({"start": "yesterday"}, "start")]:
        r = await place(pid, headers, active, **extra)
        assert r.status_code == 422, extra
        assert field in [e["field"] for e in r.json()["errors"]]
    r = await client.post(f"/placements/{uuid.uuid4()}/end", headers=headers,
                          json={"reason": "completed"})
    assert r.status_code == 404
    placed = (await place(pid, headers, active)).json()
    for body in ({"reason": "bored"}, {}, {"reason": "other", "end": "2000-01-01"}):
        r = await client.post(f"/placements/{placed['id']}/end", headers=headers, json=body)
        assert r.status_code == 422, body
    r = await client.post(f"/placements/{placed['id']}/end", headers=case_worker("1480"),
                          json={"reason": "other"})
    assert r.status_code == 404


def _company(cid: uuid.UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(cid), "org_number": "769612-3450", "name": "Väntande AB",
        "legal_form": "aktiebolag", "municipality_code": "0180", "county_code": "01",
        "industries": ["cleaning"], "training_places": 3, "origin": "founded",
        "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": False,
        "verification_level": "self_declared"}
    body.update(changes)
    return body


async def test_two_placements_at_once_cannot_take_the_last_place(
    refer: Any, move: Any, place: Any, registry: Any, case_worker: Any,
) -> None:
    headers = case_worker()
    company = await registry.active_company(places=1)
    pids = [await _at_stage("assessment", headers, refer, move, place, company)
            for _ in range(6)]
    results = await asyncio.gather(*(place(pid, headers, company) for pid in pids))
    assert sorted(r.status_code for r in results) == [201] + [409] * 5


async def test_a_placement_after_a_job_ends_the_job(
    client: Any, refer: Any, move: Any, place: Any, registry: Any, case_worker: Any, env: Any,
) -> None:
    headers = case_worker()
    company = await registry.active_company(places=5)
    pid = await _at_stage("employed", headers, refer, move, place, company)
    r = await place(pid, headers, company)
    assert r.status_code == 201
    case = (await client.get(f"/participants/{pid}", headers=headers)).json()
    assert case["stage"] == "in_training"
    assert case["employment"]["ended_on"] == date.today().isoformat()
    async with env.pool.acquire() as conn:
        cancelled = await conn.fetchval(
            "SELECT count(*) FROM follow_ups WHERE participant_id = $1 AND cancelled_at IS NOT "
            "NULL", uuid.UUID(pid))
    assert cancelled == 3


async def test_follow_ups_are_announced_once_each_as_the_clock_moves(
    env: Any, client: Any, refer: Any, move: Any, place: Any, registry: Any, case_worker: Any,
    broker_url: str,
) -> None:
    headers = case_worker("0180", sub="cw-follow")
    company = await registry.active_company(places=5)
    pid = await _at_stage("in_training", headers, refer, move, place, company)
    start = date(2030, 1, 1)  # in the future, so no other test's sweep takes these
    r = await move(pid, headers, "employed", employment={
        "form": "unsubsidised", "employer_name": "Framtid AB", "start": start.isoformat()})
    assert r.status_code == 200
    sweep = env.casework.sweep_follow_ups

    def mine(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [b for b in bodies if b["aggregate_id"] == pid]

    async with event_tap(broker_url, "casework.follow_up.due.v1") as tap:
        await sweep(start + timedelta(days=89))
        await sweep(start + timedelta(days=90))
        await sweep(start + timedelta(days=90))
        await asyncio.gather(sweep(start + timedelta(days=200)),
                             sweep(start + timedelta(days=200)))
        bodies = await tap.wait_for(lambda bs: len(mine(bs)) >= 2)
        await asyncio.sleep(0.5)
        assert [b["payload"]["offset_days"] for b in mine(tap.bodies())] == [90, 180]
        await sweep(start + timedelta(days=365))
        bodies = await tap.wait_for(lambda bs: len(mine(bs)) >= 3)
    due = mine(bodies)[-1]["payload"]
    assert due == {"participant_id": pid, "municipality_code": "0180",
                   "assigned_to": "cw-follow", "offset_days": 365,
                   "due_date": "2031-01-01", "employment_start": "2030-01-01"}

    url = f"/participants/{pid}/follow-ups"
    r = await client.post(url, headers=headers, json={"still_employed": True})
    assert r.status_code == 201 and r.json()["offset_days"] == 90
    r = await client.post(url, headers=headers, json={"offset_days": 180,
                                                      "still_employed": False})
    assert r.status_code == 201 and r.json()["still_employed"] is False
    r = await client.post(url, headers=headers, json={"offset_days": 180,
                                                      "still_employed": True})
    assert r.status_code == 409
    r = await client.post(url, headers=headers, json={"offset_days": 42,
                                                      "still_employed": True})
    assert r.status_code == 409
    for body in ({"still_employed": "perhaps"}, {}, {"offset_days": 0, "still_employed": True}):
        assert (await client.post(url, headers=headers, json=body)).status_code == 422
    never = (await refer(headers))["id"]
    r = await client.post(f"/participants/{never}/follow-ups", headers=headers,
                          json={"still_employed": True})
    assert r.status_code == 409


async def test_confidential_notes_are_read_by_author_and_assigned_only(
    client: Any, refer: Any, case_worker: Any
) -> None:
    assigned = case_worker("0180", sub="cw-assigned")
    author = case_worker("0180", sub="cw-author")
    colleague = case_worker("0180", sub="cw-colleague")
    pid = (await refer(assigned))["id"]
    r = await client.post(f"/participants/{pid}/notes", headers=author,
                          json={"text": "hemligt", "confidential": True})
    assert r.status_code == 201 and r.json()["text"] == "hemligt"
    await client.post(f"/participants/{pid}/notes", headers=author, json={"text": "öppet"})
    for headers, secret in ((assigned, "hemligt"), (author, "hemligt"), (colleague, None)):
        items = (await client.get(f"/participants/{pid}/timeline",
                                  headers=headers)).json()["items"]
        notes = [i["details"]["text"] for i in items if i["kind"] == "note"]
        assert notes == [secret, "öppet"]
    for body in ({"text": ""}, {"text": "x" * 10_001}, {"confidential": True}):
        r = await client.post(f"/participants/{pid}/notes", headers=author, json=body)
        assert r.status_code == 422
