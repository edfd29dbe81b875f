"""Events in, emails out: real RabbitMQ, real PostgreSQL, a real SMTP server."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_testing import text_of
from notifications import store
from notifications.store import NewDelivery

FRONTEND = "https://asf.test"


def learning_example(title: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "municipality_code": "0180", "company_ids": [],
            "title": title, "summary": "Samverkan som fungerar",
            "collaboration_types": ["work_training"],
            "contact": {"name": "Eva Exempel", "email": "eva@example.se"}}


def company(company_id: uuid.UUID, *emails: str, status: str = "pending") -> dict[str, Any]:
    return {
        "id": str(company_id), "org_number": "769600-1234", "name": f"Bolaget {company_id.hex[:6]}",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180", "county_code": "01",
        "industries": ["cafe_restaurant"], "training_places": 3, "origin": "founded",
        "status": status, "qualifies_as_asf": True, "reserved_contract_eligible": True,
        "verification_level": "self_declared",
        "contacts": [{"name": f"Kontakt {e.split('@')[0]}", "email": e} for e in emails],
    }




async def test_learning_example_reaches_the_information_officer_once(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any
) -> None:
    officer = await new_contact("information_officer")
    title = f"Exempel {uuid.uuid4().hex[:6]}"
    event = await publish(reg.LEARNING_EXAMPLE_SUBMITTED, learning_example(title))

    mails = await eventually(lambda: smtp.to(officer["email"], title), what="the email")
    sent = await eventually(lambda: _sent(deliveries, event_id=event.event_id,
                                          contact_id=officer["id"]), what="status sent")
    assert len(mails) == 1
    assert mails[0]["Subject"] == f"Nytt lärande exempel: {title}"
    assert mails[0]["Message-ID"] == f"<{sent['id']}@asf-samverkan>" == sent["message_id"]
    assert sent["attempts"] == 1 and sent["template"] == "learning_example_submitted"
    assert sent["template_version"] >= 1 and sent["template_locale"] == "sv"


async def _sent(deliveries: Any, **filters: Any) -> dict[str, Any] | None:
    items = await deliveries(**filters)
    return items[0] if items and items[0]["status"] == "sent" else None


async def test_the_same_event_twice_sends_one_email(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any
) -> None:
    officer = await new_contact("information_officer", locale="en")
    mark = uuid.uuid4().hex[:8]
    first = await publish(reg.LEARNING_EXAMPLE_SUBMITTED, learning_example(f"Twice {mark}"))
    await publish(first.event_type, {}, envelope=first)
    await publish(first.event_type, {}, envelope=first)
    sentinel = await publish(reg.LEARNING_EXAMPLE_SUBMITTED,
                             learning_example(f"Sentinel {mark}"))

    await eventually(lambda: _sent(deliveries, event_id=sentinel.event_id,
                                   contact_id=officer["id"]), what="the sentinel")
    await eventually(lambda: _sent(deliveries, event_id=first.event_id,
                                   contact_id=officer["id"]), what="the first")
    subjects = [m["Subject"] for m in smtp.to(officer["email"], mark)]
    assert sorted(subjects) == [f"New learning example: Sentinel {mark}",
                                f"New learning example: Twice {mark}"]
    assert len(await deliveries(event_id=first.event_id, contact_id=officer["id"])) == 1


async def test_an_smtp_server_that_is_down_gets_the_email_when_it_is_back(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any
) -> None:
    officer = await new_contact("information_officer")
    smtp.down()
    try:
        title = f"Down {uuid.uuid4().hex[:8]}"
        event = await publish(reg.LEARNING_EXAMPLE_SUBMITTED, learning_example(title))

        async def retrying() -> dict[str, Any] | None:
            items = await deliveries(event_id=event.event_id, contact_id=officer["id"])
            ok = items and items[0]["status"] == "retrying" and items[0]["attempts"] >= 2
            return items[0] if ok else None

        waiting = await eventually(retrying, what="retrying")
        assert waiting["last_error"] and waiting["next_attempt_at"]
    finally:
        smtp.up()
    sent = await eventually(lambda: _sent(deliveries, event_id=event.event_id,
                                          contact_id=officer["id"]), what="sent after outage")
    mails = smtp.to(officer["email"], title)
    assert [m["Message-ID"] for m in mails] == [sent["message_id"]]


async def test_a_4xx_is_retried_and_a_5xx_fails_for_good_until_retried(
    client: httpx.AsyncClient, analyst: dict[str, str], publish: Any, new_contact: Any,
    smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    busy = await new_contact("information_officer")
    gone = await new_contact("information_officer")
    smtp.tempfail.add(busy["email"])
    smtp.reject.add(gone["email"])
    title = f"Refused {uuid.uuid4().hex[:8]}"
    event = await publish(reg.LEARNING_EXAMPLE_SUBMITTED, learning_example(title))

    async def failed() -> dict[str, Any] | None:
        items = await deliveries(status="failed", contact_id=gone["id"], event_id=event.event_id)
        return items[0] if items else None

    f = await eventually(failed, what="failed")
    assert f["event_id"] == str(event.event_id) and f["attempts"] == 1
    assert f["last_error"].startswith("550")

    async def retried_4xx() -> bool:
        items = await deliveries(event_id=event.event_id, contact_id=busy["id"])
        return bool(items) and items[0]["status"] == "retrying" and items[0]["attempts"] >= 2

    await eventually(retried_4xx, what="4xx retried")
    smtp.tempfail.discard(busy["email"])
    await eventually(lambda: _sent(deliveries, event_id=event.event_id, contact_id=busy["id"]),
                     what="4xx sent")

    smtp.reject.discard(gone["email"])
    r = await client.post(f"/deliveries/{f['id']}/retry", headers=analyst)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("pending", "sending", "sent")
    sent = await eventually(lambda: _sent(deliveries, event_id=event.event_id,
                                          contact_id=gone["id"]), what="retried send")
    assert sent["id"] == f["id"] and len(smtp.to(gone["email"], title)) == 1
    r = await client.post(f"/deliveries/{f['id']}/retry", headers=analyst)
    assert r.status_code == 409 and r.json()["current_status"] == "sent"


async def test_flagged_placements_reach_the_assigned_case_workers_without_personal_data(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any
) -> None:
    a, b = f"cw-{uuid.uuid4().hex[:8]}", f"cw-{uuid.uuid4().hex[:8]}"
    unknown = f"cw-{uuid.uuid4().hex[:8]}"
    worker_a = await new_contact("case_worker", subject=a, municipality_code="0180")
    worker_b = await new_contact("case_worker", subject=b, municipality_code="0180")
    participants = [uuid.uuid4() for _ in range(4)]
    assigned = [a, a, b, unknown]
    company_id = uuid.uuid4()
    event = await publish(cw.PLACEMENTS_FLAGGED, {
        "company_id": str(company_id), "company_name": "Caféet i parken", "reason": "bankruptcy",
        "case_workers": [a, b, unknown],
        "placements": [{"placement_id": str(uuid.uuid4()), "participant_id": str(p),
                        "municipality_code": "0180", "assigned_to": who}
                       for p, who in zip(participants, assigned, strict=True)],
    }, aggregate_id=company_id, aggregate_version=4)

    mail_a = (await eventually(lambda: smtp.to(worker_a["email"]), what="mail to a"))[0]
    mail_b = (await eventually(lambda: smtp.to(worker_b["email"]), what="mail to b"))[0]
    text_a, text_b = text_of(mail_a), text_of(mail_b)
    assert mail_a["Subject"] == "2 placering(ar) hos Caféet i parken behöver ses över"
    for p in participants[:2]:
        assert p.hex[:8].upper() in text_a and f"{FRONTEND}/participants/{p}" in text_a
        assert p.hex[:8].upper() not in text_b
    assert participants[2].hex[:8].upper() in text_b
    for text in (text_a, text_b):
        assert a not in text and b not in text  # nothing else from the payload
    skipped = await deliveries(event_id=event.event_id, status="skipped")
    assert len(skipped) == 1 and unknown in skipped[0]["last_error"]
    assert a not in skipped[0]["last_error"]


async def test_company_contacts_come_from_the_newest_company_event(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any,
    notifications_app: FastAPI,
) -> None:
    """Events are handled concurrently, so the test waits for each step it builds on."""
    officer = await new_contact("registry_officer")
    company_id = uuid.uuid4()
    first, second = f"first-{company_id.hex[:8]}@example.se", f"second-{company_id.hex[:8]}@ex.se"
    await publish(reg.COMPANY_REGISTERED, company(company_id, first), aggregate_id=company_id)
    receipt = (await eventually(lambda: smtp.to(first), what="receipt"))[0]
    assert receipt["Subject"].startswith("Vi har tagit emot registreringen")
    name = company(company_id)["name"]
    review = (await eventually(lambda: smtp.to(officer["email"], name), what="review"))[0]
    assert review["Subject"].startswith("Nytt företag att granska")

    participant = uuid.uuid4()
    await publish(cw.PLACEMENT_STARTED, {
        "placement_id": str(uuid.uuid4()), "participant_id": str(participant),
        "company_id": str(company_id), "municipality_code": "0180", "assigned_to": "cw-x",
        "kind": "work_training", "start": "2026-03-02",
    })
    started = (await eventually(lambda: [m for m in smtp.to(first) if "placering" in
                                         m["Subject"]], what="placement mail"))[0]
    assert started["Subject"] == f"Ny placering startar 2026-03-02 hos Bolaget {company_id.hex[:6]}"
    assert participant.hex[:8].upper() in text_of(started)
    assert "cw-x" not in text_of(started)

    # Version 3 names a new contact; version 2 arrives late and must not undo it.
    await publish(reg.COMPANY_UPDATED, company(company_id, second), aggregate_id=company_id,
                  aggregate_version=3)

    async def applied() -> bool:
        async with notifications_app.state.runtime.pool.acquire() as conn:
            version = await conn.fetchval("SELECT version FROM companies WHERE id = $1",
                                          company_id)
        return bool(version == 3)

    await eventually(applied, what="version 3 applied")
    late = await publish(reg.COMPANY_VERIFIED, company(company_id, first, status="active"),
                         aggregate_id=company_id, aggregate_version=2)
    verified = (await eventually(lambda: smtp.to(second), what="verified to the new contact"))[0]
    assert "verifierat" in verified["Subject"]
    items = await deliveries(event_id=late.event_id)
    assert [d["recipient"] for d in items] == [second]
    assert len(smtp.to(first)) == 2


async def test_nobody_to_reach_is_recorded_not_lost(
    publish: Any, eventually: Any, deliveries: Any
) -> None:
    event = await publish(cw.FOLLOW_UP_DUE, {
        "participant_id": str(uuid.uuid4()), "municipality_code": "0180",
        "assigned_to": "cw-nobody-knows", "offset_days": 90, "due_date": "2026-05-01",
        "employment_start": "2026-01-31",
    })
    skipped = await eventually(lambda: deliveries(event_id=event.event_id), what="skipped")
    assert skipped[0]["status"] == "skipped" and skipped[0]["contact_id"] is None
    assert "cw-nobody-knows" in skipped[0]["last_error"]


async def test_the_daily_digest_counts_employments_per_municipality(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any,
    notifications_app: FastAPI,
) -> None:
    officer = await new_contact("information_officer", locale="en")
    pool = notifications_app.state.runtime.pool
    day = datetime(2025, 3, 14, 10, tzinfo=UTC)
    events = []
    for code, when in (("0180", day), ("0180", day), ("1480", day),
                       ("1480", datetime(2025, 3, 15, 10, tzinfo=UTC))):
        events.append(await publish(cw.PARTICIPANT_EMPLOYED, {
            "participant_id": str(uuid.uuid4()), "municipality_code": code,
            "assigned_to": "cw-1", "employment_form": "wage_subsidy", "start": "2025-03-14",
        }, occurred_at=when))

    async def collected() -> bool:
        async with pool.acquire() as conn:
            n = await conn.fetchval(
                "SELECT count(*) FROM digest_items WHERE contact_id = $1",
                uuid.UUID(officer["id"]))
        return bool(n == 4)

    await eventually(collected, what="digest items")
    at_once = await deliveries(contact_id=officer["id"], event_id=events[0].event_id)
    assert at_once == []  # collected for the digest, not sent

    notifications = notifications_app.state.notifications
    made = await notifications.run_digest(date(2025, 3, 14))
    assert made
    again = await notifications.run_digest(date(2025, 3, 14))
    assert again == []
    mail = (await eventually(lambda: smtp.to(officer["email"], "2025-03-14"), what="digest"))[0]
    assert mail["Subject"] == "Daily summary 2025-03-14: 3 event(s)"
    text = text_of(mail)
    assert "Participants employed: 3" in text
    assert "municipality 0180: 2" in text and "municipality 1480: 1" in text

    # The clock decides which day a scheduled run sums up.
    early = datetime(2025, 3, 16, 5, tzinfo=UTC)  # 06:00 in Stockholm, before 07:00
    assert await notifications.run_due_digest(early) == []
    later = datetime(2025, 3, 16, 7, tzinfo=UTC)
    assert await notifications.run_due_digest(later)
    second = await eventually(lambda: smtp.to(officer["email"], "2025-03-15"),
                              what="next digest")
    assert "municipality 1480: 1" in text_of(second[0])
    digests = [d for d in await deliveries(contact_id=officer["id"])
               if d["event_type"] == "notifications.daily_digest"]
    assert len(digests) == 2


async def test_a_delivery_stuck_in_sending_is_sent_again_with_the_same_message_id(
    new_contact: Any, smtp: Any, eventually: Any, deliveries: Any, notifications_app: FastAPI,
) -> None:
    officer = await new_contact("information_officer")
    delivery_id, event_id = uuid.uuid4(), uuid.uuid4()
    # What a crash between the claim and the SMTP reply leaves behind.
    async with notifications_app.state.runtime.pool.acquire() as conn, conn.transaction():
        await store.insert_delivery(conn, NewDelivery(
            id=delivery_id, event_id=event_id, event_type=reg.LEARNING_EXAMPLE_SUBMITTED,
            contact_id=uuid.UUID(officer["id"]), recipient=officer["email"],
            template="learning_example_submitted", template_locale="sv",
            template_version=1, subject="Stuck", text_body="t", html_body="<p>t</p>",
            status="pending", message_id=f"<{delivery_id}@asf-samverkan>"))
        await conn.execute(
            """UPDATE deliveries SET status = 'sending', attempts = 1,
               sending_since = now() - interval '1 hour' WHERE id = $1""", delivery_id)
    sent = await eventually(lambda: _sent(deliveries, event_id=event_id), what="resent")
    assert sent["attempts"] == 2
    message_id = f"<{delivery_id}@asf-samverkan>"
    assert [m["Message-ID"] for m in smtp.to(officer["email"], message_id)] == [message_id]
