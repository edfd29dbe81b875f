"""Services as processes, the way they run in production: two replicas side by side, and a
SIGTERM in the middle of load. Nothing may be lost and nothing published twice."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import orjson
import pytest

from asf_contracts.topology import ServiceQueues
from asf_testing import (
    DATA_KEY,
    auth,
    delete_queues,
    event_tap,
    fresh_database,
    identity_number,
    org_number,
    service_process,
    unique_namespace,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"
REP = auth("company_rep", sub="load-rep")


def company(i: int) -> dict[str, Any]:
    return {
        "org_number": org_number(), "name": f"Lastföretaget {i} {random.randint(0, 10**9)}",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180",
        "industries": ["cleaning"], "training_places": 3, "origin": "existing",
        "workforce": {"as_of": "2026-01-01", "employees_total": 2, "engaged_total": 6,
                      "target_group_engaged": 3},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    }


async def register_many(base_urls: list[str], n: int, concurrency: int = 8,
                        stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Register companies spread over the given replicas; returns the ids that got 201."""
    created: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty() and not stop():
            i = queue.get_nowait()
            url = base_urls[i % len(base_urls)]
            try:
                r = await client.post(f"{url}/companies", json=company(i), headers=REP)
            except httpx.HTTPError:
                continue  # the replica is going away; the request never committed
            if r.status_code == 201:
                created.append(r.json()["id"])

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return created


@pytest.mark.timeout(180)
async def test_two_replicas_share_one_database_without_double_events(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    async with fresh_database(postgres_url, "registry_replicas", REGISTRY_MIGRATIONS) as dsn:
        env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "RELAY_BATCH_SIZE": "7"}
        async with (
            event_tap(broker_url, "registry.company.registered.v1") as tap,
            service_process("registry.cli", env, tmp_path / "a.log") as a,
            service_process("registry.cli", env, tmp_path / "b.log") as b,
        ):
            created = await register_many([a.base_url, b.base_url], 200)
            await tap.wait_for(lambda bodies: {e["aggregate_id"] for e in bodies} >= set(created),
                               within=60)
            await asyncio.sleep(1)  # give a duplicate the chance to show up
        ids = [e["aggregate_id"] for e in tap.bodies() if e["aggregate_id"] in set(created)]
        assert len(created) == 200
        assert sorted(ids) == sorted(created), "each event exactly once"


@pytest.mark.timeout(180)
async def test_sigterm_under_load_loses_nothing(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    """Every request that got its 201 has its event published, and the process ends after a
    complete shutdown."""
    async with fresh_database(postgres_url, "registry_sigterm", REGISTRY_MIGRATIONS) as dsn:
        # A slow relay leaves a backlog at the moment of the SIGTERM, which it must flush.
        env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "RELAY_POLL_INTERVAL": "30",
               "RELAY_BATCH_SIZE": "5"}
        async with (
            event_tap(broker_url, "registry.company.registered.v1") as tap,
            service_process("registry.cli", env, tmp_path / "svc.log") as proc,
        ):
            load = asyncio.create_task(register_many([proc.base_url], 2000, concurrency=6))
            await asyncio.sleep(1.5)
            proc.process.send_signal(signal.SIGTERM)
            created = await load
            code = await asyncio.to_thread(proc.process.wait, 40)
            # uvicorn re-raises the signal once its graceful shutdown has finished
            assert code in (0, -signal.SIGTERM), proc.log()[-3000:]
            assert "Application shutdown complete" in proc.log()
            await tap.wait_for(lambda bodies: {e["aggregate_id"] for e in bodies} >= set(created),
                               within=20)
        assert 0 < len(created) < 2000, "the SIGTERM should land in the middle of the load"
        ids = [e["aggregate_id"] for e in tap.bodies() if e["aggregate_id"] in set(created)]
        assert sorted(ids) == sorted(created)


CASEWORK_MIGRATIONS = ROOT / "services" / "casework" / "migrations"


