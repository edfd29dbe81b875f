"""Registry test fixtures: one migrated database and one running app for the session."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asf_testing import JWT_TEST_SECRET, auth, fresh_database, org_number, serving
from registry.app import create_app
from registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@pytest.fixture(scope="session")
def registry_migrations() -> Path:
    return MIGRATIONS


@pytest.fixture(scope="session")
async def registry_db(postgres_url: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_url, "registry_test", MIGRATIONS) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def registry_settings(registry_db: str, broker_url: str) -> RegistrySettings:
    return RegistrySettings(
        database_url=registry_db, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
        relay_poll_interval=0.2, log_format="json", verification_sweep_interval=0,
        public_rate_limit=100_000,
    )


@pytest.fixture(scope="session")
async def registry_app(registry_settings: RegistrySettings) -> AsyncIterator[FastAPI]:
    app = create_app(registry_settings)
    async with serving(app):
        yield app


@pytest.fixture
async def client(registry_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=registry_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        yield c


def company_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_number": org_number(),
        "name": f"Testföretaget {random.randint(1, 10**9)}",
        "legal_form": "ekonomisk_forening",
        "municipality_code": "0180",
        "industries": ["second_hand", "recycling"],
        "description": "Second hand och återbruk",
        "website": "https://example.se",
        "contacts": [{"name": "Anna Kontakt", "role": "manager", "email": "anna@example.se",
                      "phone": "+46 8 123 45"}],
        "workforce": {"as_of": "2026-01-01", "employees_total": 10, "engaged_total": 30,
                      "target_group_engaged": 12},
        "training_places": 5,
        "origin": "founded",
        "criteria": {
            "runs_business": True, "integration_purpose": True,
            "participation": {"form": "ownership"}, "reinvests_profits": True,
            "independent_of_public_sector": True,
        },
    }
    body.update(overrides)
    return body


OFFICER = auth("registry_officer", sub="officer-1")
REP = auth("company_rep", sub="rep-1")
CASE_WORKER = auth("case_worker", sub="cw-1", municipality_code="0180")
ANALYST = auth("analyst", sub="analyst-1")


@pytest.fixture
def new_company(client: httpx.AsyncClient) -> Callable[..., Any]:
    """Register a company over HTTP (and optionally verify it); returns the JSON."""

    async def make(status: str = "pending", headers: dict[str, str] | None = None,
                   **overrides: Any) -> dict[str, Any]:
        r = await client.post("/companies", json=company_body(**overrides),
                              headers=headers or REP)
        assert r.status_code == 201, r.text
        company: dict[str, Any] = r.json()
        if status in ("active", "deregistered"):
            r = await client.post(f"/companies/{company['id']}/verification",
                                  json={"decision": "verified"}, headers=OFFICER)
            assert r.status_code == 200, r.text
            company = r.json()
        if status == "deregistered":
            r = await client.post(f"/companies/{company['id']}/deregistration",
                                  json={"reason": "bankruptcy"}, headers=OFFICER)
            assert r.status_code == 200, r.text
            company = r.json()
        return company

    return make


@pytest.fixture
def headers() -> dict[str, dict[str, str]]:
    return {"officer": OFFICER, "rep": REP, "case_worker": CASE_WORKER, "analyst": ANALYST}


@pytest.fixture
def body_factory() -> Callable[..., dict[str, Any]]:
    return company_body
