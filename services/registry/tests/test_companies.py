"""Companies over HTTP: registration, reads, updates, verification, deregistration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

Headers = dict[str, dict[str, str]]


def fields(r: httpx.Response) -> list[str]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return [e["field"] for e in r.json()["errors"]]


async def count_companies(client: httpx.AsyncClient, h: Headers, q: str) -> int:
    r = await client.get("/companies", params={"q": q, "limit": 500}, headers=h["officer"])
    return len(r.json()["items"])


async def test_register_returns_the_whole_company(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]]
) -> None:
    body = body_factory()
    r = await client.post("/companies", json=body, headers=headers["rep"])
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["org_number"] == body["org_number"]
    assert c["status"] == "pending"
    assert c["version"] == 1
    assert c["county"] == {"code": "01", "name": "Stockholms län"}
    assert c["qualifies_as_asf"] is True
    assert c["reserved_contract_eligible"] is True  # 12 of 30 = 40 %
    assert c["verification"]["level"] == "self_declared"
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/companies/{c['id']}"
    got = await client.get(f"/companies/{c['id']}", headers=headers["rep"])  # who registered it
    assert got.status_code == 200
    assert got.json() == c
    assert got.headers["etag"] == '"1"'


async def test_org_number_without_dash_is_stored_with_it(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]]
) -> None:
    org = body_factory()["org_number"]
    r = await client.post("/companies", json=body_factory(org_number=org.replace("-", "")),
                          headers=headers["rep"])
    assert r.status_code == 201
    assert r.json()["org_number"] == org


@pytest.mark.parametrize(("override", "field"), [
    ({"org_number": "556036-0794"}, "org_number"),
    ({"org_number": "212000-0142"}, "org_number"),
    ({"municipality_code": "9999"}, "municipality_code"),
    ({"legal_form": "enskild_firma"}, "legal_form"),
    ({"industries": ["Café!"]}, "industries"),
    ({"industries": []}, "industries"),
    ({"training_places": -1}, "training_places"),
    ({"origin": "unknown"}, "origin"),
    ({"website": "not a url"}, "website"),
    ({"contacts": [{"name": "A", "email": "not-an-email"}]}, "contacts[0].email"),
    ({"workforce": {"as_of": "2026-01-01", "employees_total": 1, "engaged_total": 2}},
     "workforce.target_group_engaged"),
    ({"workforce": {"as_of": "2999-01-01", "employees_total": 1, "engaged_total": 2,
                    "target_group_engaged": 1}}, "workforce.as_of"),
    ({"criteria": {"runs_business": True, "integration_purpose": True,
                   "reinvests_profits": True, "independent_of_public_sector": True}},
     "criteria.participation"),
    ({"criteria": {"runs_business": True, "integration_purpose": True,
                   "participation": {"form": "shares"}, "reinvests_profits": True,
                   "independent_of_public_sector": True}}, "criteria.participation.form"),
    ({"unexpected": 1}, "unexpected"),
])
async def test_bad_input_names_the_field_and_saves_nothing(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
    override: dict[str, Any], field: str,
) -> None:
    body = body_factory(**override)
    r = await client.post("/companies", json=body, headers=headers["rep"])
    assert r.status_code == 422, r.text
    assert field in fields(r)
    assert r.json()["status"] == 422
    assert await count_companies(client, headers, body["name"]) == 0


async def test_every_bad_field_is_named_at_once(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]]
) -> None:
    body = body_factory(org_number="123", municipality_code="0000", training_places="many")
    r = await client.post("/companies", json=body, headers=headers["rep"])
    assert r.status_code == 422
    assert {"org_number", "municipality_code", "training_places"} <= set(fields(r))


async def test_malformed_json_is_a_422_not_a_500(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    r = await client.post("/companies", content=b"{not json",
                          headers={**headers["rep"], "content-type": "application/json"})
    assert r.status_code == 422


async def test_duplicate_org_number_is_a_conflict(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    body_factory: Callable[..., dict[str, Any]],
) -> None:
    first = await new_company()
    again = body_factory(org_number=first["org_number"].replace("-", ""))
    r = await client.post("/companies", json=again, headers=headers["rep"])
    assert r.status_code == 409
    assert r.json()["existing_id"] == first["id"]
    assert "org_number" in r.json()["detail"]
    assert await count_companies(client, headers, again["name"]) == 0


async def test_only_reps_and_officers_register(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]]
) -> None:
    for role in ("case_worker", "analyst"):
        r = await client.post("/companies", json=body_factory(), headers=headers[role])
        assert r.status_code == 403, role
        assert "company_rep" in r.json()["detail"]


async def test_unknown_company_is_404(client: httpx.AsyncClient, headers: Headers) -> None:
    r = await client.get("/companies/00000000-0000-4000-8000-000000000000",
                         headers=headers["officer"])
    assert r.status_code == 404
    r = await client.get("/companies/not-a-uuid", headers=headers["officer"])
    assert r.status_code == 422
    assert fields(r) == ["company_id"]


# --- listing --------------------------------------------------------------------------------


async def test_list_filters_search_and_pages(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    tag = f"zz{__import__('random').randint(10**6, 10**7)}"
    made = [await new_company(name=f"Kooperativ {tag} {i:02d}", municipality_code="1480",
                              industries=["laundry", tag]) for i in range(5)]
    await new_company(name=f"Annat {tag}", municipality_code="0180", industries=[tag])
    await new_company(status="active", name=f"Kooperativ {tag} aktiv", municipality_code="1480",
                      industries=[tag])

    seen: list[str] = []
    cursor = None
    while True:
        params = {"industry": tag, "county_code": "14", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/companies", params=params, headers=headers["officer"])
        assert r.status_code == 200
        page = r.json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == 6
    assert set(seen) >= {c["name"] for c in made}

    r = await client.get("/companies", params={"industry": tag}, headers=headers["case_worker"])
    assert [c["name"] for c in r.json()["items"]] == [f"Kooperativ {tag} aktiv"]  # active only
    r = await client.get("/companies", params={"industry": tag, "status": "active"},
                         headers=headers["analyst"])
    assert [c["name"] for c in r.json()["items"]] == [f"Kooperativ {tag} aktiv"]
    r = await client.get("/companies", params={"q": f"annat {tag}"}, headers=headers["rep"])
    assert [c["name"] for c in r.json()["items"]] == [f"Annat {tag}"]
    r = await client.get("/companies", params={"industry": tag, "municipality_code": "0180"},
                         headers=headers["rep"])
    assert len(r.json()["items"]) == 1


@pytest.mark.parametrize("params", [
    {"cursor": "garbage!"}, {"limit": 0}, {"limit": 10_000}, {"status": "sleeping"},
    {"county_code": "1"},
])
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, headers: Headers, params: dict[str, Any]
) -> None:
    r = await client.get("/companies", params=params, headers=headers["officer"])
    assert r.status_code == 422
    assert fields(r) == [next(iter(params))]


async def test_search_treats_wildcards_as_text(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    r = await client.get("/companies", params={"q": "%"}, headers=headers["officer"])
    assert r.status_code == 200
    assert all("%" in c["name"] for c in r.json()["items"])


# --- updates --------------------------------------------------------------------------------


async def test_rep_updates_own_company_with_if_match(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    r = await client.patch(f"/companies/{c['id']}", json={"training_places": 9},
                           headers={**headers["rep"], "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["training_places"] == 9
    assert r.json()["version"] == 2
    assert r.headers["etag"] == '"2"'


async def test_stale_version_is_412_and_changes_nothing(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    ok = await client.patch(f"/companies/{c['id']}", json={"name": c["name"] + " X", "version": 1},
                            headers=headers["rep"])
    assert ok.status_code == 200
    stale = await client.patch(f"/companies/{c['id']}", json={"training_places": 1},
                               headers={**headers["rep"], "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    now = (await client.get(f"/companies/{c['id']}", headers=headers["rep"])).json()
    assert now["training_places"] == c["training_places"]
    assert now["version"] == 2


async def test_update_without_version_is_428(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    r = await client.patch(f"/companies/{c['id']}", json={"training_places": 1},
                           headers=headers["rep"])
    assert r.status_code == 428


async def test_update_recomputes_derived_fields_and_validates(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    r = await client.patch(
        f"/companies/{c['id']}",
        json={"version": 1, "workforce": {"as_of": "2026-06-01", "employees_total": 10,
                                          "engaged_total": 30, "target_group_engaged": 6}},
        headers=headers["rep"])
    assert r.status_code == 200
    assert r.json()["reserved_contract_eligible"] is False
    bad = await client.patch(f"/companies/{c['id']}",
                             json={"version": 2, "municipality_code": "0001"},
                             headers=headers["rep"])
    assert bad.status_code == 422
    assert fields(bad) == ["municipality_code"]
    org = await client.patch(f"/companies/{c['id']}", json={"version": 2, "org_number": "x"},
                             headers=headers["rep"])
    assert org.status_code == 422
    assert fields(org) == ["org_number"]


async def test_another_reps_company_is_forbidden_or_unseen(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    from asf_testing import auth

    c = await new_company()
    other = auth("company_rep", sub="rep-2", company_id="00000000-0000-4000-8000-000000000001")
    r = await client.patch(f"/companies/{c['id']}", json={"version": 1, "training_places": 1},
                           headers=other)
    assert r.status_code == 404  # a pending company is not theirs to see at all
    mine = auth("company_rep", sub="rep-3", company_id=c["id"])
    r = await client.patch(f"/companies/{c['id']}", json={"version": 1, "training_places": 1},
                           headers=mine)
    assert r.status_code == 200
    active = await new_company(status="active")
    r = await client.patch(f"/companies/{active['id']}",
                           json={"version": active["version"], "training_places": 1},
                           headers=other)
    assert r.status_code == 403  # seen in the public register, not theirs to change
    r = await client.patch(f"/companies/{active['id']}",
                           json={"version": active["version"], "training_places": 2},
                           headers=headers["case_worker"])
    assert r.status_code == 403
    after = await client.get(f"/companies/{active['id']}", headers=headers["officer"])
    assert after.json()["training_places"] == active["training_places"]


# --- verification and deregistration --------------------------------------------------------


async def test_officer_verifies_then_deregisters(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    r = await client.post(f"/companies/{c['id']}/verification",
                          json={"decision": "verified", "note": "Besök gjort",
                                "level": "certified", "valid_until": "2028-12-31"},
                          headers=headers["officer"])
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["status"] == "active"
    assert v["verification"] == {"level": "certified", "by": "officer-1",
                                 "at": v["verification"]["at"], "valid_until": "2028-12-31",
                                 "note": "Besök gjort"}
    r = await client.post(f"/companies/{c['id']}/deregistration",
                          json={"reason": "liquidation", "note": "Beslut 2026-11-01"},
                          headers=headers["officer"])
    assert r.status_code == 200
    d = r.json()
    assert d["status"] == "deregistered"
    assert d["deregistration"]["reason"] == "liquidation"
    assert d["version"] == 3


async def test_rejection_and_wrong_moves_name_allowed(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    r = await client.post(f"/companies/{c['id']}/deregistration", json={"reason": "other"},
                          headers=headers["officer"])
    assert r.status_code == 409
    assert r.json()["allowed"] == ["active", "rejected"]
    r = await client.post(f"/companies/{c['id']}/verification",
                          json={"decision": "rejected", "note": "Uppfyller inte kriterierna"},
                          headers=headers["officer"])
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    r = await client.post(f"/companies/{c['id']}/verification", json={"decision": "verified"},
                          headers=headers["officer"])
    assert r.status_code == 409
    assert r.json()["allowed"] == []


async def test_verification_needs_all_criteria(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company(criteria={
        "runs_business": True, "integration_purpose": True, "participation": None,
        "reinvests_profits": True, "independent_of_public_sector": False})
    assert c["qualifies_as_asf"] is False
    r = await client.post(f"/companies/{c['id']}/verification", json={"decision": "verified"},
                          headers=headers["officer"])
    assert r.status_code == 409
    assert r.json()["unmet_criteria"] == ["participation", "independent_of_public_sector"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("verification", {"decision": "maybe"}, "decision"),
    ("verification", {"decision": "verified", "valid_until": "yesterday"}, "valid_until"),
    ("verification", {"decision": "verified", "valid_until": "2001-01-01"}, "valid_until"),
    ("deregistration", {"reason": "bored"}, "reason"),
    ("deregistration", {}, "reason"),
])
async def test_bad_decisions_are_422(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    path: str, body: dict[str, Any], field: str,
) -> None:
    c = await new_company(status="active" if path == "deregistration" else "pending")
    r = await client.post(f"/companies/{c['id']}/{path}", json=body, headers=headers["officer"])
    assert r.status_code == 422, r.text
    assert fields(r) == [field]
    again = await client.get(f"/companies/{c['id']}", headers=headers["officer"])
    assert again.json()["version"] == c["version"]


async def test_only_officers_decide(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company()
    for role in ("rep", "case_worker", "analyst"):
        r = await client.post(f"/companies/{c['id']}/verification",
                              json={"decision": "verified"}, headers=headers[role])
        assert r.status_code == 403
        r = await client.post(f"/companies/{c['id']}/deregistration",
                              json={"reason": "other"}, headers=headers[role])
        assert r.status_code == 403


@pytest.mark.parametrize("param", ["q", "industry"])
async def test_control_characters_in_list_parameters_are_422(
    client: httpx.AsyncClient, headers: Headers, param: str
) -> None:
    r = await client.get("/companies", params={param: "\x00"}, headers=headers["officer"])
    assert r.status_code == 422
    assert fields(r) == [param]
