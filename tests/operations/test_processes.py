"""Services as processes, the way they run in production: two replicas side by side, and a
SIGTERM in the middle of load. Nothing may be lost and nothing published twice."""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from stdnum import luhn

from asf_kit.testing import auth, event_tap, fresh_database, service_process

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"
REP = auth("company_rep", sub="load-rep")


def org_number() -> str:
    body = "7" + str(random.randint(0, 9)) + str(random.randint(2, 9)) + \
        "".join(random.choices("0123456789", k=6))
    digits = body + luhn.calc_check_digit(body)
    return f"{digits[:6]}-{digits[6:]}"


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
