"""The whole product, end to end: the three services with the real PostgreSQL and RabbitMQ
and a real SMTP server in this process.

A company is registered and verified; two participants are referred and placed there;
a third, placed there since last month, has a week of attendance reported by the company's
rep, last month's statement is issued, and her plan's review falls due; one is employed and
her first follow-up falls due; the other's case goes to a colleague; a learning example is
submitted; the company is deregistered. Every expected email arrives exactly once, every
event is applied once by each service that consumes it, one trace runs from an HTTP request
to the email, and no participant's personal data shows up in any event, log line or email.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asf_contracts.topology import ServiceQueues
from asf_kit import dlq
from asf_testing import (
    DATA_KEY,
    JWT_TEST_SECRET,
    EventTap,
    SmtpServer,
    auth,
    captured_logs,
    event_tap,
    eventually,
    fresh_database,
    identity_number,
    org_number,
    serving,
    text_of,
    unique_namespace,
)
from casework.app import create_app as casework_app
from casework.settings import CaseworkSettings
from casework.workdays import Month, first_working_day, is_working_day
from notifications.app import create_app as notifications_app
from notifications.settings import NotificationsSettings
from registry.app import create_app as registry_app
from registry.settings import RegistrySettings

ROOT = Path(__file__).resolve().parents[2]

OFFICER = auth("registry_officer", sub="officer-e2e")
REP = auth("company_rep", sub="rep-e2e")
CASE_WORKER_SUB = "cw-e2e"
CASE_WORKER = auth("case_worker", sub=CASE_WORKER_SUB, municipality_code="0180")
COLLEAGUE_SUB = "cw-e2e-colleague"
COLLEAGUE = auth("case_worker", sub=COLLEAGUE_SUB, municipality_code="0180")
ANALYST = auth("analyst", sub="analyst-e2e")

CECILIA = {"given_name": "Cecilia", "family_name": "Quarnströmer", "phone": "+46 70 777 88 99",
           "email": "cecilia.quarnstromer@example.org"}
PEOPLE = [
    {"given_name": "Astrid", "family_name": "Lindqvistsson", "phone": "+46 70 111 22 33",
     "email": "astrid.lindqvistsson@example.org"},
    {"given_name": "Bertil", "family_name": "Öhmanberg", "phone": "+46 70 444 55 66",
     "email": "bertil.ohmanberg@example.org"},
]


NUMBERS = [identity_number() for _ in [*PEOPLE, CECILIA]]
"""Each person's personnummer."""


@dataclass
class Stack:
    registry: httpx.AsyncClient
    casework: httpx.AsyncClient
    notifications: httpx.AsyncClient
    apps: dict[str, FastAPI]
    smtp: SmtpServer
    tap: EventTap
    logs: list[str]
    spans: InMemorySpanExporter
    namespace: str

    def pool(self, service: str) -> asyncpg.Pool:
        pool: asyncpg.Pool = self.apps[service].state.runtime.pool
        return pool


