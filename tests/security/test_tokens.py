"""Tokens against the services running as processes in production (SPEC 2, issue 12 items
2 and 6): a JWKS with a key the test made, issuer and audience set. A token for another
audience, `alg=none`, a 100-year token, a token without `iat`, an HS256 token signed with a
secret from the repository: each a 401 that says `invalid or expired token` and nothing
more. A case worker without `municipality_code` is refused and nothing is saved. A slow or
down JWKS slows neither `/healthz` nor the consumers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import jwt
import pytest

from asf_contracts import EXCHANGE, Envelope
from asf_contracts import registry as reg
from asf_contracts.topology import ServiceQueues
from asf_kit.auth import INVALID_TOKEN, mint_token
from asf_testing import (
    JWT_TEST_SECRET,
    JwksServer,
    ServiceProcess,
    SigningKey,
    delete_queues,
    fresh_database,
    service_process,
    unique_namespace,
)

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://idp.asf-samverkan.test/realms/kommun"
AUDIENCE = "asf-samverkan"
DEV_SECRET = "dev-secret-change-me-0123456789abcdef0123456789"  # what `make run` signs with
KEY = SigningKey()

# Where each service is asked, and by whom a good token is.
PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    "registry": ("/companies", {"roles": "registry_officer"}),
    "casework": ("/participants", {"roles": "case_worker", "municipality_code": "0180"}),
    "notifications": ("/contacts", {"roles": "analyst"}),
}


def production_env(service: str, dsn: str, broker_url: str, namespace: str,
                   **overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "production", "JWT_SECRET": "", "DATABASE_URL": dsn,
        "BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace, "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE, "JWT_JWKS_TIMEOUT": "1", "RELAY_POLL_INTERVAL": "0.2",
    }
    if service == "casework":
        env["CASEWORK_DATA_KEY"] = base64.b64encode(os.urandom(32)).decode()
        env["FOLLOW_UP_SWEEP_INTERVAL"] = "0"
    if service == "notifications":
        env["SMTP_HOST"] = "smtp.asf-samverkan.test"
        env["SMTP_PORT"] = "587"
        env["DIGEST_ENABLED"] = "false"
    env.update(overrides)
    return env


@dataclass
class Running:
    process: ServiceProcess
    dsn: str


@contextlib.asynccontextmanager
async def production_service(
    service: str, postgres_url: str, broker_url: str, log_dir: Path, **overrides: str,
) -> AsyncIterator[Running]:
    migrations = ROOT / "services" / service / "migrations"
    namespace = unique_namespace()
    async with fresh_database(postgres_url, f"security_{service}", migrations) as dsn:
        try:
            async with service_process(
                f"{service}.cli", production_env(service, dsn, broker_url, namespace,
                                                 **overrides),
                log_dir / f"{service}-{uuid.uuid4().hex[:6]}.log",
            ) as process:
                yield Running(process, dsn)
        finally:
            await delete_queues(broker_url, ServiceQueues(service=namespace + service))


@pytest.fixture(scope="module")
async def services(
    postgres_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Running]]:
    """The three services in production, verifying tokens against a JWKS file."""
    folder = tmp_path_factory.mktemp("security")
    jwks = str(KEY.jwks_file(folder))
    started: dict[str, Running] = {}
    async with contextlib.AsyncExitStack() as stack:
        for service in PROBES:
            started[service] = await stack.enter_async_context(production_service(
                service, postgres_url, broker_url, folder, JWT_JWKS_FILE=jwks))
        yield started


def token_for(service: str, **claims: Any) -> str:
    probe = dict(PROBES[service][1])
    return KEY.token(**{"iss": ISSUER, "aud": AUDIENCE, **probe, **claims})


def _now() -> int:
    return int(time.time())


ATTACKS: dict[str, Any] = {
    "another audience": lambda s: token_for(s, aud="another-service"),
    "another issuer": lambda s: token_for(s, iss="https://idp.evil.test"),
    "alg none": lambda s: jwt.encode(
        {"sub": "u", "roles": [PROBES[s][1]["roles"]], "iat": _now(), "exp": _now() + 600,
         "iss": ISSUER, "aud": AUDIENCE, "municipality_code": "0180"}, None, algorithm="none"),
    "100-year token": lambda s: token_for(s, lifetime=100 * 365 * 24 * 3600),
    "13-hour token": lambda s: token_for(s, lifetime=13 * 3600),
    "no iat": lambda s: token_for(s, iat=None),
    "expired": lambda s: token_for(s, iat=_now() - 7200, exp=_now() - 3600),
    "unknown key": lambda s: SigningKey(kid=KEY.kid).token(
        iss=ISSUER, aud=AUDIENCE, **PROBES[s][1]),
    "hs256 with make run's secret": lambda s: mint_token(
        DEV_SECRET, "u", [PROBES[s][1]["roles"]], issuer=ISSUER, audience=AUDIENCE,
        municipality_code="0180"),
    "hs256 with the tests' secret": lambda s: mint_token(
        JWT_TEST_SECRET, "u", [PROBES[s][1]["roles"]], issuer=ISSUER, audience=AUDIENCE,
        municipality_code="0180"),
    "garbage": lambda s: "not.a.token",
}


async def test_a_good_token_from_the_jwks_is_accepted(services: dict[str, Running]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service, running in services.items():
            path = PROBES[service][0]
            r = await client.get(running.process.base_url + path,
                                 headers={"Authorization": f"Bearer {token_for(service)}"})
            assert r.status_code == 200, (service, r.text)


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_bad_token_gets_the_same_401_everywhere(
    services: dict[str, Running], attack: str,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service, running in services.items():
            r = await client.get(running.process.base_url + PROBES[service][0],
                                 headers={"Authorization": f"Bearer {ATTACKS[attack](service)}"})
            assert r.status_code == 401, (service, attack, r.text)
            body = r.json()
            assert body["detail"] == INVALID_TOKEN, (service, attack, body)
            assert set(body) <= {"type", "title", "status", "detail", "instance"}, body


async def test_no_token_gets_the_same_401(services: dict[str, Running]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service, running in services.items():
            r = await client.get(running.process.base_url + PROBES[service][0])
            assert (r.status_code, r.json()["detail"]) == (401, INVALID_TOKEN), service


async def test_a_case_worker_without_municipality_is_refused_and_nothing_saved(
    services: dict[str, Running],
) -> None:
    casework = services["casework"]
    no_scope = {"Authorization": "Bearer " + KEY.token(
        iss=ISSUER, aud=AUDIENCE, roles=["case_worker"], sub="cw-unscoped")}
    body = {"given_name": "Testa", "family_name": "Testsson",
            "personal_identity_number": "19121212-1212", "referral_source": "social_services"}
    async with httpx.AsyncClient(base_url=casework.process.base_url, timeout=10) as client:
        created = await client.post("/participants", json=body, headers=no_scope)
        listed = await client.get("/participants", headers=no_scope)
    assert created.status_code == 403, created.text
    assert listed.status_code == 403, listed.text
    conn = await asyncpg.connect(casework.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM participants") == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()


# --- a slow or down JWKS --------------------------------------------------------------------


def company_event(company_id: uuid.UUID) -> Envelope:
    payload = {
        "id": str(company_id), "org_number": "769612-3450", "name": "JWKS-testet Ek. För.",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180", "county_code": "01",
        "industries": ["cleaning"], "training_places": 2, "origin": "existing",
        "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": True,
        "verification_level": "self_declared",
    }
    return Envelope(event_type=reg.COMPANY_REGISTERED, event_version=1,
                    producer="registry-test", aggregate_id=company_id, aggregate_version=1,
                    payload=payload)


async def publish(broker_url: str, envelope: Envelope) -> None:
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        await exchange.publish(aio_pika.Message(
            envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
            content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ), routing_key=envelope.routing_key)
    finally:
        await connection.close()


async def applied_within(dsn: str, company_id: uuid.UUID, seconds: float) -> float:
    """Seconds until casework's read model holds the company (fails after `seconds`)."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while not await conn.fetchval("SELECT 1 FROM companies WHERE id = $1", company_id):
            assert time.monotonic() - started < seconds, "the event was not applied in time"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return time.monotonic() - started


