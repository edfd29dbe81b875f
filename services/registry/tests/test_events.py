"""Every state change reaches the broker through the outbox, exactly once, even across a
relay crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from fastapi import FastAPI

from asf_contracts import Envelope
from asf_kit.outbox import OutboxRelay
from asf_testing import event_tap

Headers = dict[str, dict[str, str]]


async def test_registered_company_is_published_with_the_full_envelope(
    client: httpx.AsyncClient, headers: Headers, broker_url: str,
    body_factory: Callable[..., dict[str, Any]],
) -> None:
    async with event_tap(broker_url, "registry.company.*.v1") as tap:
        r = await client.post("/companies", json=body_factory(),
                              headers={**headers["rep"], "X-Correlation-Id": "corr-123"})
        company = r.json()
        bodies = await tap.wait_for(lambda b: any(
            e["aggregate_id"] == company["id"] for e in b))
    [event] = [b for b in bodies if b["aggregate_id"] == company["id"]]
    envelope = Envelope.model_validate(event)
    assert envelope.event_type == "registry.company.registered"
    assert envelope.event_version == 1
    assert envelope.producer == "registry"
    assert envelope.correlation_id == "corr-123"
    assert envelope.causation_id  # the request that caused it
    assert envelope.aggregate_version == 1
    assert envelope.payload["org_number"] == company["org_number"]
    assert envelope.payload["status"] == "pending"
    assert envelope.payload["qualifies_as_asf"] is True
    assert envelope.payload["contacts"][0]["email"] == "anna@example.se"
    [message] = [m for m in tap.messages if m.message_id == str(envelope.event_id)]
    assert message.routing_key == "registry.company.registered.v1"
    assert message.correlation_id == "corr-123"
    assert message.delivery_mode == 2  # persistent
    assert message.content_type == "application/json"
    assert message.headers["event_type"] == "registry.company.registered"
    assert message.headers["event_version"] == 1


async def test_each_change_is_its_own_event_in_order(
    client: httpx.AsyncClient, headers: Headers, broker_url: str,
    new_company: Callable[..., Any],
) -> None:
    async with event_tap(broker_url, "registry.#") as tap:
        c = await new_company(status="deregistered")
        bodies = await tap.wait_for(
            lambda b: len([e for e in b if e["aggregate_id"] == c["id"]]) >= 3)
    mine = [e for e in bodies if e["aggregate_id"] == c["id"]]
    assert [(e["event_type"], e["aggregate_version"]) for e in mine] == [
        ("registry.company.registered", 1),
        ("registry.company.verified", 2),
        ("registry.company.deregistered", 3),
    ]
    assert mine[-1]["payload"]["deregistration_reason"] == "bankruptcy"


async def test_a_refused_change_publishes_nothing(
    client: httpx.AsyncClient, headers: Headers, registry_app: FastAPI,
    new_company: Callable[..., Any],
) -> None:
    c = await new_company()
    pool: asyncpg.Pool = registry_app.state.runtime.pool
    before = await pool.fetchval("SELECT count(*) FROM outbox")
    r = await client.post(f"/companies/{c['id']}/deregistration", json={"reason": "other"},
                          headers=headers["officer"])
    assert r.status_code == 409
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before


async def test_crash_between_commit_and_publish_loses_nothing(
    client: httpx.AsyncClient, headers: Headers, broker_url: str, registry_app: FastAPI,
    registry_settings: Any, body_factory: Callable[..., dict[str, Any]],
) -> None:
    """Stop the relay, change state, start a new relay: the event arrives exactly once."""
    runtime = registry_app.state.runtime
    await runtime.relay.stop(flush=False)  # as if the process died after the commit
    try:
        async with event_tap(broker_url, "registry.company.registered.v1") as tap:
            r = await client.post("/companies", json=body_factory(), headers=headers["rep"])
            company_id = r.json()["id"]
            pool: asyncpg.Pool = runtime.pool
            row = await pool.fetchrow(
                "SELECT event_id, published_at FROM outbox "
                "WHERE convert_from(body, 'UTF8') LIKE '%' || $1 || '%'",
                company_id)
            assert row is not None and row["published_at"] is None  # committed, not sent

            restarted = OutboxRelay(pool, runtime.broker, registry_settings.database_url,
                                    poll_interval=0.1)
            await restarted.start()
            try:
                await tap.wait_for(lambda b: any(e["aggregate_id"] == company_id for e in b))
                second_round = await restarted.publish_batch()  # nothing left to send
            finally:
                await restarted.stop()
            assert second_round == 0
            mine = [e for e in tap.bodies() if e["aggregate_id"] == company_id]
            assert len(mine) == 1
            assert UUID(mine[0]["event_id"]) == row["event_id"]
            assert await pool.fetchval(
                "SELECT published_at IS NOT NULL FROM outbox WHERE event_id = $1",
                row["event_id"])
    finally:
        await runtime.relay.start()


async def test_two_relays_share_the_work_without_duplicates(
    client: httpx.AsyncClient, headers: Headers, broker_url: str, registry_app: FastAPI,
    registry_settings: Any, body_factory: Callable[..., dict[str, Any]],
) -> None:
    """Two replicas' relays claim rows with SKIP LOCKED: each event is published once."""
    runtime = registry_app.state.runtime
    await runtime.relay.stop(flush=False)
    pool: asyncpg.Pool = runtime.pool
    try:
        async with event_tap(broker_url, "registry.company.registered.v1") as tap:
            ids = []
            for _ in range(40):
                r = await client.post("/companies", json=body_factory(), headers=headers["rep"])
                ids.append(r.json()["id"])
            relays = [OutboxRelay(pool, runtime.broker, registry_settings.database_url,
                                  batch_size=5, poll_interval=0.05) for _ in range(2)]
            for relay in relays:
                await relay.start()
            try:
                await tap.wait_for(lambda b: {e["aggregate_id"] for e in b} >= set(ids))
            finally:
                for relay in relays:
                    await relay.stop()
            mine = [e["aggregate_id"] for e in tap.bodies() if e["aggregate_id"] in ids]
            assert sorted(mine) == sorted(ids)
    finally:
        await runtime.relay.start()
