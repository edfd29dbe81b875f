"""Poison messages: malformed JSON (and bytes that are not UTF-8), an unknown event type or
version, and a payload that breaks its schema, published straight to each consuming service's
queue, are parked in its dead-letter queue with the reason (`x-park-reason`), and the consumer
keeps going: a valid event after them is applied. Then the operator's path: `<service> dlq
list`, `show` and `redrive`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from fastapi import FastAPI

from asf_contracts import Envelope
from asf_contracts import registry as reg
from asf_contracts.topology import ServiceQueues
from asf_kit import dlq
from asf_kit.settings import ServiceSettings
from asf_testing import (
    DATA_KEY,
    JWT_TEST_SECRET,
    SmtpServer,
    fresh_database,
    serving,
    unique_namespace,
    waiting,
)

ROOT = Path(__file__).resolve().parents[2]
CONSUMERS = ("casework", "notifications")


@dataclass
class Consumer:
    """One consuming service running in this process, and a channel to its queues."""

    name: str
    app: FastAPI
    settings: ServiceSettings
    queues: ServiceQueues
    channel: aio_pika.abc.AbstractChannel

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = self.app.state.runtime.pool
        return pool

    async def send(self, body: bytes, message_id: str, headers: dict[str, Any] | None = None,
                   *, to_dead_letters: bool = False) -> None:
        """Straight to the service's queue (or its dead-letter exchange), past the topic
        exchange, as a broken or hostile producer could."""
        message = aio_pika.Message(body, message_id=message_id, content_type="application/json",
                                   headers=headers or {},
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        if to_dead_letters:
            exchange = await self.channel.get_exchange(self.queues.dead_letter_exchange)
            await exchange.publish(message, routing_key=reg.COMPANY_REGISTERED + ".v1")
        else:
            await self.channel.default_exchange.publish(message, routing_key=self.queues.main)

    async def company_version(self, company_id: uuid.UUID) -> int | None:
        async with self.pool.acquire() as conn:
            version: int | None = await conn.fetchval(
                "SELECT version FROM companies WHERE id = $1", company_id)
            return version

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "BROKER_URL": self.settings.broker_url,
               "QUEUE_NAMESPACE": self.settings.queue_namespace,
               "DATABASE_URL": self.settings.database_url, "LOG_FORMAT": "console"}
        return subprocess.run(
            [sys.executable, "-m", f"{self.name}.cli", "dlq", *args], env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )


def _settings(name: str, dsn: str, broker_url: str, smtp_port: int) -> ServiceSettings:
    common: dict[str, Any] = {"database_url": dsn, "broker_url": broker_url,
                              "jwt_secret": JWT_TEST_SECRET, "queue_namespace": unique_namespace()}
    if name == "casework":
        from casework.settings import CaseworkSettings

        return CaseworkSettings(**common, follow_up_sweep_interval=0,
                                casework_data_key=DATA_KEY)
    from notifications.settings import NotificationsSettings

    return NotificationsSettings(**common, smtp_host="127.0.0.1", smtp_port=smtp_port,
                                 smtp_tls="none", smtp_timeout=3, retry_base_seconds=0.2,
                                 retry_cap_seconds=1.0, sweeper_interval=0.5,
                                 digest_enabled=False)


def _create_app(name: str, settings: ServiceSettings) -> FastAPI:
    if name == "casework":
        from casework.app import create_app as casework_app
        from casework.settings import CaseworkSettings

        assert isinstance(settings, CaseworkSettings)
        return casework_app(settings)
    from notifications.app import create_app as notifications_app
    from notifications.settings import NotificationsSettings

    assert isinstance(settings, NotificationsSettings)
    return notifications_app(settings)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="module", params=CONSUMERS)
async def consumer(request: pytest.FixtureRequest, postgres_url: str, broker_url: str,
                   smtp: SmtpServer) -> AsyncIterator[Consumer]:
    name: str = request.param
    migrations = ROOT / "services" / name / "migrations"
    async with fresh_database(postgres_url, f"poison_{name}", migrations) as dsn:
        settings = _settings(name, dsn, broker_url, smtp.port)
        queues = ServiceQueues(service=settings.queue_namespace + name)
        app = _create_app(name, settings)
        connection = await aio_pika.connect(broker_url)
        try:
            async with serving(app):
                channel = await connection.channel()
                yield Consumer(name, app, settings, queues, channel)
        finally:
            await connection.close()


def company_event(company_id: uuid.UUID, *, version: int = 1,
                  payload: dict[str, Any] | None = None) -> Envelope:
    return Envelope(
        event_type=reg.COMPANY_REGISTERED, event_version=version, producer="registry-test",
        aggregate_id=company_id, aggregate_version=1,
        payload=payload if payload is not None else {
            "id": str(company_id), "org_number": "769612-3450", "name": "Giftfritt AB",
            "legal_form": "aktiebolag", "municipality_code": "0180", "county_code": "01",
            "industries": ["cleaning"], "training_places": 2, "origin": "existing",
            "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": True,
            "verification_level": "self_declared",
            "contacts": [{"name": "Kontakt", "email": "giftfritt@example.se"}],
        },
    )


eventually = partial(waiting.eventually, within=20.0)


async def parked_by_id(c: Consumer) -> dict[str | None, dlq.Parked]:
    return {p.message_id: p for p in await dlq.list_parked(c.settings.broker_url, c.queues)}


async def test_poison_is_parked_with_its_reason_and_the_consumer_keeps_going(
    consumer: Consumer,
) -> None:
    c = consumer
    kinds = ("json", "binary", "version", "type", "schema")
    ids = {kind: f"poison-{kind}-{uuid.uuid4().hex[:8]}" for kind in kinds}
    await c.send(b'{"event_id": "not even finished', ids["json"])
    await c.send(b"\xff\xfe\x00 not utf-8", ids["binary"])
    exploded = Envelope(event_type="registry.company.exploded", event_version=1,
                        producer="registry-test", aggregate_id=uuid.uuid4(),
                        aggregate_version=1, payload={})
    await c.send(exploded.model_dump_json().encode(), ids["type"])
    unknown = company_event(uuid.uuid4(), version=99)
    await c.send(unknown.model_dump_json().encode(), ids["version"],
                 {"event_type": unknown.event_type, "event_version": 99})
    half = company_event(uuid.uuid4(), payload={"id": str(uuid.uuid4()), "name": "halv"})
    await c.send(half.model_dump_json().encode(), ids["schema"])
    valid = company_event(uuid.uuid4())
    await c.send(valid.model_dump_json().encode(), str(valid.event_id))

    assert await eventually(lambda: c.company_version(valid.aggregate_id),
                            "the valid event after the poison") == 1
    parked = await eventually(
        lambda: _all_parked(c, set(ids.values())), "every poison message parked")
    assert "malformed envelope" in parked[ids["json"]].reason
    assert "malformed envelope" in parked[ids["binary"]].reason
    assert "no handler for registry.company.exploded version 1" in parked[ids["type"]].reason
    assert f"no handler for {reg.COMPANY_REGISTERED} version 99" in parked[ids["version"]].reason
    assert "payload does not match its schema" in parked[ids["schema"]].reason
    for p in parked.values():
        assert p.headers["x-parked-by"] == c.queues.service
        assert p.parked_at
    # Nothing of the poison reached the database. (Other tests on the same broker publish to
    # `asf.events` too, so this looks only at its own events.)
    async with c.pool.acquire() as conn:
        recorded = {r["event_id"] for r in await conn.fetch(
            "SELECT event_id FROM inbox WHERE event_id = ANY($1::uuid[])",
            [valid.event_id, unknown.event_id, half.event_id, exploded.event_id])}
    assert recorded == {valid.event_id}
    # Listing left the queue as it was.
    assert set(ids.values()) <= set(await parked_by_id(c))


async def _all_parked(c: Consumer, ids: set[str]) -> dict[str | None, dlq.Parked] | None:
    parked = await parked_by_id(c)
    return parked if ids <= set(parked) else None


async def test_dlq_cli_lists_shows_and_redrives(consumer: Consumer) -> None:
    """An event parked while it could not be applied (here put in the dead-letter queue by
    hand, as after an outage) is applied once redriven; poison redriven is parked again."""
    c = consumer
    late = company_event(uuid.uuid4())
    await c.send(late.model_dump_json().encode(), str(late.event_id),
                 {"x-park-reason": "failed 5 times: ConnectionError: database restarting",
                  "x-original-routing-key": late.routing_key,
                  "x-parked-by": c.queues.service,
                  "x-parked-at": "2026-11-28T08:00:00+00:00"}, to_dead_letters=True)
    own_poison = f"poison-cli-{uuid.uuid4().hex[:8]}"
    await c.send(company_event(uuid.uuid4(), version=42).model_dump_json().encode(), own_poison)
    await eventually(lambda: _all_parked(c, {str(late.event_id), own_poison}),
                     "the parked events")
    before = await parked_by_id(c)

    listed = await asyncio.to_thread(c.cli, "list")
    assert listed.returncode == 0, listed.stderr
    assert str(late.event_id) in listed.stdout
    assert "database restarting" in listed.stdout
    assert listed.stdout.count("\n") >= len(before)

    shown = await asyncio.to_thread(c.cli, "show", str(late.event_id))
    assert shown.returncode == 0, shown.stderr
    assert "Giftfritt AB" in shown.stdout and str(late.aggregate_id) in shown.stdout

    missing = await asyncio.to_thread(c.cli, "show", "no-such-message")
    assert missing.returncode == 1 and "no such message" in missing.stdout

    one = await asyncio.to_thread(c.cli, "redrive", str(late.event_id))
    assert one.returncode == 0 and "redriven: 1" in one.stdout, one.stdout + one.stderr
    assert await eventually(lambda: c.company_version(late.aggregate_id),
                            "the redriven event applied") == 1
    after = await parked_by_id(c)
    assert str(late.event_id) not in after
    poison = {i for i in before if i and i.startswith("poison-")}
    assert own_poison in poison and poison <= set(after)

    # Redriving the rest: the poison comes back, is parked again, and says it was redriven.
    # (Other tests' bad events may have been parked here too: they are redriven alike.)
    rest = await asyncio.to_thread(c.cli, "redrive")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert int(rest.stdout.split("redriven:")[1].split()[0]) >= len(poison), rest.stdout
    again = await eventually(lambda: _redriven(c, poison), "the poison parked again")
    for p in again.values():
        assert p.headers.get("x-redriven-from") == c.queues.dead_letter
        assert p.reason  # with its reason again


async def _redriven(c: Consumer, ids: set[str]) -> dict[str | None, dlq.Parked] | None:
    parked = await parked_by_id(c)
    back = {k: v for k, v in parked.items() if k in ids and v.headers.get("x-redriven-from")}
    return back if set(back) == ids else None


@pytest.mark.parametrize("consumer", ["notifications"], indirect=True)
async def test_an_event_that_overtakes_its_company_waits_for_it(
    consumer: Consumer, smtp: SmtpServer
) -> None:
    """Found by the fault run: during a PostgreSQL restart a company's registered event went
    to the retry queue and the placement at it, from casework, arrived first. It is retried
    until the company (and so its contacts) is known, instead of being skipped for good."""
    c = consumer
    company_id = uuid.uuid4()
    email = f"overtaken-{company_id.hex[:8]}@example.se"
    started = Envelope(
        event_type="casework.placement.started", event_version=1, producer="casework-test",
        aggregate_id=uuid.uuid4(), aggregate_version=3, payload={
            "placement_id": str(uuid.uuid4()), "participant_id": str(uuid.uuid4()),
            "company_id": str(company_id), "municipality_code": "0180", "assigned_to": "cw-1",
            "kind": "work_training", "start": "2026-03-02"})
    await c.send(started.model_dump_json().encode(), str(started.event_id))
    await asyncio.sleep(1.0)  # the placement is tried first and finds no company
    registered = company_event(company_id, payload={
        **company_event(company_id).payload,
        "contacts": [{"name": "Kontakt", "email": email}]})
    await c.send(registered.model_dump_json().encode(), str(registered.event_id))

    mails = await eventually(lambda: _mails(smtp, email, "placering"), "the placement email",
                             within=30)
    assert len(mails) == 1

    # The SMTP server has the email before the sender records it as sent: wait for the
    # record instead of reading it at once.
    async def recorded_as_sent() -> bool:
        async with c.pool.acquire() as conn:
            statuses = await conn.fetch("SELECT status FROM deliveries WHERE event_id = $1",
                                        started.event_id)
        return [r["status"] for r in statuses] == ["sent"]

    await eventually(recorded_as_sent, "the delivery recorded as sent", within=10)
    assert len(await _mails(smtp, email, "placering")) == 1


async def _mails(smtp: SmtpServer, address: str, about: str) -> list[Any]:
    return smtp.to(address, about)
