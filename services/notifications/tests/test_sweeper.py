"""The sweeper is a kit worker: a round that fails is counted and drops the LISTEN connection
(a new one is opened before the next round), and it carries on once the cause is gone."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from asf_contracts.topology import ServiceQueues
from asf_testing import JWT_TEST_SECRET, delete_queues, fresh_database, unique_namespace
from notifications.app import create_app
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@pytest.fixture
async def lone_app(postgres_url: str, broker_url: str) -> AsyncIterator[tuple[FastAPI, str]]:
    namespace = unique_namespace()
    async with fresh_database(postgres_url, "notifications_sweeper", MIGRATIONS) as dsn:
        app = create_app(NotificationsSettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            queue_namespace=namespace, smtp_host="127.0.0.1", smtp_port=9, smtp_tls="none",
            sweeper_interval=0.2, digest_enabled=False))
        try:
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
                yield app, dsn
        finally:
            await delete_queues(broker_url, ServiceQueues(service=namespace + "notifications"))


async def listeners(dsn: str) -> set[int]:
    """The backends of this database listening for new deliveries."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND query LIKE 'LISTEN%deliveries%'""")
    finally:
        await conn.close()
    return {r["pid"] for r in rows}


async def failures(app: FastAPI) -> float:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://n") as c:
        text = (await c.get("/metrics")).text
    found = re.search(r'^worker_failures_total\{worker="delivery-sweeper"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_a_failing_round_is_counted_and_drops_the_listener(
    lone_app: tuple[FastAPI, str], eventually: Any,
) -> None:
    app, dsn = lone_app
    sweeper = app.state.sweeper
    [before] = await eventually(lambda: listeners(dsn), what="the listener")
    counted = await failures(app)

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")
        sweeper.wake()
        await eventually(lambda: sweeper.failures >= 2, what="failed rounds")
        assert await failures(app) >= counted + 2
        assert before not in await listeners(dsn)  # dropped, not kept for the next round
        assert app.state.sweeper.running
    finally:
        await admin.execute("ALTER TABLE deliveries_gone RENAME TO deliveries")
        await admin.close()

    await eventually(lambda: sweeper.failures == 0, what="a round that succeeds")
    [after] = await eventually(lambda: listeners(dsn), what="a new listener")
    assert after != before
    # And it is a listener that works: a new delivery wakes the sweeper at once.
    async with app.state.runtime.pool.acquire() as conn:
        delivery_id = uuid.uuid4()
        await conn.execute(
            """INSERT INTO deliveries (id, event_id, event_type, recipient, template, status,
                   message_id, next_attempt_at)
               VALUES ($1, $2, 't', 'x@example.se', 't', 'pending', $3, now())""",
            delivery_id, uuid.uuid4(), f"<{delivery_id}@asf-samverkan>")

    async def tried() -> bool:
        async with app.state.runtime.pool.acquire() as conn:
            return bool(await conn.fetchval(
                "SELECT attempts > 0 FROM deliveries WHERE id = $1", delivery_id))

    await eventually(tried, what="the new delivery tried")
