"""What the SQL guarantees: two sweepers never claim the same delivery; templates are
versioned as a whole and activated; the migration to whole-template versions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from asf_kit.db import migrate
from asf_testing import fresh_database
from notifications import service, store
from notifications.mail_templates import TemplateHistory, TemplateText
from notifications.service import Notifications
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


def _service() -> Notifications:
    def no_pool() -> asyncpg.Pool:
        raise AssertionError("seeding uses the connection it is given")

    return Notifications(no_pool, base_url="https://x")


async def test_a_changed_release_becomes_a_new_version_and_old_deliveries_keep_theirs(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_database(postgres_url, "notifications_tpl", MIGRATIONS) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            first = await _service().seed_templates(conn)
            assert "follow_up_due v1" in first
            assert await _service().seed_templates(conn) == []  # unchanged: no new version
            d = uuid.uuid4()
            await store.insert_delivery(conn, NewDelivery(
                id=d, event_id=uuid.uuid4(), event_type="t", contact_id=None,
                recipient="a@example.se", template="follow_up_due", template_locale="sv",
                template_version=1, subject="s", text_body="t", html_body="h",
                status="sent", message_id=f"<{d}@asf-samverkan>"))

            packaged = service.packaged_templates()
            changed = {**packaged, "follow_up_due": {
                **packaged["follow_up_due"],
                "sv": TemplateText(subject="Ny {{ reference }}", text="{{ link }}",
                                   html="<p>{{ link }}</p>")}}
            monkeypatch.setattr(service, "packaged_templates", lambda: changed)
            assert await _service().seed_templates(conn) == ["follow_up_due v2"]
            active = {t.locale: t for t in await store.active_templates(conn, ["follow_up_due"])}
            assert (active["sv"].version, active["sv"].subject) == (2, "Ny {{ reference }}")
            assert active["en"].version == 2  # a version is the whole template
            kept = await store.get_delivery(conn, d)
            assert kept is not None and kept.template_version == 1

            # An analyst's version in use is not replaced by the next release.
            await store.insert_template_version(conn, "follow_up_due", 3, "analyst", "a-1",
                                                None, changed["follow_up_due"])
            await store.activate_template(conn, "follow_up_due", 3, "a-1")
            monkeypatch.setattr(service, "packaged_templates", lambda: packaged)
            [note] = await _service().seed_templates(conn)
            assert note == "follow_up_due v4 (not activated: an analyst's v3 is in use)"
            history = await store.template_history(conn, "follow_up_due")
            assert history is not None and history.active == 3
            assert history.sources == {1: "release", 2: "release", 3: "analyst", 4: "release"}
        finally:
            await conn.close()


async def test_the_migration_makes_each_version_number_a_whole_template(
    postgres_url: str, tmp_path: Path
) -> None:
    """Before 002 a version was counted per locale; each number becomes a version of the
    whole template, a locale that did not change keeping its previous text."""
    only_001 = tmp_path / "migrations"
    only_001.mkdir()
    (only_001 / "001_notifications.sql").write_text(
        (MIGRATIONS / "001_notifications.sql").read_text())
    async with fresh_database(postgres_url, "notifications_m002", only_001) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            for locale, version, subject in (("sv", 1, "sv1"), ("en", 1, "en1"),
                                             ("sv", 2, "sv2"), ("sv", 3, "sv3"),
                                             ("en", 3, "en3")):
                await conn.execute(
                    """INSERT INTO templates (name, locale, version, subject, text_body,
                       html_body) VALUES ('follow_up_due', $1, $2, $3, 't', 'h')""",
                    locale, version, subject)
            await migrate(dsn, MIGRATIONS)
            rows = await conn.fetch(
                "SELECT version, locale, subject FROM templates ORDER BY version, locale")
            assert [(r["version"], r["locale"], r["subject"]) for r in rows] == [
                (1, "en", "en1"), (1, "sv", "sv1"), (2, "en", "en1"), (2, "sv", "sv2"),
                (3, "en", "en3"), (3, "sv", "sv3")]
            history = await store.template_history(conn, "follow_up_due")
            assert history == TemplateHistory(
                name="follow_up_due", sources={1: "release", 2: "release", 3: "release"},
                active=3)
        finally:
            await conn.close()
