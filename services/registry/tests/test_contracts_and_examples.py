"""Reserved contracts, learning examples, municipalities, statistics, operations endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from asf_testing import auth, event_tap

Headers = dict[str, dict[str, str]]

CONTRACT = {"municipality_code": "0180", "title": "Lokalvård förskolor",
            "procurement_reference": "KS-2026/114", "value_sek": 1_200_000,
            "start": "2027-01-01", "end": "2028-12-31", "reserved": True}


async def test_contract_for_an_active_company_is_published(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    broker_url: str,
) -> None:
    c = await new_company(status="active")
    async with event_tap(broker_url, "registry.contract.awarded.v1") as tap:
        r = await client.post(f"/companies/{c['id']}/contracts", json=CONTRACT,
                              headers=headers["officer"])
        assert r.status_code == 201, r.text
        contract = r.json()
        bodies = await tap.wait_for(lambda b: any(e["aggregate_id"] == contract["id"] for e in b))
    event = next(e for e in bodies if e["aggregate_id"] == contract["id"])
    assert event["payload"]["company_name"] == c["name"]
    assert event["payload"]["reserved"] is True
    listed = await client.get("/contracts", params={"company_id": c["id"]},
                              headers=headers["case_worker"])
    assert [x["id"] for x in listed.json()["items"]] == [contract["id"]]


async def test_contract_rules(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    pending = await new_company()
    r = await client.post(f"/companies/{pending['id']}/contracts", json=CONTRACT,
                          headers=headers["officer"])
    assert r.status_code == 409
    active = await new_company(status="active")
    r = await client.post(f"/companies/{active['id']}/contracts",
                          json={**CONTRACT, "end": "2026-01-01"}, headers=headers["officer"])
    assert r.status_code == 422
    r = await client.post(f"/companies/{active['id']}/contracts",
                          json={**CONTRACT, "value_sek": -1, "municipality_code": "0000"},
                          headers=headers["officer"])
    assert {e["field"] for e in r.json()["errors"]} == {"value_sek", "municipality_code"}
    r = await client.post(f"/companies/{active['id']}/contracts", json=CONTRACT,
                          headers=headers["case_worker"])
    assert r.status_code == 403
    own_rep = auth("company_rep", sub="someone", company_id=active["id"])
    r = await client.post(f"/companies/{active['id']}/contracts", json=CONTRACT, headers=own_rep)
    assert r.status_code == 201


async def test_contract_list_pages(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    c = await new_company(status="active")
    for i in range(3):
        await client.post(f"/companies/{c['id']}/contracts",
                          json={**CONTRACT, "title": f"Avtal {i}"}, headers=headers["officer"])
    first = (await client.get("/contracts", params={"company_id": c["id"], "limit": 2},
                              headers=headers["officer"])).json()
    assert [x["title"] for x in first["items"]] == ["Avtal 0", "Avtal 1"]
    second = (await client.get("/contracts", params={"company_id": c["id"], "limit": 2,
                                                     "cursor": first["next_cursor"]},
                               headers=headers["officer"])).json()
    assert [x["title"] for x in second["items"]] == ["Avtal 2"]
    assert second["next_cursor"] is None


EXAMPLE = {"municipality_code": "1480", "title": "Från dagverksamhet till eget kooperativ",
           "summary": "Kommunen stöttade starten av ett kooperativ.",
           "collaboration_types": ["founding_support", "work_training"],
           "contact": {"name": "Eva Inlämnare", "email": "eva@goteborg.example"}}


@pytest.mark.parametrize("role", ["case_worker", "rep", "analyst", "officer"])
async def test_any_signed_in_role_submits_a_learning_example(
    client: httpx.AsyncClient, headers: Headers, role: str
) -> None:
    r = await client.post("/learning-examples", json=EXAMPLE, headers=headers[role])
    assert r.status_code == 201, r.text


async def test_learning_example_is_published_and_listed_for_analysts(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any],
    broker_url: str,
) -> None:
    c = await new_company(status="active")
    async with event_tap(broker_url, "registry.learning_example.submitted.v1") as tap:
        r = await client.post("/learning-examples", json={**EXAMPLE, "company_ids": [c["id"]]},
                              headers=headers["case_worker"])
        example = r.json()
        bodies = await tap.wait_for(lambda b: any(e["aggregate_id"] == example["id"] for e in b))
    event = next(e for e in bodies if e["aggregate_id"] == example["id"])
    assert event["payload"]["contact"] == EXAMPLE["contact"]
    assert event["payload"]["company_ids"] == [c["id"]]
    listed = await client.get("/learning-examples", params={"municipality_code": "1480",
                                                            "limit": 500},
                              headers=headers["analyst"])
    assert example["id"] in [x["id"] for x in listed.json()["items"]]
    assert (await client.get("/learning-examples", headers=headers["case_worker"])
            ).status_code == 403


async def test_learning_example_bad_input(client: httpx.AsyncClient, headers: Headers) -> None:
    r = await client.post("/learning-examples", json={
        **EXAMPLE, "company_ids": ["00000000-0000-4000-8000-000000000009"]},
        headers=headers["analyst"])
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "company_ids[0]", "message": "no company with this id"}]
    r = await client.post("/learning-examples", json={
        **EXAMPLE, "collaboration_types": ["lunch"], "contact": {"name": "X", "email": "nope"}},
        headers=headers["analyst"])
    assert {e["field"] for e in r.json()["errors"]} == {"collaboration_types[0]", "contact.email"}


@pytest.mark.parametrize("decision", ["published", "declined"])
async def test_an_analyst_decides_publication_once_and_the_submitter_is_told(
    client: httpx.AsyncClient, headers: Headers, broker_url: str, decision: str
) -> None:
    r = await client.post("/learning-examples", json=EXAMPLE, headers=headers["rep"])
    example = r.json()
    assert example["status"] == "submitted"
    assert example["version"] == 1
    async with event_tap(broker_url, f"registry.learning_example.{decision}.v1") as tap:
        r = await client.post(f"/learning-examples/{example['id']}/publication",
                              json={"decision": decision, "note": "Tack!\nVi hör av oss."},
                              headers=headers["analyst"])
        assert r.status_code == 200, r.text
        bodies = await tap.wait_for(lambda b: any(e["aggregate_id"] == example["id"] for e in b))
    decided = r.json()
    assert decided["status"] == decision
    assert decided["version"] == 2
    assert decided["publication"]["by"] == "analyst-1"
    [event] = [e for e in bodies if e["aggregate_id"] == example["id"]]
    assert event["event_type"] == f"registry.learning_example.{decision}"
    assert event["aggregate_version"] == 2
    assert event["payload"]["decision"] == decision
    assert event["payload"]["note"] == "Tack!\nVi hör av oss."
    assert event["payload"]["contact"] == EXAMPLE["contact"]  # the submitter gets an email
    again = await client.post(f"/learning-examples/{example['id']}/publication",
                              json={"decision": "published"}, headers=headers["analyst"])
    assert again.status_code == 409
    assert again.json()["current_status"] == decision
    listed = await client.get("/learning-examples", params={"status": decision, "limit": 500},
                              headers=headers["analyst"])
    assert example["id"] in {x["id"] for x in listed.json()["items"]}
    one = await client.get(f"/learning-examples/{example['id']}", headers=headers["officer"])
    assert one.json() == decided
    assert (await client.get("/learning-examples/00000000-0000-4000-8000-000000000001",
                             headers=headers["analyst"])).status_code == 404


async def test_publication_refuses_bad_input_and_unknown_examples(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    example = (await client.post("/learning-examples", json=EXAMPLE,
                                 headers=headers["rep"])).json()
    url = f"/learning-examples/{example['id']}/publication"
    for body, field in (({"decision": "maybe"}, "decision"),
                        ({"decision": "published", "note": "bell\x07"}, "note"),
                        ({}, "decision")):
        r = await client.post(url, json=body, headers=headers["analyst"])
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
    r = await client.post("/learning-examples/00000000-0000-4000-8000-000000000001/publication",
                          json={"decision": "published"}, headers=headers["analyst"])
    assert r.status_code == 404
    for role in ("officer", "rep", "case_worker"):
        r = await client.post(url, json={"decision": "published"}, headers=headers[role])
        assert r.status_code == 403
    still = await client.get("/learning-examples", params={"status": "submitted", "limit": 500},
                             headers=headers["analyst"])
    assert example["id"] in {x["id"] for x in still.json()["items"]}


async def test_municipalities(client: httpx.AsyncClient, headers: Headers) -> None:
    r = await client.get("/municipalities", headers=headers["case_worker"])
    items = r.json()["items"]
    assert len(items) == 290
    assert len({m["county_code"] for m in items}) == 21
    assert {"code": "2584", "name": "Kiruna", "county_code": "25",
            "county_name": "Norrbottens län"} in items


async def test_stats_count_active_companies_per_county(
    client: httpx.AsyncClient, headers: Headers, new_company: Callable[..., Any]
) -> None:
    async def gotland() -> dict[str, Any]:
        r = await client.get("/stats", headers=headers["analyst"])
        return next(c for c in r.json()["counties"] if c["county_code"] == "09")

    before = await gotland()
    await new_company(status="active", municipality_code="0980", training_places=7)
    await new_company(municipality_code="0980", training_places=100)
    after = await gotland()
    assert after["county_name"] == "Gotlands län"
    assert after["companies_active"] == before["companies_active"] + 1
    assert after["companies_pending"] == before["companies_pending"] + 1
    assert after["training_places"] == before["training_places"] + 7
    assert after["employees"] == before["employees"] + 10
    r = await client.get("/stats", headers=headers["analyst"])
    assert len(r.json()["counties"]) == 21


async def test_operations_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "broker": True, "consumers": True,
                                      "outbox_relay": True}
    metrics = (await client.get("/metrics")).text
    assert "http_requests_total" in metrics
    assert "outbox_backlog" in metrics
    docs = await client.get("/openapi.json")
    assert "/companies/{company_id}/verification" in docs.json()["paths"]


async def test_oversized_body_is_413(client: httpx.AsyncClient, headers: Headers) -> None:
    r = await client.post("/learning-examples", content=b"{" + b" " * 2_000_000 + b"}",
                          headers={**headers["analyst"], "content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["title"] == "Content too large"


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_asyncapi_lists_the_registry_events(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/asyncapi")).json()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "registry.company.registered.v1" in addresses
