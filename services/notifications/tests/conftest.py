"""Notification test fixtures: one migrated database, one running app, a real SMTP server
(aiosmtpd, in this process) that can refuse or be down, and a publisher of real events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from asf_contracts import EXCHANGE, Envelope
from asf_testing import (
    JWT_TEST_SECRET,
    SmtpServer,
    auth,
    fresh_database,
    serving,
    unique_namespace,
)
from notifications.app import create_app
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
FRONTEND = "https://asf.test"


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="session")
async def notifications_db(postgres_url: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_url, "notifications_test", MIGRATIONS) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def notifications_settings(
    notifications_db: str, broker_url: str, smtp: SmtpServer
) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=notifications_db, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
        queue_namespace=unique_namespace(), smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_tls="none", smtp_timeout=3, retry_base_seconds=0.2, retry_cap_seconds=1.0,
        max_attempts=50,
        sweeper_interval=0.5, sending_timeout_seconds=5, digest_enabled=False,
        frontend_base_url=FRONTEND, log_format="json",
    )


@pytest.fixture(scope="session")
async def notifications_app(
    notifications_settings: NotificationsSettings,
) -> AsyncIterator[FastAPI]:
    app = create_app(notifications_settings)
    async with serving(app):
        yield app


@pytest.fixture
async def client(notifications_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=notifications_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as c:
        yield c


@pytest.fixture(scope="session")
def analyst() -> dict[str, str]:
    return auth("analyst", sub="analyst-1")


Publish = Callable[..., Awaitable[Envelope]]


@pytest.fixture(scope="session")
async def publish(broker_url: str, notifications_app: FastAPI) -> AsyncIterator[Publish]:
    """Publish a real envelope to `asf.events`, as a producer's outbox relay would."""
    connection = await aio_pika.connect(broker_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                              durable=True)

    async def send(
        event_type: str, payload: dict[str, Any], *, aggregate_id: uuid.UUID | None = None,
        aggregate_version: int = 1, envelope: Envelope | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        env = envelope or Envelope(
            event_type=event_type, event_version=1, producer=f"{event_type.split('.')[0]}-test",
            aggregate_id=aggregate_id or uuid.uuid4(), aggregate_version=aggregate_version,
            payload=payload, **({"occurred_at": occurred_at} if occurred_at else {}),
        )
        await exchange.publish(
            aio_pika.Message(
                env.model_dump_json().encode(), message_id=str(env.event_id),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={"event_type": env.event_type, "event_version": env.event_version},
            ),
            routing_key=env.routing_key,
        )
        return env

    yield send
    await connection.close()


Eventually = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="session")
def eventually() -> Eventually:
    """Wait until `check()` returns something truthy (awaiting it if it is a coroutine)."""

    async def wait(check: Callable[[], Any], seconds: float = 60.0, what: str = "") -> Any:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}")
            await asyncio.sleep(0.1)

    return wait


Factory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_contact(client: httpx.AsyncClient, analyst: dict[str, str]) -> Factory:
    """Create a contact over HTTP with a unique email; returns it as JSON."""

    async def make(role: str, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Test {role}", "email": f"{role}-{uuid.uuid4().hex[:10]}@example.se",
                "role": role, **fields}
        r = await client.post("/contacts", json=body, headers=analyst)
        assert r.status_code == 201, r.text
        contact: dict[str, Any] = r.json()
        return contact

    return make


@pytest.fixture
def deliveries(client: httpx.AsyncClient, analyst: dict[str, str]) -> Callable[
    ..., Awaitable[list[dict[str, Any]]]
]:
    """`GET /deliveries` with filters; returns the items."""

    async def get(**params: Any) -> list[dict[str, Any]]:
        r = await client.get("/deliveries", params={k: str(v) for k, v in params.items()},
                             headers=analyst)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    return get


def _company_payload(company_id: uuid.UUID, *emails: str, status: str = "pending",
                     municipality_code: str = "0180") -> dict[str, Any]:
    return {
        "id": str(company_id), "org_number": "769600-1234", "name": f"Bolaget {company_id.hex[:6]}",
        "legal_form": "ekonomisk_forening", "municipality_code": municipality_code,
        "county_code": municipality_code[:2], "industries": ["cafe_restaurant"],
        "training_places": 3, "origin": "founded", "status": status, "qualifies_as_asf": True,
        "reserved_contract_eligible": True, "verification_level": "self_declared",
        "contacts": [{"name": f"Kontakt {e.split('@')[0]}", "email": e} for e in emails],
    }


@pytest.fixture(scope="session")
def company_payload() -> Callable[..., dict[str, Any]]:
    """A registry company event's payload, with a contact per email:
    `company_payload(company_id, *emails, status=..., municipality_code=...)`."""
    return _company_payload


@pytest.fixture
def known_company(
    publish: Publish, client: httpx.AsyncClient, analyst: dict[str, str],
    eventually: Eventually,
) -> Callable[..., Awaitable[uuid.UUID]]:
    """A company notifications has heard of (registered), its contacts mirrored."""

    async def make(*emails: str, municipality_code: str = "0180") -> uuid.UUID:
        company_id = uuid.uuid4()
        await publish("registry.company.registered",
                      _company_payload(company_id, *emails, municipality_code=municipality_code),
                      aggregate_id=company_id)

        async def mirrored() -> bool:
            r = await client.get("/contacts", params={"company_id": str(company_id)},
                                 headers=analyst)
            return len(r.json()["items"]) == len(emails)

        await eventually(mirrored, what="the company's contacts")
        return company_id

    return make


@pytest.fixture
def sent(deliveries: Callable[..., Awaitable[list[dict[str, Any]]]]) -> Callable[
    ..., Awaitable[dict[str, Any] | None]
]:
    """The one delivery matching the filters once it is `sent` (None before)."""

    async def get(**filters: Any) -> dict[str, Any] | None:
        items = await deliveries(**filters)
        return items[0] if len(items) == 1 and items[0]["status"] == "sent" else None

    return get
