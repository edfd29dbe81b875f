"""Attendance reported by the host company, rates, and the monthly statement over HTTP: what the
company rep sees (and nothing more), each rule of a report, the month closed exactly once
by two replicas racing, a correction that supersedes, and the share attended in the
outcome figures."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from asgi_lifespan import LifespanManager

from asf_testing import auth, event_tap
from casework.app import create_app
from casework.workdays import Month, is_working_day

REP_FIELDS = {"id", "company_id", "municipality_code", "kind", "start", "planned_end",
              "ended_on", "status", "hours_per_week", "given_name", "family_initial"}
"""SPEC 3.2: the placement, its kind, dates and planned hours, and the participant's given
name and the initial of their family name. Nothing else."""


def rep(company_id: uuid.UUID, sub: str | None = None) -> dict[str, str]:
    return auth("company_rep", sub=sub or f"rep-{uuid.uuid4().hex[:6]}",
                company_id=str(company_id))


@dataclass
class Hosted:
    participant_id: str
    placement_id: str
    company_id: uuid.UUID
    worker: dict[str, str]
    rep: dict[str, str]


@pytest.fixture
def hosted(client: Any, refer: Any, move: Any, place: Any, registry: Any,
           case_worker: Any) -> Any:
    """A participant placed at a fresh active company from `start`, with its rep."""

    async def make(start: date, *, company_id: uuid.UUID | None = None,
                   municipality: str = "0180", hours_per_week: float | None = 20,
                   kind: str = "work_training", end: date | None = None,
                   **person: Any) -> Hosted:
        company = company_id or await registry.active_company(places=20)
        worker = case_worker(municipality)
        pid = (await refer(worker, **person))["id"]
        assert (await move(pid, worker, "assessment")).status_code == 200
        extra = {"hours_per_week": hours_per_week} if hours_per_week else {}
        r = await place(pid, worker, company, start=start.isoformat(), kind=kind, **extra)
        assert r.status_code == 201, r.text
        placement_id = r.json()["id"]
        if end is not None:
            r = await client.post(f"/placements/{placement_id}/end", headers=worker,
                                  json={"reason": "completed", "end": end.isoformat()})
            assert r.status_code == 200, r.text
        return Hosted(pid, placement_id, company, worker, rep(company))

    return make


async def put_day(client: Any, h: Hosted, day: date, hours: float, reason: str | None = None,
                  headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"hours_present": hours}
    if reason:
        body["absence_reason"] = reason
    return await client.put(f"/placements/{h.placement_id}/attendance/{day.isoformat()}",
                            json=body, headers=h.rep if headers is None else headers)


async def test_the_rep_sees_their_placements_with_given_name_and_initial_only(
    env: Any, client: Any, hosted: Any, case_worker: Any,
) -> None:
    h = await hosted(date.today() - timedelta(days=3), given_name="Sigrid",
                     family_name="Östberg", phone="070-999 88 77", email="sigrid@example.se")
    again = await hosted(date.today(), company_id=h.company_id, municipality="1480",
                         hours_per_week=None, kind="internship")
    r = await client.get(f"/companies/{h.company_id}/placements", headers=h.rep)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [set(x) for x in items] == [REP_FIELDS, REP_FIELDS]  # the allow-list, exactly
    mine = next(x for x in items if x["id"] == h.placement_id)
    assert (mine["given_name"], mine["family_initial"]) == ("Sigrid", "Ö")
    assert (mine["kind"], mine["hours_per_week"], mine["municipality_code"]) == (
        "work_training", 20, "0180")
    other = next(x for x in items if x["id"] == again.placement_id)
    assert other["municipality_code"] == "1480" and other["kind"] == "internship"
    for secret in ("Östberg", "070-999", "sigrid@", h.participant_id, "personal_identity"):
        assert secret not in r.text
    r = await client.get(f"/companies/{h.company_id}/placements", headers=h.rep,
                         params={"limit": 1})
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r = await client.get(f"/companies/{h.company_id}/placements", headers=h.rep,
                         params={"cursor": r.json()["next_cursor"]})
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"] is None

    # another company's rep is not told these exist; no company in the token: 403
    stranger = rep(uuid.uuid4())
    assert (await client.get(f"/companies/{h.company_id}/placements",
                             headers=stranger)).status_code == 404
    assert (await client.get(f"/companies/{h.company_id}/placements",
                             headers=auth("company_rep", sub="nobody"))).status_code == 403
    assert (await client.get(f"/companies/{h.company_id}/placements",
                             headers=h.worker)).status_code == 403
    # the reading of names is in the access log
    log = (await client.get(f"/participants/{h.participant_id}/access-log",
                            headers=auth("auditor", sub="aud"))).json()["items"]
    assert "company_placements" in [e["action"] for e in log]


async def test_a_day_is_reported_and_corrected_and_every_bad_report_is_refused(
    client: Any, hosted: Any, case_worker: Any,
) -> None:
    start = date.today() - timedelta(days=20)
    h = await hosted(start, end=date.today() - timedelta(days=2))
    workday = next(start + timedelta(days=i) for i in range(7)
                   if is_working_day(start + timedelta(days=i)))
    weekend = next(start + timedelta(days=i) for i in range(7)
                   if (start + timedelta(days=i)).weekday() == 5)

    r = await put_day(client, h, workday, 4)
    assert r.status_code == 201, r.text
    assert r.json() | {"reported_at": None} == {
        "placement_id": h.placement_id, "date": workday.isoformat(), "hours_present": 4.0,
        "absence_reason": None, "planned_hours": 4.0, "absence_hours": 0.0,
        "reported_by": r.json()["reported_by"], "reported_at": None, "version": 1}
    r = await put_day(client, h, workday, 1.5, "sick")
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["absence_hours"] == 2.5
    assert (await put_day(client, h, weekend, 0)).status_code == 201

    bad = [
        (workday, {"hours_present": 24.5}, {"hours_present"}),
        (workday, {"hours_present": -1}, {"hours_present"}),
        (workday, {"hours_present": "four"}, {"hours_present"}),
        (workday, {}, {"hours_present"}),
        (workday, {"hours_present": 0}, {"absence_reason"}),
        (workday, {"hours_present": 2}, {"absence_reason"}),
        (workday, {"hours_present": 4, "absence_reason": "sick"}, {"absence_reason"}),
        (workday, {"hours_present": 30, "absence_reason": "holiday"},
         {"hours_present", "absence_reason"}),
        (start - timedelta(days=1), {"hours_present": 4}, {"date"}),
        (date.today() - timedelta(days=1), {"hours_present": 4}, {"date"}),  # after it ended
        (date.today() + timedelta(days=1), {"hours_present": 4}, {"date"}),
    ]
    for day, body, fields in bad:
        r = await client.put(f"/placements/{h.placement_id}/attendance/{day.isoformat()}",
                             json=body, headers=h.rep)
        assert r.status_code == 422, (day, body, r.text)
        assert {e["field"] for e in r.json()["errors"]} == fields, (body, r.json())
    r = await client.put(f"/placements/{h.placement_id}/attendance/2026-02-30",
                         json={"hours_present": 1}, headers=h.rep)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "date"

    # nothing half-saved: what was taken is all there is
    r = await client.get(f"/placements/{h.placement_id}/attendance", headers=h.worker,
                         params={"from": (start - timedelta(days=5)).isoformat(),
                                 "to": date.today().isoformat()})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [(d["date"], d["hours_present"], d["absence_reason"]) for d in page["items"]] == sorted(
        [(workday.isoformat(), 1.5, "sick"), (weekend.isoformat(), 0.0, None)])
    assert page["placement"]["given_name"] == "Testa" and set(page["placement"]) == REP_FIELDS

    # who may report and read: the rep of the company reports; its municipality reads
    assert (await put_day(client, h, workday, 4, headers=h.worker)).status_code == 403
    assert (await put_day(client, h, workday, 4, headers=rep(uuid.uuid4()))).status_code == 404
    url = f"/placements/{h.placement_id}/attendance"
    assert (await client.get(url, headers=rep(uuid.uuid4()))).status_code == 404
    assert (await client.get(url, headers=case_worker("1480"))).status_code == 404
    assert (await client.get(url, headers=h.rep)).status_code == 200
    for params in ({"from": "2026-05-02", "to": "2026-05-01"},
                   {"from": "2025-01-01", "to": "2026-05-01"}):
        r = await client.get(url, headers=h.rep, params=params)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "to"
    assert (await put_day(client, h, workday, 4, headers={})).status_code == 401


async def test_rates_are_set_by_the_municipality_and_read_by_analysts(
    client: Any, case_worker: Any,
) -> None:
    worker = case_worker("2480")
    body = {"kind": "enhanced_work_training", "unit": "hour", "amount_sek": 52.5,
            "valid_from": "2026-01-01"}
    r = await client.post("/rates", json=body, headers=worker)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["municipality_code"], created["amount_sek"], created["unit"]) == (
        "2480", 52.5, "hour")
    r = await client.post("/rates", json={**body, "amount_sek": 60}, headers=worker)
    assert r.status_code == 409 and r.json()["existing_id"] == created["id"]
    r = await client.post("/rates", json={**body, "municipality_code": "0180"}, headers=worker)
    assert r.status_code == 403
    later = (await client.post("/rates", json={**body, "valid_from": "2026-07-01",
                                               "amount_sek": 55}, headers=worker)).json()
    for bad, field in (({"unit": "week"}, "unit"), ({"amount_sek": 0}, "amount_sek"),
                       ({"kind": "job"}, "kind"), ({"valid_from": "1899-12-31"}, "valid_from"),
                       ({"amount_sek": None}, "amount_sek")):
        r = await client.post("/rates", json={**body, **bad}, headers=worker)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field

    r = await client.get("/rates", headers=worker)
    assert [x["id"] for x in r.json()["items"]] == [created["id"], later["id"]]
    r = await client.get("/rates", headers=case_worker("0180"), params={
        "municipality_code": "2480"})
    assert r.status_code == 403
    analyst = auth("analyst", sub="analyst-rates")
    r = await client.get("/rates", headers=analyst, params={"municipality_code": "2480",
                                                           "limit": 1})
    assert [x["id"] for x in r.json()["items"]] == [created["id"]] and r.json()["next_cursor"]
    r = await client.get("/rates", headers=analyst, params={
        "municipality_code": "2480", "cursor": r.json()["next_cursor"]})
    assert [x["id"] for x in r.json()["items"]] == [later["id"]]
    assert (await client.get("/rates", headers=rep(uuid.uuid4()))).status_code == 403


async def test_the_month_is_closed_into_a_statement_and_corrected_by_a_new_one(
    env: Any, client: Any, hosted: Any, case_worker: Any, broker_url: str,
) -> None:
    september = Month(2026, 9)
    h = await hosted(date(2026, 9, 1), given_name="Ingrid", family_name="Holm")
    late = await hosted(date(2026, 9, 21), company_id=h.company_id, kind="internship",
                        hours_per_week=10)
    elsewhere = await hosted(date(2026, 9, 1), company_id=h.company_id, municipality="1480")
    for municipality, kind, unit, amount in (("0180", "work_training", "day", 300),
                                             ("0180", "internship", "hour", 40)):
        r = await client.post("/rates", headers=case_worker(municipality), json={
            "kind": kind, "unit": unit, "amount_sek": amount, "valid_from": "2026-01-01"})
        assert r.status_code in (201, 409), r.text
    for day, hours, reason in ((1, 4, None), (2, 4, None), (3, 0, "sick"), (4, 2, "leave"),
                               (6, 0, None)):
        assert (await put_day(client, h, date(2026, 9, day), hours, reason)).status_code == 201
    assert (await put_day(client, late, date(2026, 9, 21), 2)).status_code == 201
    assert (await put_day(client, elsewhere, date(2026, 9, 1), 4)).status_code == 201

    async with event_tap(broker_url, "casework.statement.issued.v1") as tap:
        # before the first working day of October nothing closes; on it, September does
        assert await env.casework.close_due_months(date(2026, 11, 1)) == []  # a Sunday
        issued = await env.casework.close_due_months(date(2026, 10, 1))
        mine = [s for s in issued if s.company_id == h.company_id]
        assert sorted(s.municipality_code for s in mine) == ["0180", "1480"]
        assert await env.casework.close_month(september) == []  # closed already
        bodies = await tap.wait_for(lambda bs: sum(
            b["payload"]["company_id"] == str(h.company_id) for b in bs) >= 2)
        await asyncio.sleep(0.5)
        events = [b for b in tap.bodies() if b["payload"]["company_id"] == str(h.company_id)]
    assert len(events) == 2
    [statement] = [s for s in mine if s.municipality_code == "0180"]
    [event] = [e for e in events if e["payload"]["municipality_code"] == "0180"]
    assert event["aggregate_id"] == str(statement.id)
    assert event["payload"] == {
        "statement_id": str(statement.id), "company_id": str(h.company_id),
        "municipality_code": "0180", "month": "2026-09", "kind": "original",
        "supersedes": None, "totals": {
            "placements": 2, "days_present": 4, "hours_present": 12.0,
            "absence_days": {"sick": 1, "leave": 1, "unexcused": 0, "other": 0},
            "amount_sek": 300 * 3 + 40 * 2}}
    assert "Ingrid" not in str(bodies) and "Holm" not in str(bodies)

    sid = str(statement.id)
    # the month is closed: a report is a 409 naming the statement
    r = await put_day(client, h, date(2026, 9, 7), 4)
    assert r.status_code == 409 and r.json()["statement_id"] == sid and sid in r.json()["detail"]
    r = await client.get(f"/placements/{h.placement_id}/attendance", headers=h.rep,
                         params={"from": "2026-09-01", "to": "2026-10-31"})
    assert r.json()["closed_months"] == [{"month": "2026-09", "statement_id": sid}]

    # the rep and the municipality's case workers read it; nobody else
    r = await client.get(f"/statements/{sid}", headers=h.rep)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "current" and doc["superseded_by"] is None
    assert [(x["given_name"], x["family_initial"], x["days_present"], x["amount_sek"])
            for x in doc["lines"]] == [("Ingrid", "H", 3, 900.0), ("Testa", "T", 1, 80.0)]
    assert doc["lines"][0]["absence_days"] == {"sick": 1, "leave": 1, "unexcused": 0,
                                               "other": 0}
    assert set(doc["lines"][0]) - {"given_name", "family_initial"} <= set(
        statement.lines[0].model_dump())
    assert (await client.get(f"/statements/{sid}", headers=h.worker)).status_code == 200
    for stranger in (rep(uuid.uuid4()), elsewhere.worker):
        assert (await client.get(f"/statements/{sid}", headers=stranger)).status_code == 404
        assert (await client.get(f"/statements/{sid}.csv", headers=stranger)).status_code == 404
    r = await client.get("/statements", headers=h.rep, params={"month": "2026-09"})
    assert {x["municipality_code"] for x in r.json()["items"]} == {"0180", "1480"}
    assert "lines" not in r.json()["items"][0]
    r = await client.get("/statements", headers=elsewhere.worker,
                         params={"company_id": str(h.company_id)})
    assert [x["municipality_code"] for x in r.json()["items"]] == ["1480"]
    r = await client.get("/statements", headers=rep(uuid.uuid4()),
                         params={"company_id": str(h.company_id)})
    assert r.json()["items"] == []

    r = await client.get(f"/statements/{sid}.csv", headers=h.worker)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text.removeprefix("\ufeff"))))
    assert [(x["row"], x["given_name"], x["amount_sek"]) for x in rows] == [
        ("placement", "Ingrid", "900.00"), ("placement", "Testa", "80.00"),
        ("total", "", "980.00")]

    # a correction is a new statement that supersedes; the old one stays as it was
    url = f"/statements/{sid}/corrections"
    for body, field in (
        ({"reason": "attendance", "attendance": [{"placement_id": h.placement_id,
                                                  "date": "2026-10-01", "hours_present": 4}]},
         "attendance[0].date"),
        ({"reason": "attendance", "attendance": [{"placement_id": str(uuid.uuid4()),
                                                  "date": "2026-09-07", "hours_present": 4}]},
         "attendance[0].placement_id"),
        ({"reason": "attendance", "attendance": [{"placement_id": h.placement_id,
                                                  "date": "2026-09-07", "hours_present": 0}]},
         "attendance[0].absence_reason"),
        ({"reason": "because", "attendance": []}, "reason"),
    ):
        r = await client.post(url, json=body, headers=h.rep)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    r = await client.post(url, headers=h.rep, json={"reason": "attendance", "attendance": [
        {"placement_id": h.placement_id, "date": "2026-09-03", "hours_present": 4},
        {"placement_id": h.placement_id, "date": "2026-09-07", "hours_present": 3,
         "absence_reason": "other"}]})
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["kind"], new["supersedes"], new["reason"]) == ("correction", sid, "attendance")
    assert new["totals"]["days_present"] == 6 and new["totals"]["amount_sek"] == 1580.0
    assert r.headers["Location"] == f"/statements/{new['id']}"
    old = (await client.get(f"/statements/{sid}", headers=h.rep)).json()
    assert old["totals"] == doc["totals"] and old["lines"] == doc["lines"]
    assert (old["status"], old["superseded_by"]) == ("superseded", new["id"])
    r = await client.post(url, headers=h.worker, json={"reason": "rate"})
    assert r.status_code == 409 and r.json()["superseded_by"] == new["id"]
    r = await put_day(client, h, date(2026, 9, 8), 4)
    assert r.status_code == 409 and r.json()["statement_id"] == new["id"]
    r = await client.get("/statements", headers=h.rep, params={"month": "2026-09",
                                                               "current": "true"})
    current = {x["id"] for x in r.json()["items"]}
    assert new["id"] in current and sid not in current
    # the municipality may re-issue too (a rate corrected after closing)
    r = await client.post(f"/statements/{new['id']}/corrections", headers=h.worker,
                          json={"reason": "rate"})
    assert r.status_code == 201 and r.json()["supersedes"] == new["id"]

    # a statement is never changed in place, not even by SQL
    async with env.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="immutable"):
            await conn.execute("UPDATE statements SET totals = '{}' WHERE id = $1",
                               statement.id)


async def test_two_replicas_closing_the_month_at_once_issue_one_statement_each(
    env: Any, client: Any, hosted: Any,
) -> None:
    august = Month(2026, 8)
    companies = []
    for _ in range(4):
        h = await hosted(date(2026, 8, 3), end=date(2026, 8, 31))
        await hosted(date(2026, 8, 10), company_id=h.company_id, municipality="1480",
                     end=date(2026, 8, 28))
        for d in range(3, 8):
            assert (await put_day(client, h, date(2026, 8, d), 4)).status_code == 201
        companies.append(h)
    racer = companies[0]
    second = create_app(env.settings)  # another replica: its own runtime, pool and relay
    async with LifespanManager(second):
        replica = second.state.casework
        outcome = await asyncio.gather(
            env.casework.close_month(august), replica.close_month(august),
            replica.close_due_months(date(2026, 9, 1)), env.casework.close_month(august),
            put_day(client, racer, date(2026, 8, 10), 4))
    report = outcome[-1]
    ids = {c.company_id for c in companies}
    async with env.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, company_id, municipality_code, lines FROM statements "
            "WHERE month = '2026-08' AND company_id = ANY($1::uuid[])", list(ids))
        issued = await conn.fetch(
            "SELECT body FROM outbox WHERE event_type = 'casework.statement.issued'")
    assert sorted((r["company_id"], r["municipality_code"]) for r in rows) == sorted(
        (c, m) for c in ids for m in ("0180", "1480"))
    events = [orjson.loads(r["body"]) for r in issued]
    mine = [e for e in events if uuid.UUID(e["payload"]["company_id"]) in ids
            and e["payload"]["month"] == "2026-08"]
    assert sorted(e["payload"]["statement_id"] for e in mine) == sorted(
        str(r["id"]) for r in rows)
    # the report that raced the closing is either in the statement or refused, never lost
    [racer_row] = [r for r in rows if r["company_id"] == racer.company_id
                   and r["municipality_code"] == "0180"]
    [line] = racer_row["lines"]
    if report.status_code == 201:
        assert line["days_reported"] == 6
    else:
        assert report.status_code == 409 and line["days_reported"] == 5


async def test_the_share_of_planned_hours_attended_is_in_the_outcomes(
    client: Any, hosted: Any, case_worker: Any,
) -> None:
    # municipality 0998 is used by no other test; June 2026 has 21 working days
    company = None
    for i in range(5):
        h = await hosted(date(2026, 6, 1), company_id=company, municipality="0998",
                         end=date(2026, 6, 30))
        company = h.company_id
        for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12):  # ten days present
            assert (await put_day(client, h, date(2026, 6, d), 4 if i else 2,
                                  None if i else "sick")).status_code == 201
    short = await hosted(date(2026, 6, 1), company_id=company, municipality="0998",
                         kind="internship", hours_per_week=10, end=date(2026, 6, 30))
    assert (await put_day(client, short, date(2026, 6, 1), 2)).status_code == 201

    r = await client.get("/stats/outcomes", headers=auth("analyst", sub="an"), params={
        "municipality_code": "0998", "from": "2026-06-01", "to": "2026-06-30"})
    assert r.status_code == 200, r.text
    figures = r.json()
    by_kind = {x["kind"]: x for x in figures["attendance"]}
    assert by_kind["work_training"] == {
        "kind": "work_training", "placements": 5, "planned_hours": 5 * 21 * 4.0,
        "hours_present": 4 * 40.0 + 20.0, "share_attended": round(180 / 420, 4)}
    assert by_kind["internship"] == {"kind": "internship", "placements": None,
                                     "planned_hours": None, "hours_present": None,
                                     "share_attended": None}
    assert figures["suppressed"] is True
    assert by_kind["daily_activity"]["placements"] == 0
    r = await client.get("/stats/outcomes", headers=case_worker("0998"), params={
        "from": "2026-07-01", "to": "2026-07-31"})
    assert {x["kind"]: x["placements"] for x in r.json()["attendance"]}["work_training"] == 0
