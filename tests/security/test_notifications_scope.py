"""Issue 12 item 5, tried from outside: a recipient only ever gets references to participants
of their own municipality, even from one event that spans several.

The service runs with its real database, broker and an SMTP server in this process. Events
arrive over the broker as casework would publish them; what each person's mailbox receives
is read back from the SMTP server and searched for every participant reference in play.
The contacts include the traps an analyst's mistake or a hostile contact would set: a
contact claiming another municipality's case worker's `sub`, a national contact subscribed
to participant events, another company's contact subscribed to flagged placements.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager

from asf_contracts import EXCHANGE, Envelope
from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_contracts.topology import ServiceQueues
from asf_testing import (
    JWT_TEST_SECRET,
    SmtpServer,
    auth,
    delete_queues,
    fresh_database,
    text_of,
    unique_namespace,
)
from notifications.app import create_app
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "notifications" / "migrations"
ANALYST = auth("analyst", sub="analyst-scope")
STOCKHOLM, GOTEBORG, MALMO = "0180", "1480", "1280"


@dataclass
class Stage:
    client: httpx.AsyncClient
    smtp: SmtpServer
    exchange: aio_pika.abc.AbstractExchange
    municipality_of: dict[str, str] = field(default_factory=dict)
    """Every participant reference in play → the municipality of that participant."""

    async def publish(self, event_type: str, payload: dict[str, Any]) -> Envelope:
        env = Envelope(event_type=event_type, event_version=1, producer="casework",
                       aggregate_id=uuid.uuid4(), aggregate_version=1, payload=payload)
        await self.exchange.publish(
            aio_pika.Message(env.model_dump_json().encode(), message_id=str(env.event_id),
                             content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=env.routing_key)
        return env

    def participant(self, municipality_code: str) -> uuid.UUID:
        pid = uuid.uuid4()
        self.municipality_of[pid.hex[:8].upper()] = municipality_code
        return pid

    def references_in(self, mail: EmailMessage) -> set[str]:
        text = text_of(mail)
        return {ref for ref in self.municipality_of if ref in text}


@pytest.fixture(scope="module")
async def stage(postgres_url: str, broker_url: str) -> AsyncIterator[Stage]:
    smtp = SmtpServer()
    smtp.up()
    namespace = unique_namespace()
    connection = await aio_pika.connect(broker_url)
    try:
        async with fresh_database(postgres_url, "notifications_scope", MIGRATIONS) as dsn:
            app = create_app(NotificationsSettings(
                database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
                queue_namespace=namespace, smtp_host="127.0.0.1", smtp_port=smtp.port,
                smtp_tls="none", sweeper_interval=0.3, digest_enabled=False,
                frontend_base_url="https://asf.test"))
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), \
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://notifications") as client:
                channel = await connection.channel()
                exchange = await channel.declare_exchange(
                    EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
                yield Stage(client, smtp, exchange)
    finally:
        await connection.close()
        smtp.down()
        await delete_queues(broker_url, ServiceQueues(service=namespace + "notifications"))


async def contact(s: Stage, role: str, **fields: Any) -> dict[str, Any]:
    r = await s.client.post("/contacts", headers=ANALYST, json={
        "name": f"Kontakt {role}", "email": f"{role}-{uuid.uuid4().hex[:8]}@example.se",
        "role": role, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def subscribe(s: Stage, event_type: str, **fields: Any) -> None:
    r = await s.client.post("/subscriptions", headers=ANALYST,
                            json={"event_type": event_type, **fields})
    assert r.status_code == 201, r.text


async def settled(s: Stage, event: Envelope) -> list[dict[str, Any]]:
    """The event's deliveries once none is on its way (they are stored together)."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        r = await s.client.get("/deliveries", params={"event_id": str(event.event_id)},
                               headers=ANALYST)
        items: list[dict[str, Any]] = r.json()["items"]
        if items and all(d["status"] in ("sent", "skipped", "failed") for d in items):
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event.event_type} did not settle")


