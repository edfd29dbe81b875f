"""Who may do what in the registry: every endpoint × every caller, written down once.

The table is checked against the app's routes, so a new endpoint without a row fails."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asf_testing import (
    ANONYMOUS,
    JWT_TEST_SECRET,
    VARIANTS,
    allow,
    api_routes,
    auth,
    everyone,
    fresh_database,
    org_number,
    public,
    serving,
)
from registry.app import create_app
from registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "registry" / "migrations"
OFFICER = auth("registry_officer", sub="officer")

EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/companies"): allow(201, "company_rep", "company_rep_other", "registry_officer"),
    ("GET", "/companies"): everyone(200),
    # A pending company: its own representative and the officers see it; to everybody else
    # it does not exist (an active one is everybody's: tests of who sees what, and public).
    ("GET", "/companies/{company_id}"): {
        **allow(200, "company_rep", "registry_officer", others=404), "anonymous": 401},
    ("PATCH", "/companies/{company_id}"): {
        **allow(200, "company_rep", "registry_officer"), "company_rep_other": 404},
    ("POST", "/companies/{company_id}/verification"): allow(200, "registry_officer"),
    ("POST", "/companies/{company_id}/deregistration"): allow(200, "registry_officer"),
    ("POST", "/companies/import"): allow(201, "registry_officer"),
    ("POST", "/companies/{company_id}/contracts"): allow(201, "company_rep", "registry_officer"),
    ("GET", "/contracts"): everyone(200),
    ("POST", "/learning-examples"): everyone(201),
    ("GET", "/learning-examples"): allow(200, "analyst", "registry_officer"),
    ("GET", "/learning-examples/{example_id}"): allow(200, "analyst", "registry_officer"),
    ("POST", "/learning-examples/{example_id}/publication"): allow(200, "analyst"),
    ("GET", "/public/companies"): public(),
    ("GET", "/public/companies/{company_id}"): public(),
    ("GET", "/public/companies.csv"): public(),
    ("GET", "/public/companies.json"): public(),
    ("GET", "/public/learning-examples"): public(),
    ("GET", "/public/learning-examples/{example_id}"): public(),
    ("GET", "/public/stats"): public(),
    ("GET", "/public/municipalities"): public(),
    ("GET", "/municipalities"): everyone(200),
    ("GET", "/stats"): everyone(200),
    ("GET", "/healthz"): public(),
    ("GET", "/readyz"): public(),
    ("GET", "/metrics"): public(),
    ("GET", "/asyncapi"): public(),
    ("GET", "/openapi.json"): public(),
    ("GET", "/docs"): public(),
    ("GET", "/docs/oauth2-redirect"): public(),
    ("GET", "/redoc"): public(),
}


def company_body() -> dict[str, Any]:
    return {
        "org_number": org_number(), "name": f"Matrisföretaget {random.randint(0, 10**9)}",
        "legal_form": "aktiebolag", "municipality_code": "0180", "industries": ["cleaning"],
        "training_places": 2, "origin": "existing",
        "workforce": {"as_of": "2026-01-01", "employees_total": 1, "engaged_total": 4,
                      "target_group_engaged": 2},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    }


@pytest.fixture(scope="module")
async def app(postgres_url: str, broker_url: str) -> AsyncIterator[FastAPI]:
    async with fresh_database(postgres_url, "registry_access", MIGRATIONS) as dsn:
        application = create_app(RegistrySettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            verification_sweep_interval=0))
        async with serving(application):
            yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://registry") as c:
        yield c


Prepared = tuple[str, dict[str, Any]]


async def new_company(client: httpx.AsyncClient, active: bool = False) -> str:
    r = await client.post("/companies", json=company_body(), headers=OFFICER)
    company_id: str = r.json()["id"]
    if active:
        await client.post(f"/companies/{company_id}/verification", json={"decision": "verified"},
                          headers=OFFICER)
    return company_id


def callers(company_id: str | None) -> dict[str, dict[str, str]]:
    return {
        "case_worker": auth("case_worker", sub="cw", municipality_code="0180"),
        "case_worker_other": auth("case_worker", sub="cw2", municipality_code="1480"),
        "registry_officer": OFFICER,
        "company_rep": auth("company_rep", sub="rep", company_id=company_id
                            or "00000000-0000-4000-8000-00000000000a"),
        "company_rep_other": auth("company_rep", sub="rep2",
                                  company_id="00000000-0000-4000-8000-00000000000b"),
        "analyst": auth("analyst", sub="an"),
        "auditor": auth("auditor", sub="au"),
    }


EXAMPLE = {"municipality_code": "0180", "title": "Exempel", "summary": "Text",
           "collaboration_types": ["other"], "contact": {"name": "N", "email": "n@example.se"}}


async def new_example(client: httpx.AsyncClient, published: bool) -> str:
    r = await client.post("/learning-examples", json=EXAMPLE, headers=OFFICER)
    example_id: str = r.json()["id"]
    if published:
        r = await client.post(f"/learning-examples/{example_id}/publication",
                              json={"decision": "published"}, headers=auth("analyst"))
        assert r.status_code == 200, r.text
    return example_id


async def prepare(client: httpx.AsyncClient, method: str, path: str) -> tuple[str | None, Prepared]:
    """A fresh resource for one cell, and the request that exercises the route on it."""
    if "{example_id}" in path:
        example_id = await new_example(client, published=path.startswith("/public"))
        body = {"json": {"decision": "published"}} if method == "POST" else {}
        return None, (path.replace("{example_id}", example_id), body)
    csv_header = ("org_number,name,legal_form,municipality_code,industries,description,website,"
                  "contact_name,contact_role,contact_email,contact_phone,workforce_as_of,"
                  "employees_total,engaged_total,target_group_engaged,training_places,origin,"
                  "runs_business,integration_purpose,participation_form,"
                  "participation_description,reinvests_profits,independent_of_public_sector\n")
    if "{company_id}" not in path:
        body: dict[str, Any] = {}
        if (method, path) == ("POST", "/companies"):
            body = {"json": company_body()}
        elif path == "/companies/import":
            row = (f"{org_number()},Importerat AB,aktiebolag,0180,cleaning,,,,,,,2026-01-01,1,4,2,"
                   "2,existing,ja,ja,ownership,,ja,ja\n")
            body = {"content": (csv_header + row).encode(),
                    "headers": {"content-type": "text/csv"}}
        elif path == "/learning-examples" and method == "POST":
            body = {"json": EXAMPLE}
        return None, (path, body)
    company_id = await new_company(
        client, active=path.endswith(("deregistration", "contracts")) or path.startswith("/public"))
    concrete = path.replace("{company_id}", company_id)
    bodies: dict[str, dict[str, Any]] = {
        "PATCH": {"json": {"version": 1, "training_places": 3}},
        "verification": {"json": {"decision": "verified"}},
        "deregistration": {"json": {"reason": "other"}},
        "contracts": {"json": {"municipality_code": "0180", "title": "Avtal", "value_sek": 1,
                               "start": "2027-01-01", "reserved": True}},
    }
    key = "PATCH" if method == "PATCH" else path.rsplit("/", 1)[-1]
    return company_id, (concrete, bodies.get(key, {}))


def test_every_route_has_a_row(app: FastAPI) -> None:
    assert api_routes(app) == set(EXPECTED)


CELLS = [(m, p, v) for (m, p) in EXPECTED for v in VARIANTS]


@pytest.mark.parametrize(("method", "path", "caller"), CELLS,
                         ids=[f"{m} {p} {v}" for m, p, v in CELLS])
async def test_access(client: httpx.AsyncClient, method: str, path: str, caller: str) -> None:
    company_id, (url, kwargs) = await prepare(client, method, path)
    headers = dict(kwargs.pop("headers", {}))
    if caller != ANONYMOUS:
        headers.update(callers(company_id)[caller])
    r = await client.request(method, url, headers=headers, **kwargs)
    assert r.status_code == EXPECTED[(method, path)][caller], r.text