def company_registered(i: int, cid: str, event_id: str) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "event_type": "registry.company.registered",
        "event_version": 1, "occurred_at": "2026-11-28T08:00:00+00:00", "producer": "registry",
        "correlation_id": None, "causation_id": None, "aggregate_id": cid,
        "aggregate_version": 1,
        "payload": {"id": cid, "org_number": f"7690{i:02d}-{i:04d}", "name": f"Replik {i}",
                    "legal_form": "aktiebolag", "municipality_code": "0180", "county_code": "01",
                    "industries": ["cleaning"], "training_places": 2, "origin": "existing",
                    "status": "active", "qualifies_as_asf": True,
                    "reserved_contract_eligible": True, "verification_level": "verified"},
    })


@pytest.mark.timeout(180)
async def test_two_casework_replicas_consume_and_relay_once_and_stop_gracefully(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    """Two copies share one queue and one outbox: each registry event is applied once,
    each case event published once — also when one copy is stopped with SIGTERM midway."""
    namespace = unique_namespace()
    async with fresh_database(postgres_url, "casework_replicas", CASEWORK_MIGRATIONS) as dsn:
        env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace,
               "CASEWORK_DATA_KEY": DATA_KEY, "FOLLOW_UP_SWEEP_INTERVAL": "0",
               "RELAY_BATCH_SIZE": "5"}
        worker = auth("case_worker", sub="cw-replicas", municipality_code="0180")
        try:
            async with (
                event_tap(broker_url, "casework.participant.referred.v1") as tap,
                service_process("casework.cli", env, tmp_path / "a.log") as a,
                service_process("casework.cli", env, tmp_path / "b.log") as b,
            ):
                connection = await aio_pika.connect(broker_url)
                channel = await connection.channel()
                exchange = await channel.get_exchange("asf.events")
                # Other suites may publish on the same broker: count only these companies.
                companies = [str(uuid.uuid4()) for _ in range(300)]
                events = [str(uuid.uuid4()) for _ in range(300)]
                for i, (cid, eid) in enumerate(zip(companies, events, strict=True)):
                    await exchange.publish(aio_pika.Message(company_registered(i, cid, eid),
                                                            delivery_mode=2),
                                           routing_key="registry.company.registered.v1")
                await connection.close()

                created: list[str] = []
                async with httpx.AsyncClient(timeout=30) as client:
                    for i in range(120):
                        url = (a if i % 2 else b).base_url
                        if i == 60:
                            b.process.send_signal(signal.SIGTERM)  # mid-stream, b goes away
                        if i >= 60:
                            url = a.base_url
                        r = await client.post(f"{url}/participants", headers=worker, json={
                            "given_name": "Rep", "family_name": "Lika",
                            "personal_identity_number": identity_number(),
                            "referral_source": "self"})
                        assert r.status_code == 201, r.text
                        created.append(r.json()["id"])
                await asyncio.to_thread(b.process.wait, 40)
                assert "Application shutdown complete" in b.log()
                await tap.wait_for(
                    lambda bodies: {e["aggregate_id"] for e in bodies} >= set(created),
                    within=60)

                conn = await asyncpg.connect(dsn)
                try:
                    async def applied() -> int:
                        return int(await conn.fetchval(
                            "SELECT count(*) FROM companies WHERE id = ANY($1::uuid[])",
                            companies))

                    for _ in range(300):
                        if await applied() == 300:
                            break
                        await asyncio.sleep(0.1)
                    assert await applied() == 300
                    assert await conn.fetchval(
                        "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])",
                        events) == 300
                    async def unmarked() -> int:
                        return int(await conn.fetchval(
                            "SELECT count(*) FROM outbox WHERE published_at IS NULL"))

                    # The relay marks what it handed over a few ms after the publish the tap
                    # saw: wait for the mark, well inside the 30 s lease (past it, another
                    # replica's poll would publish a row again, which the tap would show).
                    for _ in range(100):
                        if await unmarked() == 0:
                            break
                        await asyncio.sleep(0.1)
                    assert await unmarked() == 0
                finally:
                    await conn.close()
                both_consumed = [p.log().count("company event") for p in (a, b)]
            referred = [e["aggregate_id"] for e in tap.bodies() if e["aggregate_id"] in created]
            assert sorted(referred) == sorted(created), "each case event exactly once"
            assert all(n > 0 for n in both_consumed), both_consumed
        finally:
            await delete_queues(broker_url, ServiceQueues(service=namespace + "casework"))
