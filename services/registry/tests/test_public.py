"""The public register and the handbook (SPEC 3.1): no token, active companies and published
examples only, public fields only, cacheable, rate-limited, and open data that round-trips."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from asf_testing import serving
from registry.app import create_app
from registry.settings import RegistrySettings

Headers = dict[str, dict[str, str]]

# What may leave the registry without a token, written down here and not taken from the code,
# so that a field added to a public shape by mistake fails this test.
ALLOWED: dict[str, set[str]] = {
    "company": {"id", "org_number", "name", "legal_form", "municipality_code",
                "municipality_name", "county", "industries", "description", "website",
                "contacts", "training_places", "qualifies_as_asf", "reserved_contract_eligible",
                "verification"},
    "county": {"code", "name"},
    "contact": {"name", "role", "email", "phone"},
    "verification": {"level", "valid_until"},
    "example": {"id", "title", "summary", "collaboration_types", "municipality_code",
                "municipality_name", "county", "companies", "published_at"},
    "example_company": {"id", "name"},
    "page": {"items", "next_cursor"},
    "export": {"licence", "licence_url", "produced_at", "columns", "items", "count"},
    "stats": {"counties", "totals"},
    "county_stats": {"county_code", "county_name", "companies_active", "training_places"},
}
CSV_HEADER = ["id", "org_number", "name", "legal_form", "municipality_code",
              "municipality_name", "county_code", "county_name", "industries", "description",
              "website", "training_places", "qualifies_as_asf", "reserved_contract_eligible",
              "verification_level", "verification_valid_until", "contacts"]
SECRET_EMAIL = "intern.kontakt@example.se"
CONTACTS = [
    {"name": "Åsa Öppen", "role": "verksamhetsledare", "email": "asa@example.se",
     "phone": "+46 8 123 45", "public": True},
    {"name": "Intern Person", "role": "ekonomi", "email": SECRET_EMAIL, "phone": "+46 70 000 00"},
]


def check_company(c: dict[str, Any]) -> None:
    assert set(c) == ALLOWED["company"], set(c) ^ ALLOWED["company"]
    assert set(c["county"]) == ALLOWED["county"]
    assert set(c["verification"]) == ALLOWED["verification"]
    for contact in c["contacts"]:
        assert set(contact) == ALLOWED["contact"]


def check_example(e: dict[str, Any]) -> None:
    assert set(e) == ALLOWED["example"], set(e) ^ ALLOWED["example"]
    assert set(e["county"]) == ALLOWED["county"]
    for company in e["companies"]:
        assert set(company) == ALLOWED["example_company"]


async def all_pages(client: httpx.AsyncClient, path: str, **params: Any
                    ) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        assert set(r.json()) == ALLOWED["page"]
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def status_company(client: httpx.AsyncClient, h: Headers, new_company: Callable[..., Any],
                         status: str, **fields: Any) -> dict[str, Any]:
    if status in ("pending", "active", "deregistered"):
        return dict(await new_company(status=status, **fields))
    c = await new_company(**fields)
    r = await client.post(f"/companies/{c['id']}/verification", json={"decision": "rejected"},
                          headers=h["officer"])
    return dict(r.json())


@pytest.fixture
async def register(client: httpx.AsyncClient, headers: Headers,
                   new_company: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    """One company in each status, all with a public and a non-public contact, under a tag."""
    tag = f"pub{uuid.uuid4().hex[:8]}"
    made = {}
    for status in ("active", "pending", "rejected", "deregistered"):
        made[status] = await status_company(
            client, headers, new_company, status, name=f"Öppna {tag} {status}",
            industries=[tag], contacts=CONTACTS,
            description='Café, "second hand" och\nåterbruk; sedan 2019', municipality_code="1480")
    made["tag"] = {"tag": tag}
    return made


async def test_public_responses_carry_only_public_fields(
    client: httpx.AsyncClient, register: dict[str, dict[str, Any]]
) -> None:
    tag = register["tag"]["tag"]
    active = register["active"]
    [listed] = await all_pages(client, "/public/companies", industry=tag)
    check_company(listed)
    one = (await client.get(f"/public/companies/{active['id']}")).json()
    check_company(one)
    assert one == listed
    export = orjson.loads((await client.get("/public/companies.json")).content)
    assert set(export) == ALLOWED["export"]
    for c in export["items"]:
        check_company(c)
    r = await client.get("/public/companies.csv")
    assert next(csv.reader(io.StringIO(r.text))) == CSV_HEADER
    stats = (await client.get("/public/stats")).json()
    assert set(stats) == ALLOWED["stats"]
    for county in [*stats["counties"], stats["totals"]]:
        assert set(county) == ALLOWED["county_stats"]
    # Only the contact the company marked public, and what the company declares about itself.
    assert one["contacts"] == [{"name": "Åsa Öppen", "role": "verksamhetsledare",
                                "email": "asa@example.se", "phone": "+46 8 123 45"}]
    assert one["verification"] == {"level": "verified",
                                   "valid_until": active["verification"]["valid_until"]}
    assert one["municipality_name"] == "Göteborg"
    assert one["county"] == {"code": "14", "name": "Västra Götalands län"}


async def test_only_active_companies_and_public_contacts_ever_appear(
    client: httpx.AsyncClient, register: dict[str, dict[str, Any]]
) -> None:
    tag = register["tag"]["tag"]
    hidden = [register[s] for s in ("pending", "rejected", "deregistered")]
    listed = await all_pages(client, "/public/companies", industry=tag)
    assert [c["id"] for c in listed] == [register["active"]["id"]]
    searched = await all_pages(client, "/public/companies", q=tag, limit=1)
    assert [c["id"] for c in searched] == [register["active"]["id"]]
    for c in hidden:
        r = await client.get(f"/public/companies/{c['id']}")
        assert r.status_code == 404
    bodies = [
        (await client.get("/public/companies", params={"industry": tag})).content,
        (await client.get(f"/public/companies/{register['active']['id']}")).content,
        (await client.get("/public/companies.csv")).content,
        (await client.get("/public/companies.json")).content,
    ]
    for body in bodies:
        assert SECRET_EMAIL.encode() not in body
        assert b"Intern Person" not in body
        for c in hidden:
            assert c["id"].encode() not in body
            assert c["org_number"].encode() not in body
        assert b"registered_by" not in body and b"rep-1" not in body


async def test_the_csv_round_trips_every_public_field(
    client: httpx.AsyncClient, register: dict[str, dict[str, Any]], headers: Headers,
    new_company: Callable[..., Any],
) -> None:
    bare = await new_company(status="active", description=None, website=None, contacts=[],
                             industries=[register["tag"]["tag"], "cleaning"])
    r = await client.get("/public/companies.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "charset=utf-8" in r.headers["content-type"]
    assert r.headers["content-disposition"].startswith('attachment; filename="asf-register-')
    assert r.headers["x-produced-at"]
    assert "creativecommons.org/publicdomain/zero" in r.headers["link"]
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8")))}
    for company in (register["active"], bare):
        expected = (await client.get(f"/public/companies/{company['id']}")).json()
        row = rows[company["id"]]
        assert from_csv(row) == expected
    assert register["pending"]["id"] not in rows
    export = orjson.loads((await client.get("/public/companies.json")).content)
    assert export["licence"] == "CC0-1.0"
    assert export["columns"] == CSV_HEADER
    assert export["count"] == len(export["items"]) == len(rows)
    assert [c["id"] for c in export["items"]] == list(rows)  # same order: name, id
    by_id = {c["id"]: c for c in export["items"]}
    assert by_id[bare["id"]] == from_csv(rows[bare["id"]])


def from_csv(row: dict[str, str]) -> dict[str, Any]:
    """A public company as read back from a CSV row, by the documented column rules."""
    def opt(v: str) -> str | None:
        return v or None

    return {
        "id": row["id"], "org_number": row["org_number"], "name": row["name"],
        "legal_form": row["legal_form"], "municipality_code": row["municipality_code"],
        "municipality_name": row["municipality_name"],
        "county": {"code": row["county_code"], "name": row["county_name"]},
        "industries": row["industries"].split(";") if row["industries"] else [],
        "description": opt(row["description"]), "website": opt(row["website"]),
        "contacts": orjson.loads(row["contacts"]),
        "training_places": int(row["training_places"]),
        "qualifies_as_asf": {"true": True, "false": False}[row["qualifies_as_asf"]],
        "reserved_contract_eligible": {"true": True, "false": False}[
            row["reserved_contract_eligible"]],
        "verification": {"level": row["verification_level"],
                         "valid_until": opt(row["verification_valid_until"])},
    }


async def test_filters_and_pages(
    client: httpx.AsyncClient, new_company: Callable[..., Any]
) -> None:
    tag = f"flt{uuid.uuid4().hex[:8]}"
    eligible = {"as_of": "2026-01-01", "employees_total": 5, "engaged_total": 10,
                "target_group_engaged": 5}
    not_eligible = {**eligible, "target_group_engaged": 1}
    made = [await new_company(status="active", name=f"Filter {tag} {i:02d}", industries=[tag],
                              municipality_code=("0180", "1480", "1280")[i % 3],
                              workforce=eligible if i % 2 else not_eligible) for i in range(7)]
    everything = await all_pages(client, "/public/companies", industry=tag, limit=2)
    assert [c["name"] for c in everything] == sorted(c["name"] for c in made)
    stockholm = await all_pages(client, "/public/companies", industry=tag, county_code="01")
    assert {c["municipality_code"] for c in stockholm} == {"0180"} and len(stockholm) == 3
    gbg = await all_pages(client, "/public/companies", industry=tag, municipality_code="1480")
    assert len(gbg) == 2
    eligible_ones = await all_pages(client, "/public/companies", industry=tag,
                                    reserved_contract_eligible="true")
    assert {c["name"] for c in eligible_ones} == {c["name"] for c in made[1::2]}
    assert all(c["reserved_contract_eligible"] for c in eligible_ones)
    for bad in ({"county_code": "1"}, {"cursor": "nope!"}, {"limit": 0},
                {"reserved_contract_eligible": "kanske"}):
        r = await client.get("/public/companies", params=bad)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == next(iter(bad))


async def test_cacheable_with_an_etag_and_304(
    client: httpx.AsyncClient, headers: Headers, register: dict[str, dict[str, Any]]
) -> None:
    active = register["active"]
    for path in (f"/public/companies/{active['id']}", "/public/companies.csv",
                 "/public/companies.json", "/public/companies?industry=" + register["tag"]["tag"]):
        first = await client.get(path)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=60"
        etag = first.headers["etag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert (await client.get(path, headers={"If-None-Match": '"other", ' + etag})
                ).status_code == 304
        assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200

    etags = {p: (await client.get(p)).headers["etag"]
             for p in (f"/public/companies/{active['id']}", "/public/companies.csv")}
    r = await client.patch(f"/companies/{active['id']}",
                           json={"version": active["version"], "description": "Ändrad"},
                           headers=headers["rep"])
    assert r.status_code == 200
    for path, etag in etags.items():
        changed = await client.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != etag


async def test_no_token_is_needed_and_a_bad_one_does_not_matter(
    client: httpx.AsyncClient, register: dict[str, dict[str, Any]]
) -> None:
    for h in ({}, {"Authorization": "Bearer not-a-token"}):
        r = await client.get(f"/public/companies/{register['active']['id']}", headers=h)
        assert r.status_code == 200


# --- the rate limit -------------------------------------------------------------------------


@pytest.fixture
async def replicas(registry_settings: RegistrySettings) -> AsyncIterator[list[FastAPI]]:
    """Two registry replicas on the one database, each allowing 5 requests a minute."""
    settings = registry_settings.model_copy(update={"public_rate_limit": 5,
                                                    "public_rate_window": 60})
    apps = [create_app(settings), create_app(settings)]
    async with serving(apps[0]), serving(apps[1]):
        yield apps


def from_address(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://registry")


async def test_the_rate_limit_is_per_address_and_shared_by_replicas(
    replicas: list[FastAPI]
) -> None:
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    async with from_address(replicas[0], address) as a, from_address(replicas[1], address) as b:
        for client in (a, b, a, b, a):
            assert (await client.get("/public/stats")).status_code == 200
        refused = await b.get("/public/companies")
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "at most 5 requests in 60 s" in refused.json()["detail"]
        assert (await a.get("/public/companies.csv")).status_code == 429
    async with from_address(replicas[1], address.rsplit(".", 1)[0] + ".8") as other:
        assert (await other.get("/public/stats")).status_code == 200


# --- the handbook ---------------------------------------------------------------------------


async def test_the_handbook_shows_published_examples_without_the_submitter(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    active = await new_company(status="active")
    pending = await new_company()
    tag = uuid.uuid4().hex[:8]
    example = {"municipality_code": "2480", "company_ids": [active["id"], pending["id"]],
               "summary": "Kommunen och kooperativet driver tvätteriet tillsammans.",
               "collaboration_types": ["municipal_spinoff", "work_training"],
               "contact": {"name": "Sara Inskickare", "email": "sara@kommun.example.se"}}
    ids = {}
    for decision in ("published", "declined", None):
        r = await client.post("/learning-examples", json={**example, "title": f"{tag} {decision}"},
                              headers=headers["case_worker"])
        assert r.status_code == 201, r.text
        ids[decision] = r.json()["id"]
        if decision:
            r = await client.post(f"/learning-examples/{ids[decision]}/publication",
                                  json={"decision": decision}, headers=headers["analyst"])
            assert r.status_code == 200, r.text

    listed = await all_pages(client, "/public/learning-examples", q=tag)
    assert [e["id"] for e in listed] == [ids["published"]]
    [shown] = listed
    check_example(shown)
    assert shown["companies"] == [{"id": active["id"], "name": active["name"]}]
    assert shown["county"] == {"code": "24", "name": "Västerbottens län"}
    one = await client.get(f"/public/learning-examples/{ids['published']}")
    assert one.json() == shown
    assert one.headers["cache-control"] == "public, max-age=60"
    for hidden in (ids["declined"], ids[None]):
        assert (await client.get(f"/public/learning-examples/{hidden}")).status_code == 404
    for body in (one.content, (await client.get("/public/learning-examples")).content):
        assert b"sara@kommun.example.se" not in body and b"Sara Inskickare" not in body
    by_type = await all_pages(client, "/public/learning-examples", q=tag,
                              collaboration_type="municipal_spinoff", county_code="24")
    assert [e["id"] for e in by_type] == [ids["published"]]
    assert await all_pages(client, "/public/learning-examples", q=tag,
                           collaboration_type="founding_support") == []


@pytest.mark.parametrize("path", ["/public/companies", "/public/learning-examples"])
async def test_control_characters_in_a_search_are_422(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path, params={"q": "a\x00b"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "q"


async def test_the_export_reads_the_register_in_batches_each_company_once(
    registry_app: FastAPI, new_company: Callable[..., Any]
) -> None:
    for _ in range(7):
        await new_company(status="active")
    registry = registry_app.state.registry
    batches = [[c["id"] for c in batch] async for batch in registry.public_register(batch=3)]
    ids = [i for b in batches for i in b]
    assert all(len(b) == 3 for b in batches[:-1])
    active = await registry_app.state.runtime.pool.fetch(
        "SELECT id::text FROM companies WHERE status = 'active' ORDER BY id")
    assert ids == [r["id"] for r in active]