def placement(pid: uuid.UUID, code: str, who: str) -> dict[str, Any]:
    return {"placement_id": str(uuid.uuid4()), "participant_id": str(pid),
            "municipality_code": code, "assigned_to": who}


async def test_no_recipient_gets_a_reference_to_another_municipalitys_participant(
    stage: Stage,
) -> None:
    s = stage
    anna, bo = f"anna-{uuid.uuid4().hex[:6]}", f"bo-{uuid.uuid4().hex[:6]}"
    cw_stockholm = await contact(s, "case_worker", subject=anna, municipality_code=STOCKHOLM)
    cw_goteborg = await contact(s, "case_worker", subject=bo, municipality_code=GOTEBORG)
    # A Stockholm contact that claims Bo's sub (a mistake, or someone hoping to be copied).
    impostor = await contact(s, "case_worker", subject=bo, municipality_code=STOCKHOLM)
    # A Göteborg team lead who asked for every flagged placement, and a national officer
    # subscribed to participant events by role.
    lead = await contact(s, "team_lead", municipality_code=GOTEBORG)
    national = await contact(s, "information_officer")
    await subscribe(s, cw.PLACEMENTS_FLAGGED, contact_id=lead["id"])
    for event_type in (cw.PLACEMENTS_FLAGGED, cw.FOLLOW_UP_DUE, cw.PARTICIPANT_REASSIGNED,
                       cw.PLAN_REVIEW_DUE):
        await subscribe(s, event_type, role="information_officer")
    # An analyst's subscription filtered to Stockholm, for a Malmö contact.
    malmo = await contact(s, "team_lead", municipality_code=MALMO)
    await subscribe(s, cw.FOLLOW_UP_DUE, contact_id=malmo["id"], municipality_code=STOCKHOLM)
    # Another company's contact (in Stockholm) subscribed to flagged placements.
    other_company = uuid.uuid4()
    neighbour = f"granne-{uuid.uuid4().hex[:6]}@example.se"
    await s.publish(reg.COMPANY_REGISTERED, {
        "id": str(other_company), "org_number": "769600-1234", "name": "Grannbolaget",
        "legal_form": "aktiebolag", "municipality_code": STOCKHOLM, "county_code": "01",
        "industries": ["cleaning"], "training_places": 2, "origin": "existing",
        "status": "active", "qualifies_as_asf": True, "reserved_contract_eligible": False,
        "verification_level": "verified",
        "contacts": [{"name": "Granne", "email": neighbour}]})
    await subscribe(s, cw.PLACEMENTS_FLAGGED, role="company_contact",
                    company_id=str(other_company))

    # One deregistration flags placements of two municipalities at once.
    a1, a2 = s.participant(STOCKHOLM), s.participant(STOCKHOLM)
    b1 = s.participant(GOTEBORG)
    a_elsewhere = s.participant(GOTEBORG)  # Anna is named for a Göteborg placement too
    company = uuid.uuid4()
    flagged = await s.publish(cw.PLACEMENTS_FLAGGED, {
        "company_id": str(company), "company_name": "Konkursbolaget", "reason": "bankruptcy",
        "case_workers": [anna, bo],
        "placements": [placement(a1, STOCKHOLM, anna), placement(a2, STOCKHOLM, anna),
                       placement(b1, GOTEBORG, bo),
                       placement(a_elsewhere, GOTEBORG, anna)]})
    follow_up = await s.publish(cw.FOLLOW_UP_DUE, {
        "participant_id": str(s.participant(GOTEBORG)), "municipality_code": GOTEBORG,
        "assigned_to": bo, "offset_days": 90, "due_date": "2026-05-01",
        "employment_start": "2026-01-31"})
    reassigned = await s.publish(cw.PARTICIPANT_REASSIGNED, {
        "participant_id": str(s.participant(GOTEBORG)), "municipality_code": GOTEBORG,
        "from_assigned_to": anna, "assigned_to": bo})
    review = await s.publish(cw.PLAN_REVIEW_DUE, {
        "participant_id": str(s.participant(STOCKHOLM)), "municipality_code": STOCKHOLM,
        "assigned_to": anna, "review_date": "2026-06-01", "plan_version": 1})
    # A follow-up in Stockholm: the Malmö contact's filter matches the event, not them.
    stockholm_follow_up = await s.publish(cw.FOLLOW_UP_DUE, {
        "participant_id": str(s.participant(STOCKHOLM)), "municipality_code": STOCKHOLM,
        "assigned_to": anna, "offset_days": 180, "due_date": "2026-07-01",
        "employment_start": "2026-01-01"})

    events = (flagged, follow_up, reassigned, review, stockholm_follow_up)
    stored = {e.event_id: await settled(s, e) for e in events}

    # What each mailbox got: every reference in it is of the owner's municipality.
    own = {cw_stockholm["email"]: STOCKHOLM, cw_goteborg["email"]: GOTEBORG,
           impostor["email"]: STOCKHOLM, lead["email"]: GOTEBORG, malmo["email"]: MALMO,
           national["email"]: None}
    for mail in s.smtp.handler.messages:
        refs = s.references_in(mail)
        to = str(mail["To"])
        if to == neighbour:  # their company's registration receipt, and nothing else
            assert not refs and "Grannbolaget" in mail["Subject"]
            continue
        assert refs, f"an email without a reference: {mail['Subject']}"
        assert to in own, f"an email to someone outside the test: {to}"
        leaked = {r for r in refs if s.municipality_of[r] != own[to]}
        assert not leaked, f"{to} ({own[to]}) got {leaked} from {mail['Subject']}"

    def refs_to(c: dict[str, Any]) -> set[str]:
        return {r for m in s.smtp.to(c["email"]) for r in s.references_in(m)}

    ref = {p: p.hex[:8].upper() for p in (a1, a2, b1, a_elsewhere)}
    # Each case worker: only their own placements of their own municipality.
    assert {ref[a1], ref[a2]} <= refs_to(cw_stockholm)
    assert ref[a_elsewhere] not in refs_to(cw_stockholm)
    assert ref[b1] in refs_to(cw_goteborg)
    # The team lead: all of Göteborg's flagged placements, nothing of Stockholm's.
    assert {r for m in s.smtp.to(lead["email"]) for r in s.references_in(m)} == {
        ref[b1], ref[a_elsewhere]}
    # Nobody else got anything at all.
    for nobody in (impostor, national, malmo):
        assert s.smtp.to(nobody["email"]) == [], nobody["role"]

    # Each refusal is recorded, saying why and naming nobody.
    skipped = [d for items in stored.values() for d in items if d["status"] == "skipped"]
    skipped_to = {d["recipient"] for d in skipped}
    assert {impostor["email"], national["email"], malmo["email"]} <= skipped_to
    for d in skipped:
        assert not any(r in (d["last_error"] or "") for r in s.municipality_of), d
    # Every delivery of a participant event that went out went to its municipality.
    sent_to = {d["recipient"] for items in stored.values() for d in items
               if d["status"] == "sent"}
    assert sent_to == {cw_stockholm["email"], cw_goteborg["email"], lead["email"]}


async def test_a_case_worker_contact_without_a_municipality_is_refused(stage: Stage) -> None:
    r = await stage.client.post("/contacts", headers=ANALYST, json={
        "name": "Utan kommun", "email": "utan@example.se", "role": "case_worker",
        "subject": "cw-x"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["municipality_code"]
    r = await stage.client.get("/contacts", params={"role": "case_worker"}, headers=ANALYST)
    assert all(c["email"] != "utan@example.se" for c in r.json()["items"])