async def healthz_latencies(base_url: str, n: int = 10) -> list[float]:
    took = []
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(n):
            started = time.monotonic()
            r = await client.get(f"{base_url}/healthz")
            took.append(time.monotonic() - started)
            assert r.status_code == 200
            await asyncio.sleep(0.05)
    return took


async def test_a_slow_jwks_slows_neither_healthz_nor_the_consumers(
    postgres_url: str, broker_url: str, tmp_path: Path,
) -> None:
    rotated = SigningKey()
    with JwksServer(KEY) as idp:
        async with production_service("casework", postgres_url, broker_url, tmp_path,
                                      JWT_JWKS_URL=idp.url, JWT_JWKS_REFRESH="2") as casework:
            base = casework.process.base_url
            known = {"Authorization": f"Bearer {token_for('casework')}"}
            new_kid = {"Authorization": "Bearer " + rotated.token(
                iss=ISSUER, aud=AUDIENCE, roles=["case_worker"], municipality_code="0180")}
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert (await client.get("/participants", headers=known)).status_code == 200
                # The provider rotates its key and becomes slow: a token with the new key id
                # makes the service fetch the JWKS, which hangs far beyond JWT_JWKS_TIMEOUT.
                idp.delay = 8.0
                idp.keys.append(rotated)
                waiting = [asyncio.create_task(client.get("/participants", headers=new_kid))
                           for _ in range(10)]
                await asyncio.sleep(0.2)  # those requests now wait on the JWKS
                company_id = uuid.uuid4()
                await publish(broker_url, company_event(company_id))
                health, applied, cached = await asyncio.gather(
                    healthz_latencies(base), applied_within(casework.dsn, company_id, 10),
                    client.get("/participants", headers=known))
                answers = await asyncio.gather(*waiting)
            assert statistics.median(health) < 0.2, health
            assert max(health) < 1.0, health
            assert applied < 5, f"the consumer took {applied:.1f} s"
            assert cached.status_code == 200  # a known key needs no fetch
            assert cached.elapsed.total_seconds() < 1, cached.elapsed
            assert {r.status_code for r in answers} == {401}  # the new key never came in time
            assert all(r.elapsed.total_seconds() < 4 for r in answers)

            idp.delay = 0  # the provider recovers: the background refresh picks the key up
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                while (await client.get("/participants", headers=new_kid)).status_code != 200:
                    assert time.monotonic() < deadline, "the rotated key was never accepted"
                    await asyncio.sleep(0.5)


async def test_a_jwks_that_is_down_gives_401_at_once_and_the_service_stays_up(
    postgres_url: str, broker_url: str, tmp_path: Path,
) -> None:
    idp = JwksServer(KEY)
    idp.down()
    async with production_service("registry", postgres_url, broker_url, tmp_path,
                                  JWT_JWKS_URL=idp.url) as registry:
        async with httpx.AsyncClient(base_url=registry.process.base_url, timeout=10) as client:
            r = await client.get("/companies", headers={
                "Authorization": f"Bearer {token_for('registry')}"})
            assert (r.status_code, r.json()["detail"]) == (401, INVALID_TOKEN)
            assert r.elapsed.total_seconds() < 2
            assert (await client.get("/readyz")).status_code == 200
        assert max(await healthz_latencies(registry.process.base_url)) < 1.0
