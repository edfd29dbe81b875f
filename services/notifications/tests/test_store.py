"""What the SQL guarantees: two sweepers never claim the same delivery; templates are
versioned."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg

from asf_testing import fresh_database
from notifications import service, store
from notifications.domain import Template
from notifications.store import NewDelivery

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


async def test_two_replicas_claim_disjoint_deliveries(postgres_url: str) -> None:
    async with fresh_database(postgres_url, "notifications_claim", MIGRATIONS) as dsn:
        setup = await asyncpg.connect(dsn)
        ids = set()
        for _ in range(60):
            d = uuid.uuid4()
            ids.add(d)
            await store.insert_delivery(setup, NewDelivery(
                id=d, event_id=uuid.uuid4(), event_type="t", contact_id=None,
                recipient="a@example.se", template="t", template_locale="sv",
                template_version=1, subject="s", text_body="t", html_body="h",
                status="pending", message_id=f"<{d}@asf-samverkan>"))
        await setup.close()
        a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        try:
            rounds = [
                await asyncio.gather(store.claim_due(a, 7, timedelta(minutes=5)),
                                     store.claim_due(b, 7, timedelta(minutes=5)))
                for _ in range(6)
            ]
            claimed = [c.id for pair in rounds for side in pair for c in side]
            assert len(claimed) == len(set(claimed)) == 60
            assert set(claimed) == ids
            assert await store.claim_due(a, 7, timedelta(minutes=5)) == []
        finally:
            await a.close()
            await b.close()


async def test_a_changed_template_becomes_a_new_version_and_old_deliveries_keep_theirs(
    postgres_url: str,
) -> None:
    async with fresh_database(postgres_url, "notifications_tpl", MIGRATIONS) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            first = await service.seed_templates(conn)
            assert "follow_up_due.sv v1" in first
            assert await service.seed_templates(conn) == []  # unchanged: no new version
            d = uuid.uuid4()
            await store.insert_delivery(conn, NewDelivery(
                id=d, event_id=uuid.uuid4(), event_type="t", contact_id=None,
                recipient="a@example.se", template="follow_up_due", template_locale="sv",
                template_version=1, subject="s", text_body="t", html_body="h",
                status="sent", message_id=f"<{d}@asf-samverkan>"))
            changed = Template(name="follow_up_due", locale="sv", version=0, subject="Ny",
                               text="{{ reference }}", html="<p>{{ reference }}</p>")
            assert await store.add_template_version(conn, changed) == 2
            [latest] = [t for t in await store.latest_templates(conn, ["follow_up_due"])
                        if t.locale == "sv"]
            assert (latest.version, latest.subject) == (2, "Ny")
            kept = await store.get_delivery(conn, d)
            assert kept is not None and kept.template_version == 1
        finally:
            await conn.close()