def memory_spans() -> InMemorySpanExporter:
    """Collect every finished span in memory, whichever provider the process already has."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="module")
async def stack(postgres_url: str, broker_url: str) -> AsyncIterator[Stack]:
    namespace = unique_namespace()
    smtp = SmtpServer()
    smtp.up()
    spans = memory_spans()
    common: dict[str, Any] = {"broker_url": broker_url, "jwt_secret": JWT_TEST_SECRET,
                              "queue_namespace": namespace, "relay_poll_interval": 0.2}
    with captured_logs("e2e") as logs:
        async with (
            fresh_database(postgres_url, "e2e_registry",
                           ROOT / "services/registry/migrations") as registry_db,
            fresh_database(postgres_url, "e2e_casework",
                           ROOT / "services/casework/migrations") as casework_db,
            fresh_database(postgres_url, "e2e_notifications",
                           ROOT / "services/notifications/migrations") as notifications_db,
            event_tap(broker_url, "#") as tap,
        ):
            apps = {
                "registry": registry_app(RegistrySettings(database_url=registry_db, **common)),
                "casework": casework_app(CaseworkSettings(
                    database_url=casework_db, casework_data_key=DATA_KEY,
                    follow_up_sweep_interval=0, plan_review_sweep_interval=0,
                    statement_sweep_interval=0, **common)),
                "notifications": notifications_app(NotificationsSettings(
                    database_url=notifications_db, smtp_host="127.0.0.1", smtp_port=smtp.port,
                    smtp_tls="none", smtp_timeout=5, retry_base_seconds=0.2, retry_cap_seconds=1,
                    sweeper_interval=0.2, digest_enabled=False, **common)),
            }
            try:
                async with (
                    serving(apps["registry"], "http://registry") as registry,
                    serving(apps["casework"], "http://casework") as casework,
                    serving(apps["notifications"], "http://notifications") as notifications,
                ):
                    yield Stack(registry, casework, notifications, apps, smtp, tap, logs,
                                spans, namespace)
            finally:
                smtp.down()


def mails_to(stack: Stack, address: str) -> list[Any]:
    return [m for m in stack.smtp.handler.messages if address in str(m["To"])]


async def test_the_whole_journey(stack: Stack) -> None:
    s = stack
    # People who get email, as an analyst registers them in notifications.
    for role, name, email, extra in (
        ("information_officer", "SKR Info", "info@skr.example", {}),
        ("registry_officer", "Registrator", "registrator@registry.example", {}),
        ("case_worker", "Handläggare", "handlaggare@stockholm.example",
         {"subject": CASE_WORKER_SUB, "municipality_code": "0180"}),
        ("case_worker", "Kollega", "kollega@stockholm.example",
         {"subject": COLLEAGUE_SUB, "municipality_code": "0180"}),
    ):
        r = await s.notifications.post("/contacts", json={
            "name": name, "email": email, "role": role, **extra}, headers=ANALYST)
        assert r.status_code == 201, r.text

    # 1. A company is registered and verified.
    org = org_number()
    r = await s.registry.post("/companies", headers=REP, json={
        "org_number": org, "name": "Kooperativet Gröna Händer", "legal_form": "ekonomisk_forening",
        "municipality_code": "0180", "industries": ["gardening"], "training_places": 4,
        "origin": "founded",
        "contacts": [{"name": "Kim Ek", "role": "manager", "email": "kim@grona.example"}],
        "workforce": {"as_of": "2026-10-01", "employees_total": 5, "engaged_total": 12,
                      "target_group_engaged": 7},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True}})
    assert r.status_code == 201, r.text
    company_id = r.json()["id"]
    r = await s.registry.post(f"/companies/{company_id}/verification",
                              json={"decision": "verified"}, headers=OFFICER)
    assert r.status_code == 200, r.text

    # 2. Two participants are referred, assessed and placed at the company.
    participants = []
    for i, person in enumerate(PEOPLE):
        r = await s.casework.post("/participants", headers=CASE_WORKER, json={
            **person, "personal_identity_number": NUMBERS[i],
            "referral_source": "social_services"})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        participants.append(pid)
        r = await s.casework.post(f"/participants/{pid}/transitions", json={"to": "assessment"},
                                  headers=CASE_WORKER)
        assert r.status_code == 200, r.text

    start = date.today()
    statement_id = await a_week_of_attendance_and_last_months_statement(s, company_id)

    async def place(pid: str) -> bool:
        r = await s.casework.post(f"/participants/{pid}/placements", headers=CASE_WORKER, json={
            "company_id": company_id, "kind": "work_training", "start": start.isoformat(),
            "hours_per_week": 20})
        return r.status_code == 201

    for pid in participants:  # the read model learns of the verification through the broker
        await eventually(lambda pid=pid: place(pid), "a placement at the verified company")

    # 3. Astrid is employed; her first follow-up falls due 90 days later.
    astrid = participants[0]
    r = await s.casework.post(f"/participants/{astrid}/transitions", headers=CASE_WORKER, json={
        "to": "employed", "employment": {"form": "wage_subsidy",
                                         "employer_company_id": company_id,
                                         "start": start.isoformat()}})
    assert r.status_code == 200, r.text
    announced = await s.apps["casework"].state.casework.sweep_follow_ups(
        start + timedelta(days=90))
    assert announced == 1

    # 3b. Bertil's case goes to a colleague, who has signed in to casework before.
    bertil = participants[1]
    assert (await s.casework.get("/participants", headers=COLLEAGUE)).status_code == 200
    r = await s.casework.get(f"/participants/{bertil}", headers=CASE_WORKER)
    r = await s.casework.patch(f"/participants/{bertil}", json={"assigned_to": COLLEAGUE_SUB},
                               headers={**CASE_WORKER, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200 and r.json()["assigned_to"] == COLLEAGUE_SUB, r.text

    async def reassigned() -> list[dict[str, Any]]:
        return [e for e in s.tap.of_type("casework.participant.reassigned")
                if e["aggregate_id"] == bertil]

    [event] = await eventually(reassigned, "the reassignment to be published")
    assert event["payload"] == {"participant_id": bertil, "municipality_code": "0180",
                                "from_assigned_to": CASE_WORKER_SUB,
                                "assigned_to": COLLEAGUE_SUB}
    r = await s.casework.get(f"/participants/{bertil}/timeline", headers=COLLEAGUE)
    assert [i["details"] for i in r.json()["items"] if i["kind"] == "reassigned"] == [
        {"from_assigned_to": CASE_WORKER_SUB, "assigned_to": COLLEAGUE_SUB}]

    # 4. A learning example is submitted over the registry's HTTP API.
    r = await s.registry.post("/learning-examples", headers=CASE_WORKER, json={
        "municipality_code": "0180", "company_ids": [company_id],
        "title": "Trädgård som väg till arbete", "summary": "Arbetsträning i stadsodling.",
        "collaboration_types": ["work_training"],
        "contact": {"name": "Stina Inlämnare", "email": "stina@stockholm.example"}})
    assert r.status_code == 201, r.text
    example_id = r.json()["id"]

    # 5. The company is deregistered while Bertil is still in training there.
    r = await s.registry.post(f"/companies/{company_id}/deregistration",
                              json={"reason": "bankruptcy"}, headers=OFFICER)
    assert r.status_code == 200, r.text

    # 6. The daily digest counts Astrid's employment for the information officer.
    async def flagged() -> bool:
        return bool(s.tap.of_type("casework.placements.flagged"))

    await eventually(flagged, "the placements to be flagged")

    async def employed_collected() -> bool:
        return bool(await s.pool("notifications").fetchval(
            "SELECT count(*) FROM inbox WHERE event_type = 'casework.participant.employed'"))

    await eventually(employed_collected, "the employment to reach notifications")
    await s.apps["notifications"].state.notifications.run_digest(
        datetime.now(ZoneInfo("Europe/Stockholm")).date())

    # The reassignment reaches the new case worker by email where notifications routes it
    # (SPEC 3.3); the journey counts that email exactly when a subscription says so.
    r = await s.notifications.get("/subscriptions", headers=ANALYST,
                                  params={"event_type": "casework.participant.reassigned"})
    assert r.status_code == 200, r.text
    reassignment_mailed = bool(r.json()["items"])
    expected = {
        "registrator@registry.example": 1,   # company registered
        # receipt, verified, 3 placements, last month's statement, deregistered
        "kim@grona.example": 7,
        "info@skr.example": 2,               # learning example, digest
        # Astrid's follow-up due, Cecilia's plan review due and her placement flagged
        "handlaggare@stockholm.example": 3,
        # Bertil's placement flagged (his case is hers now), and the reassignment
        "kollega@stockholm.example": 1 + reassignment_mailed,
    }

    async def all_mail() -> bool:
        return sum(len(mails_to(s, a)) for a in expected) >= sum(expected.values())

    await eventually(all_mail, "every expected email", within=60)
    await asyncio.sleep(1.5)  # a duplicate would have time to arrive
    assert {a: len(mails_to(s, a)) for a in expected} == expected
    message_ids = Counter(str(m["Message-ID"]) for m in s.smtp.handler.messages)
    assert all(n == 1 for n in message_ids.values()), message_ids
    assert len(s.smtp.handler.messages) == sum(expected.values())

    # The learning example reached SKR's information officer, once, with its content.
    [example_mail] = [m for m in mails_to(s, "info@skr.example")
                      if "Trädgård som väg till arbete" in text_of(m)]
    assert "Stina Inlämnare" in text_of(example_mail)

    # The statement reached the company's contact once, as a link to it (totals, no names).
    [statement_mail] = [m for m in mails_to(s, "kim@grona.example")
                        if f"/statements/{statement_id}" in text_of(m)]
    assert "Cecilia" not in text_of(statement_mail)

    # Every event was applied once by each consumer, and nothing was parked.
    await check_each_event_applied_once(s)
    for service in ("casework", "notifications"):
        parked = await dlq.list_parked(str(s.apps[service].state.runtime.settings.broker_url),
                                       ServiceQueues(service=s.namespace + service))
        assert parked == []

    # One trace from the HTTP request through the outbox and the broker to the email.
    check_one_trace_to_the_email(s, example_id)

    # No participant's personal data anywhere outside casework's own database.
    check_no_personal_data(s, participants)


async def a_week_of_attendance_and_last_months_statement(s: Stack, company_id: str) -> str:
    """Cecilia has been in training at the company since last month; its rep reports her first
    full week there, and on the first working day of this month last month is closed."""
    today = date.today()
    last_month = Month.of(today).previous()
    monday = next(d for d in last_month.days() if d.weekday() == 0 and d.day + 4 <= len(
        last_month.days()) and all(is_working_day(d + timedelta(days=i)) for i in range(5)))
    r = await s.casework.post("/participants", headers=CASE_WORKER, json={
        **CECILIA, "personal_identity_number": NUMBERS[2],
        "referral_source": "employment_service"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = await s.casework.post(f"/participants/{pid}/transitions", json={"to": "assessment"},
                              headers=CASE_WORKER)
    assert r.status_code == 200, r.text

    async def place() -> httpx.Response | None:
        r = await s.casework.post(f"/participants/{pid}/placements", headers=CASE_WORKER, json={
            "company_id": company_id, "kind": "work_training", "start": monday.isoformat(),
            "hours_per_week": 20})
        return r if r.status_code == 201 else None

    placement = (await eventually(place, "a placement at the verified company")).json()
    r = await s.casework.post("/rates", headers=CASE_WORKER, json={
        "kind": "work_training", "unit": "day", "amount_sek": 410, "valid_from": "2020-01-01"})
    assert r.status_code == 201, r.text

    rep = auth("company_rep", sub="rep-e2e", company_id=company_id)
    r = await s.casework.get(f"/companies/{company_id}/placements", headers=rep)
    assert [(x["given_name"], x["family_initial"]) for x in r.json()["items"]] == [
        ("Cecilia", "Q")]
    week = [(0, 4, None), (1, 4, None), (2, 0, "sick"), (3, 4, None), (4, 2, "leave")]
    for offset, hours, reason in week:
        day = monday + timedelta(days=offset)
        r = await s.casework.put(f"/placements/{placement['id']}/attendance/{day.isoformat()}",
                                 headers=rep, json={"hours_present": hours,
                                                    "absence_reason": reason})
        assert r.status_code == 201, r.text

    casework = s.apps["casework"].state.casework
    issued = await casework.close_due_months(first_working_day(Month.of(today)))
    assert [(x.company_id, x.month) for x in issued] == [(UUID(company_id), str(last_month))]
    assert await casework.close_due_months(first_working_day(Month.of(today))) == []
    r = await s.casework.get("/statements", headers=rep)
    [statement] = r.json()["items"]
    assert statement["month"] == str(last_month) and statement["kind"] == "original"
    assert statement["totals"]["days_present"] == 4
    assert statement["totals"]["amount_sek"] == 4 * 410
    assert statement["totals"]["absence_days"] == {"sick": 1, "leave": 1, "unexcused": 0,
                                                   "other": 0}
    r = await s.casework.get(f"/statements/{statement['id']}.csv", headers=rep)
    assert r.status_code == 200 and "Cecilia" in r.text and "Quarnströmer" not in r.text

    async def published() -> list[dict[str, Any]]:
        return s.tap.of_type("casework.statement.issued")

    events = await eventually(published, "the statement to be published")
    assert [e["payload"]["statement_id"] for e in events] == [statement["id"]]

    # Her case worker writes her plan with her; the review falls due two weeks later.
    review = today + timedelta(days=14)
    r = await s.casework.put(f"/participants/{pid}/plan", headers={
        **CASE_WORKER, "If-None-Match": "*"}, json={
        "goals": [{"text": "Klara fyra timmar om dagen", "target_date": "2030-01-01"}],
        "activities": [{"text": "Arbetsträning i växthuset"}], "participant_involved": True,
        "next_review_date": review.isoformat()})
    assert r.status_code == 201, r.text
    assert await casework.sweep_plan_reviews(review - timedelta(days=1)) == 0
    assert await casework.sweep_plan_reviews(review) == 1
    assert await casework.sweep_plan_reviews(review) == 0
    return str(statement["id"])


async def check_each_event_applied_once(s: Stack) -> None:
    published = {e["event_id"]: f"{e['event_type']}.v{e['event_version']}"
                 for e in s.tap.bodies()}
    for service in ("casework", "notifications"):
        bound = {k for c in s.apps[service].state.runtime.consumers for k in c.routing_keys}
        rows = await s.pool(service).fetch("SELECT event_id::text FROM inbox")
        seen = Counter(r["event_id"] for r in rows)
        assert all(n == 1 for n in seen.values())
        expected_ids = {eid for eid, key in published.items() if key in bound}
        missing = {published[e] for e in expected_ids - set(seen)}
        assert not missing, f"{service} did not apply {missing}"
        assert set(seen) <= set(published), f"{service} applied events nobody published"
    for service in ("registry", "casework"):
        backlog = await s.pool(service).fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        assert backlog == 0


def check_one_trace_to_the_email(s: Stack, example_id: str) -> None:
    [event] = [e for e in s.tap.bodies() if e["aggregate_id"] == example_id]
    spans = s.spans.get_finished_spans()
    [publish] = [x for x in spans if x.name.startswith("publish ")
                 and (x.attributes or {}).get("messaging.message.id") == event["event_id"]]
    in_trace = [x for x in spans if x.context.trace_id == publish.context.trace_id]
    names = [x.name for x in in_trace]
    assert "POST /learning-examples" in names  # the request that started it
    assert "consume registry.learning_example.submitted" in names
    assert "smtp send" in names, names
    [root] = [x for x in in_trace if x.parent is None]
    assert root.name == "POST /learning-examples"


def check_no_personal_data(s: Stack, participants: list[str]) -> None:
    secrets = [v for i, p in enumerate([*PEOPLE, CECILIA]) for v in (
        p["given_name"], p["family_name"], p["phone"], p["email"], NUMBERS[i],
        NUMBERS[i].replace("-", "")[2:])]
    events = [m.body.decode() for m in s.tap.messages]
    emails = [text_of(m) + str(m["To"]) for m in s.smtp.handler.messages]
    for where, texts in (("event", events), ("log line", s.logs), ("email", emails)):
        leaks = [(secret, text[:200]) for text in texts for secret in secrets if secret in text]
        assert not leaks, f"personal data in an {where}: {leaks[:3]}"
    assert any(p in " ".join(events) for p in participants)  # they travel as UUIDs
    assert len(s.logs) > 50  # the scan read real output
