"""Who reads what (SPEC 3.1): pending, rejected and deregistered companies, decision notes and
`registered_by` only for registry officers and the company's own representative; everybody
else signed in sees active companies, case workers and analysts with all contacts, other
representatives (and auditors) as the public sees them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from asf_testing import auth

Headers = dict[str, dict[str, str]]

PUBLIC_KEYS = {
    "id", "org_number", "name", "legal_form", "municipality_code", "municipality_name",
    "county", "industries", "description", "website", "contacts", "training_places",
    "qualifies_as_asf", "reserved_contract_eligible", "verification",
}
CONTACTS = [
    {"name": "Anna Publik", "role": "manager", "email": "anna@example.se", "public": True},
    {"name": "Bo Intern", "role": "finance", "email": "bo@example.se", "phone": "+46 8 55 55"},
]


def competitor() -> dict[str, str]:
    return auth("company_rep", sub=f"rep-{uuid.uuid4().hex[:6]}", company_id=str(uuid.uuid4()))


def readers(company_id: str) -> dict[str, dict[str, str]]:
    return {
        "officer": auth("registry_officer", sub="officer-9"),
        "own rep (registered it)": auth("company_rep", sub="rep-1"),
        "own rep (company_id)": auth("company_rep", sub="rep-77", company_id=company_id),
        "competitor": competitor(),
        "case worker": auth("case_worker", sub="cw-9", municipality_code="0180"),
        "analyst": auth("analyst", sub="an-9"),
        "auditor": auth("auditor", sub="au-9"),
    }


async def closed(client: httpx.AsyncClient, new_company: Callable[..., Any], h: Headers,
                 status: str) -> dict[str, Any]:
    if status == "pending":
        return dict(await new_company(contacts=CONTACTS))
    if status == "deregistered":
        c = await new_company(status="active", contacts=CONTACTS)
        r = await client.post(f"/companies/{c['id']}/deregistration",
                              json={"reason": "criteria_unmet", "note": "Intern bedömning"},
                              headers=h["officer"])
        return dict(r.json())
    c = await new_company(contacts=CONTACTS)
    r = await client.post(f"/companies/{c['id']}/verification",
                          json={"decision": "rejected", "note": "Brister i underlaget"},
                          headers=h["officer"])
    return dict(r.json())


@pytest.mark.parametrize("status", ["pending", "rejected", "deregistered"])
async def test_a_company_that_is_not_active_is_for_officers_and_its_own_rep(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any], status: str
) -> None:
    c = await closed(client, new_company, headers, status)
    assert c["status"] == status
    for who, h in readers(c["id"]).items():
        one = await client.get(f"/companies/{c['id']}", headers=h)
        listed = await client.get("/companies", params={"q": c["name"]}, headers=h)
        names = [x["name"] for x in listed.json()["items"]]
        if who in ("officer", "own rep (registered it)", "own rep (company_id)"):
            assert one.status_code == 200, who
            assert one.json()["registered_by"] == "rep-1"
            assert one.json()["contacts"][1]["email"] == "bo@example.se"
            assert names == [c["name"]], who
        else:
            assert one.status_code == 404, who
            assert one.json()["detail"] == "company not found"  # the same as a missing one
            assert names == [], who
            by_status = await client.get("/companies", params={"status": status, "limit": 500},
                                         headers=h)
            assert c["id"] not in {x["id"] for x in by_status.json()["items"]}, who


async def test_decision_notes_are_for_officers_and_the_company(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await closed(client, new_company, headers, "rejected")
    for h in (headers["officer"], headers["rep"]):
        seen = (await client.get(f"/companies/{c['id']}", headers=h)).json()
        assert seen["verification"]["note"] == "Brister i underlaget"


async def test_an_active_company_as_each_reader_sees_it(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company(contacts=CONTACTS)
    r = await client.post(f"/companies/{c['id']}/verification",
                          json={"decision": "verified", "note": "Besök 2026-11-02"},
                          headers=headers["officer"])
    c = r.json()
    for who, h in readers(c["id"]).items():
        r = await client.get(f"/companies/{c['id']}", headers=h)
        assert r.status_code == 200, who
        seen = r.json()
        listed = (await client.get("/companies", params={"q": c["name"]}, headers=h)).json()
        assert listed["items"] == [seen], who
        if who in ("officer", "own rep (registered it)", "own rep (company_id)"):
            assert seen == c, who
            assert r.headers["etag"] == f'"{c["version"]}"'
        elif who in ("case worker", "analyst"):
            assert seen["contacts"] == c["contacts"], who  # every contact
            assert seen["registered_by"] is None
            assert seen["verification"]["note"] is None
            assert seen["workforce"] == c["workforce"]
            assert r.headers["etag"] == f'"{c["version"]}"'
        else:
            assert set(seen) == PUBLIC_KEYS, who
            assert seen["contacts"] == [{"name": "Anna Publik", "role": "manager",
                                         "email": "anna@example.se", "phone": None}], who
            assert "etag" not in r.headers


async def test_a_rep_lists_their_own_pending_company_beside_active_competitors(
    client: httpx.AsyncClient, new_company: Callable[..., Any]
) -> None:
    tag = f"vis{uuid.uuid4().hex[:8]}"
    own = await new_company(name=f"Eget {tag}", industries=[tag])
    active = await new_company(status="active", name=f"Aktivt {tag}", industries=[tag])
    pending = await new_company(name=f"Väntande {tag}", industries=[tag])
    rep = auth("company_rep", sub="rep-own", company_id=own["id"])
    page = (await client.get("/companies", params={"industry": tag}, headers=rep)).json()
    by_id = {c["id"]: c for c in page["items"]}
    assert set(by_id) == {own["id"], active["id"]}
    assert pending["id"] not in by_id
    assert by_id[own["id"]]["status"] == "pending"  # the whole company: their own
    assert set(by_id[active["id"]]) == PUBLIC_KEYS  # a competitor: the public shape
