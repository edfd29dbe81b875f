"""Verification expiry (SPEC 3.1): a warning 30 days before `valid_until`, the expiry the day
after it; each exactly once per company and decision, however many sweeps run at once.

The sweep is driven by an injected clock, against a database of its own (a sweep acts on
every company in the database)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from asf_kit.db import create_pool
from asf_testing import JWT_TEST_SECRET, auth, event_tap, fresh_database, serving
from registry.app import create_app
from registry.domain import local_date
from registry.service import Registry
from registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
OFFICER = auth("registry_officer", sub="officer-1")
REP = auth("company_rep", sub="rep-1")
TODAY = local_date(datetime.now(UTC))


def at(day: date) -> datetime:
    """Noon in Sweden on `day`, as the injected clock tells it."""
    return datetime.combine(day, time(11, 0), tzinfo=UTC)


@pytest.fixture(scope="module")
async def expiry_db(postgres_url: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_url, "registry_expiry", MIGRATIONS) as dsn:
        yield dsn


def settings_for(dsn: str, broker_url: str, **extra: Any) -> RegistrySettings:
    fields: dict[str, Any] = {"verification_sweep_interval": 0, **extra}
    return RegistrySettings(database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
                            relay_poll_interval=0.2, **fields)


@pytest.fixture(scope="module")
async def app(expiry_db: str, broker_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings_for(expiry_db, broker_url))
    async with serving(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://registry") as c:
        yield c


def pool_of(app: FastAPI) -> asyncpg.Pool:
    pool: asyncpg.Pool = app.state.runtime.pool
    return pool


def registry_at(app: FastAPI, day: date) -> Registry:
    return Registry(lambda: pool_of(app), clock=lambda: at(day))


Body = Callable[..., dict[str, Any]]


async def verified_until(client: httpx.AsyncClient, body: Body, until: date, n: int = 1
                         ) -> list[str]:
    ids = []
    for _ in range(n):
        r = await client.post("/companies", json=body(), headers=REP)
        assert r.status_code == 201, r.text
        company_id = r.json()["id"]
        r = await client.post(f"/companies/{company_id}/verification",
                              json={"decision": "verified", "valid_until": until.isoformat()},
                              headers=OFFICER)
        assert r.status_code == 200, r.text
        ids.append(company_id)
    return ids


async def notices(app: FastAPI, ids: list[str]) -> dict[tuple[str, str], int]:
    """(company id, event type) → how many such events are in the outbox."""
    rows = await pool_of(app).fetch(
        """
        SELECT convert_from(body, 'UTF8')::jsonb->>'aggregate_id' AS id, event_type,
               count(*) AS n
        FROM outbox
        WHERE event_type LIKE 'registry.company.verification_%'
          AND convert_from(body, 'UTF8')::jsonb->>'aggregate_id' = ANY($1::text[])
        GROUP BY 1, 2
        """, ids)
    return {(r["id"], r["event_type"].rsplit("_", 1)[-1]): r["n"] for r in rows}


async def test_the_default_validity_is_two_years(
    client: httpx.AsyncClient, body_factory: Callable[..., dict[str, Any]]
) -> None:
    r = await client.post("/companies", json=body_factory(), headers=REP)
    r = await client.post(f"/companies/{r.json()['id']}/verification",
                          json={"decision": "verified"}, headers=OFFICER)
    until = date.fromisoformat(r.json()["verification"]["valid_until"])
    decided = local_date(datetime.fromisoformat(r.json()["verification"]["at"]))
    assert until == decided.replace(year=decided.year + 2) or (
        decided.month == 2 and decided.day == 29)


async def test_warned_30_days_before_and_expired_the_day_after(
    app: FastAPI, client: httpx.AsyncClient, broker_url: str, body_factory: Body
) -> None:
    until = TODAY + timedelta(days=100)
    [company_id] = await verified_until(client, body_factory, until)

    assert (await registry_at(app, until - timedelta(days=31)).sweep_verifications()).warned == 0
    assert await notices(app, [company_id]) == {}

    async with event_tap(broker_url, "registry.company.verification_expiring.v1",
                         "registry.company.verification_expired.v1") as tap:
        await registry_at(app, until - timedelta(days=30)).sweep_verifications()
        bodies = await tap.wait_for(lambda b: any(e["aggregate_id"] == company_id for e in b))
        [warning] = [e for e in bodies if e["aggregate_id"] == company_id]
        assert warning["event_type"] == "registry.company.verification_expiring"
        assert warning["payload"]["days_left"] == 30
        assert warning["payload"]["valid_until"] == until.isoformat()
        assert warning["payload"]["contacts"][0]["email"] == "anna@example.se"

        # Later sweeps, up to the last day, warn no more; the company stays verified.
        for day in (until - timedelta(days=29), until):
            await registry_at(app, day).sweep_verifications()
        company = (await client.get(f"/companies/{company_id}", headers=OFFICER)).json()
        assert company["verification"]["level"] == "verified"

        await registry_at(app, until + timedelta(days=1)).sweep_verifications()
        bodies = await tap.wait_for(lambda b: any(
            e["aggregate_id"] == company_id and e["event_type"].endswith("expired")
            for e in b))
    [expired] = [e for e in bodies if e["aggregate_id"] == company_id
                 and e["event_type"].endswith("expired")]
    assert expired["payload"]["expired_on"] == (until + timedelta(days=1)).isoformat()
    assert expired["payload"]["verification_level"] == "self_declared"
    assert expired["payload"]["needs_review"] is True
    company = (await client.get(f"/companies/{company_id}", headers=OFFICER)).json()
    assert company["status"] == "active"
    assert company["verification"]["level"] == "self_declared"
    assert company["needs_review"] is True
    assert expired["aggregate_version"] == company["version"]
    await registry_at(app, until + timedelta(days=40)).sweep_verifications()
    assert await notices(app, [company_id]) == {(company_id, "expiring"): 1,
                                                (company_id, "expired"): 1}


async def test_two_sweeps_racing_announce_each_once(
    app: FastAPI, client: httpx.AsyncClient, expiry_db: str, body_factory: Body
) -> None:
    """Two replicas' sweeps, each with its own pool, at the same time, in small batches."""
    until = TODAY + timedelta(days=120)
    ids = await verified_until(client, body_factory, until, n=24)
    other = await create_pool(expiry_db, 1, 4)
    try:
        for day in (until - timedelta(days=5), until + timedelta(days=2)):
            replicas = [registry_at(app, day), Registry(lambda: other, clock=lambda d=day: at(d))]
            await asyncio.gather(*(r.sweep_verifications(batch=3) for r in replicas * 2))
    finally:
        await other.close()
    assert await notices(app, ids) == {
        **{(i, "expiring"): 1 for i in ids}, **{(i, "expired"): 1 for i in ids}}


