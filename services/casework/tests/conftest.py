"""Casework test fixtures: one migrated database and one running app per session, real
PostgreSQL and RabbitMQ, and helpers to feed registry events and make participants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from asf_contracts import EXCHANGE, Envelope
from asf_contracts import registry as reg
from asf_testing import (
    DATA_KEY,
    JWT_TEST_SECRET,
    EventTap,
    auth,
    captured_logs,
    event_tap,
    fresh_database,
    identity_number,
    serving,
    unique_namespace,
)
from casework.app import create_app
from casework.service import Casework
from casework.settings import CaseworkSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

@dataclass
class Env:
    app: FastAPI
    client: httpx.AsyncClient
    settings: CaseworkSettings
    casework: Casework
    exchange: aio_pika.abc.AbstractExchange

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = self.app.state.runtime.pool
        return pool


@pytest.fixture(scope="session")
def log_lines() -> Iterator[list[str]]:
    """Logging configured as in production, with each line also kept for inspection."""
    with captured_logs("casework") as lines:
        yield lines


@pytest.fixture(scope="session")
async def published(broker_url: str) -> AsyncIterator[EventTap]:
    """Every casework event published during the session."""
    async with event_tap(broker_url, "casework.#") as tap:
        yield tap


@pytest.fixture(scope="session")
def personal_data_used() -> list[str]:
    """Names, numbers and contact details given to casework by the `refer` fixture."""
    return []


@pytest.fixture(scope="session")
async def env(postgres_url: str, broker_url: str, log_lines: list[str],
              published: EventTap) -> AsyncIterator[Env]:
    async with fresh_database(postgres_url, "casework_test", MIGRATIONS) as dsn:
        namespace = unique_namespace()
        settings = CaseworkSettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            queue_namespace=namespace, relay_poll_interval=0.2, casework_data_key=DATA_KEY,
            follow_up_sweep_interval=0, plan_review_sweep_interval=0,
            statement_sweep_interval=0,  # the tests sweep with the dates they need
        )
        app = create_app(settings)
        connection = await aio_pika.connect(broker_url)
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            async with serving(app, "http://casework") as client:
                yield Env(app, client, settings, app.state.casework, exchange)
        finally:
            await connection.close()


@pytest.fixture
def client(env: Env) -> httpx.AsyncClient:
    return env.client


def worker(municipality: str = "0180", sub: str | None = None) -> dict[str, str]:
    """Headers of a case worker in `municipality` (a fresh sub unless given)."""
    return auth("case_worker", sub=sub or f"cw-{uuid.uuid4().hex[:8]}",
                municipality_code=municipality)


@pytest.fixture
def case_worker() -> Callable[..., dict[str, str]]:
    return worker


def company_payload(company_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(company_id), "org_number": "769612-3450", "name": "Testföretaget Ek. För.",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180", "county_code": "01",
        "industries": ["cafe_restaurant"], "training_places": 2, "origin": "existing",
        "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": True,
        "verification_level": "self_declared",
        "contacts": [{"name": "Kontakt", "email": "kontakt@example.se"}],
    }
    body.update(changes)
    return body


class Registry:
    """Publishes registry company events to `asf.events`, as the registry's relay would."""

    def __init__(self, env: Env) -> None:
        self.env = env

    async def publish(self, event_type: str, payload: dict[str, Any], version: int,
                      event_id: uuid.UUID | None = None) -> Envelope:
        envelope = Envelope(
            event_id=event_id or uuid.uuid4(), event_type=event_type, event_version=1,
            producer="registry", aggregate_id=uuid.UUID(payload["id"]),
            aggregate_version=version, payload=payload,
        )
        await self.env.exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
                             content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=envelope.routing_key,
        )
        return envelope

    async def company(self, company_id: uuid.UUID) -> asyncpg.Record | None:
        async with self.env.pool.acquire() as conn:
            return await conn.fetchrow("SELECT * FROM companies WHERE id = $1", company_id)

    async def wait_version(self, company_id: uuid.UUID, version: int,
                           within: float = 10.0) -> asyncpg.Record:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            row = await self.company(company_id)
            if row is not None and row["version"] >= version:
                return row
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"company {company_id} never reached version {version}")
            await asyncio.sleep(0.05)

    async def active_company(self, places: int = 2, name: str = "Testföretaget") -> uuid.UUID:
        """A company registered (v1) and verified (v2), in the read model."""
        cid = uuid.uuid4()
        await self.publish(reg.COMPANY_REGISTERED, company_payload(
            cid, training_places=places, name=name), 1)
        await self.publish(reg.COMPANY_VERIFIED, company_payload(
            cid, training_places=places, name=name, status="active",
            verification_level="verified"), 2)
        await self.wait_version(cid, 2)
        return cid


@pytest.fixture
def registry(env: Env) -> Registry:
    return Registry(env)


Refer = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def refer(client: httpx.AsyncClient, personal_data_used: list[str]) -> Refer:
    """POST a new participant with valid, unique data; returns the created resource."""

    async def make(headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "given_name": "Testa", "family_name": "Testsson",
            "personal_identity_number": identity_number(),
            "phone": "070-123 45 67", "email": "testa@example.se",
            "referral_source": "social_services",
        }
        body.update(overrides)
        number = body["personal_identity_number"]
        personal_data_used.extend([
            body["given_name"], body["family_name"], number, number.replace("-", ""),
            number[2:], number[2:].replace("-", ""), body.get("email") or "",
            body.get("phone") or ""])
        r = await client.post("/participants", json=body, headers=headers)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    return make


Move = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def move(client: httpx.AsyncClient) -> Move:
    """POST a transition; returns the response."""

    async def go(pid: str, headers: dict[str, str], to: str, **extra: Any) -> httpx.Response:
        return await client.post(f"/participants/{pid}/transitions",
                                 json={"to": to, **extra}, headers=headers)

    return go


@pytest.fixture
def place(client: httpx.AsyncClient) -> Move:
    async def go(pid: str, headers: dict[str, str], company_id: uuid.UUID,
                 **extra: Any) -> httpx.Response:
        body = {"company_id": str(company_id), "kind": "work_training",
                "start": date.today().isoformat(), **extra}
        return await client.post(f"/participants/{pid}/placements", json=body, headers=headers)

    return go
