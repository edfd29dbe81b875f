"""The development mail catcher (the service without SMTP_HOST) and the CLI commands."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from asf_contracts import registry as reg
from asf_testing import (
    JWT_TEST_SECRET,
    auth,
    free_port,
    fresh_database,
    serving,
    unique_namespace,
)
from notifications import cli, mailcatcher
from notifications.app import create_app
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI points logging at the stdout capsys captures; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("keep_logging")
async def test_the_catcher_writes_eml_files_and_the_cli_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = free_port()
    controller = mailcatcher.start(tmp_path, "127.0.0.1", p)
    try:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.se", "b@example.se", "Hej då"
        msg["Message-ID"] = "<x@asf-samverkan>"
        msg.set_content("text")
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=p)
    finally:
        controller.stop()
    [caught] = mailcatcher.caught(tmp_path)
    assert (caught.to, caught.subject, caught.message_id) == (
        "b@example.se", "Hej då", "<x@asf-samverkan>")
    assert cli.main(["mail", "list", "--dir", str(tmp_path)]) == 0
    assert "Hej då" in capsys.readouterr().out


async def test_without_smtp_host_the_service_catches_its_own_mail(
    tmp_path: Path, postgres_url: str, broker_url: str, publish: Any, eventually: Any
) -> None:
    async with fresh_database(postgres_url, "notifications_catcher", MIGRATIONS) as dsn:
        settings = NotificationsSettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            queue_namespace=unique_namespace(), smtp_host=None, mailcatcher_port=free_port(),
            mailcatcher_dir=str(tmp_path / "mail"), sweeper_interval=0.5, digest_enabled=False,
        )
        app = create_app(settings)
        async with serving(app, "http://n") as client:
            email = f"info-{uuid.uuid4().hex[:8]}@example.se"
            r = await client.post("/contacts", headers=auth("analyst"), json={
                "name": "Info", "email": email, "role": "information_officer"})
            assert r.status_code == 201
            title = f"Fångad {uuid.uuid4().hex[:6]}"
            await publish(reg.LEARNING_EXAMPLE_SUBMITTED, {
                "id": str(uuid.uuid4()), "municipality_code": "0180", "company_ids": [],
                "title": title, "summary": "S", "collaboration_types": ["other"],
                "contact": {"name": "N", "email": "n@example.se"}})

            async def listed() -> list[dict[str, Any]]:
                r = await client.get("/mailcatcher", headers=auth("analyst"))
                assert r.status_code == 200
                return [m for m in r.json()["items"] if title in m["subject"]]

            [mail] = await eventually(listed, what="the caught email")
            assert mail["to"] == email and mail["file"].endswith(".eml")


@pytest.mark.usefixtures("keep_logging")
async def test_cli_migrate_seed_demo_and_digest(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with fresh_database(postgres_url, "notifications_cli", None) as dsn:
        monkeypatch.setenv("DATABASE_URL", dsn)
        assert await asyncio.to_thread(cli.main, ["migrate"]) == 0
        assert "service/001_notifications" in capsys.readouterr().out
        assert await asyncio.to_thread(cli.main, ["seed-demo"]) == 0
        assert "demo contacts: 3 created" in capsys.readouterr().out
        assert await asyncio.to_thread(cli.main, ["seed-demo"]) == 0
        assert "demo contacts: 0 created" in capsys.readouterr().out
        assert await asyncio.to_thread(cli.main, ["digest", "--date", "2026-01-15"]) == 0
        assert "digest deliveries stored: 0" in capsys.readouterr().out