async def test_a_new_decision_is_warned_again_once(
    app: FastAPI, client: httpx.AsyncClient, body_factory: Body
) -> None:
    until = TODAY + timedelta(days=200)
    [company_id] = await verified_until(client, body_factory, until)
    await registry_at(app, until - timedelta(days=10)).sweep_verifications()
    # Renewed before it ran out: a new decision, a new warning when that one nears its end.
    renewed = until + timedelta(days=365)
    r = await client.post(f"/companies/{company_id}/verification",
                          json={"decision": "verified", "valid_until": renewed.isoformat()},
                          headers=OFFICER)
    assert r.status_code == 200, r.text
    await registry_at(app, until + timedelta(days=1)).sweep_verifications()
    company = (await client.get(f"/companies/{company_id}", headers=OFFICER)).json()
    assert company["verification"]["level"] == "verified"  # the renewal holds
    for _ in range(2):
        await registry_at(app, renewed - timedelta(days=3)).sweep_verifications()
    assert await notices(app, [company_id]) == {(company_id, "expiring"): 2}


async def test_the_app_sweeps_by_itself_on_its_interval(
    app: FastAPI, client: httpx.AsyncClient, expiry_db: str, broker_url: str,
    body_factory: Body,
) -> None:
    until = TODAY + timedelta(days=300)
    [company_id] = await verified_until(client, body_factory, until)
    day = until + timedelta(days=1)
    sweeping = create_app(settings_for(expiry_db, broker_url, verification_sweep_interval=0.2),
                          clock=lambda: at(day))
    async with serving(sweeping):
        for _ in range(100):
            if (company_id, "expired") in await notices(app, [company_id]):
                break
            await asyncio.sleep(0.1)
    assert (await notices(app, [company_id]))[(company_id, "expired")] == 1


async def test_the_cli_sweeps(app: FastAPI, client: httpx.AsyncClient, expiry_db: str,
                              body_factory: Body) -> None:
    until = TODAY + timedelta(days=400)
    ids = await verified_until(client, body_factory, until, n=2)
    day = until - timedelta(days=20)
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "registry.cli", "sweep-verifications",
                         "--today", day.isoformat()],
        env={**os.environ, "APP_ENV": "development", "DATABASE_URL": expiry_db,
             "LOG_FORMAT": "console"},
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "2 warned of expiry" in result.stdout
    assert await notices(app, ids) == {(i, "expiring"): 1 for i in ids}
