"""The routes SPEC 3.3 added ("More routing"): each reaches exactly the right people, once,
through the real broker, database and SMTP server. Each test uses its own addresses and
companies; events are published twice to show a redelivery sends nothing more."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from asf_contracts import Envelope
from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_testing import text_of

FRONTEND = "https://asf.test"
FINAL = {"sent", "skipped", "failed"}


def unique(who: str) -> str:
    return f"{who}-{uuid.uuid4().hex[:10]}@example.se"


async def settled(deliveries: Any, eventually: Any, event: Envelope) -> list[dict[str, Any]]:
    """Every delivery of `event`, once none is still on its way (they are stored together)."""

    async def done() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = await deliveries(event_id=event.event_id)
        return items if items and all(d["status"] in FINAL for d in items) else None

    result: list[dict[str, Any]] = await eventually(done, what=f"{event.event_type} settled")
    return result


async def twice(publish: Any, event_type: str, payload: dict[str, Any], **kw: Any) -> Envelope:
    """Publish an event and then the very same envelope again (a redelivery)."""
    event: Envelope = await publish(event_type, payload, **kw)
    await publish(event_type, {}, envelope=event)
    return event


async def emails_of(client: httpx.AsyncClient, analyst: dict[str, str], role: str) -> set[str]:
    r = await client.get("/contacts", params={"role": role, "limit": 500}, headers=analyst)
    return {c["email"] for c in r.json()["items"] if c["active"]}


async def test_a_contract_reaches_the_company_unless_reserved_and_the_officer_if_reserved(
    client: httpx.AsyncClient, analyst: dict[str, str], publish: Any, new_contact: Any,
    known_company: Any, smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    await new_contact("information_officer")
    contact = unique("ekonomi")
    company_id = await known_company(contact)
    contract = {"id": str(uuid.uuid4()), "company_id": str(company_id),
                "company_name": "Bolaget", "municipality_code": "1480",
                "title": "Fönsterputs", "procurement_reference": "KS 2026/9",
                "value_sek": 250_000, "start": "2026-04-01", "end": None}
    open_ = await twice(publish, reg.CONTRACT_AWARDED, {**contract, "reserved": False})
    reserved = await twice(publish, reg.CONTRACT_AWARDED,
                           {**contract, "id": str(uuid.uuid4()), "reserved": True})

    to_company = await settled(deliveries, eventually, open_)
    assert [(d["recipient"], d["template"], d["status"]) for d in to_company] == [
        (contact, "contract_awarded_company", "sent")]
    to_officers = await settled(deliveries, eventually, reserved)
    assert {d["recipient"] for d in to_officers} == await emails_of(
        client, analyst, "information_officer")
    assert {d["template"] for d in to_officers} == {"contract_awarded"}
    [mail] = smtp.to(contact)[-1:]
    assert len([m for m in smtp.to(contact) if "Fönsterputs" in m["Subject"]]) == 1
    assert mail["Subject"] == "Kontrakt registrerat för Bolaget: Fönsterputs"
    assert f"{FRONTEND}/companies/{company_id}" in text_of(mail)


async def test_a_reassignment_reaches_the_new_case_worker_once_and_nobody_else(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any, sent: Any,
) -> None:
    old, new = f"cw-old-{uuid.uuid4().hex[:6]}", f"cw-new-{uuid.uuid4().hex[:6]}"
    before = await new_contact("case_worker", subject=old, municipality_code="0180")
    after = await new_contact("case_worker", subject=new, municipality_code="0180")
    participant = uuid.uuid4()
    event = await twice(publish, cw.PARTICIPANT_REASSIGNED, {
        "participant_id": str(participant), "municipality_code": "0180",
        "from_assigned_to": old, "assigned_to": new})
    sentinel = await publish(cw.PARTICIPANT_REASSIGNED, {
        "participant_id": str(uuid.uuid4()), "municipality_code": "0180",
        "from_assigned_to": new, "assigned_to": f"cw-nobody-{uuid.uuid4().hex[:6]}"})

    [delivery] = await settled(deliveries, eventually, event)
    assert (delivery["recipient"], delivery["template"], delivery["status"]) == (
        after["email"], "participant_reassigned", "sent")
    [skipped] = await settled(deliveries, eventually, sentinel)
    assert skipped["status"] == "skipped" and "cw-nobody" in skipped["last_error"]
    [mail] = smtp.to(after["email"])
    ref = participant.hex[:8].upper()
    assert mail["Subject"] == f"Du är ny handläggare för deltagare {ref}"
    assert f"{FRONTEND}/participants/{participant}" in text_of(mail)
    assert old not in text_of(mail) and new not in text_of(mail)
    assert smtp.to(before["email"]) == []


async def test_an_expiring_or_expired_verification_reaches_the_company_and_the_officers(
    client: httpx.AsyncClient, analyst: dict[str, str], publish: Any, new_contact: Any,
    known_company: Any, company_payload: Any, smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    await new_contact("registry_officer")
    elsewhere = await new_contact("registry_officer", municipality_code="1480")
    first, second = unique("vd"), unique("ordf")
    company_id = await known_company(first, second)
    company = {**company_payload(company_id, first, second, status="active"),
               "verification_level": "verified", "valid_until": "2026-06-30"}
    expiring = await twice(publish, reg.COMPANY_VERIFICATION_EXPIRING,
                           {**company, "days_left": 30}, aggregate_id=company_id,
                           aggregate_version=2)
    expired = await twice(publish, reg.COMPANY_VERIFICATION_EXPIRED,
                          {**company, "verification_level": "self_declared",
                           "expired_on": "2026-06-30"},
                          aggregate_id=company_id, aggregate_version=3)

    officers = await emails_of(client, analyst, "registry_officer") - {elsewhere["email"]}
    for event, template in ((expiring, "verification_expiring"),
                            (expired, "verification_expired")):
        items = await settled(deliveries, eventually, event)
        assert sorted((d["recipient"], d["template"]) for d in items) == sorted(
            [(first, template), (second, template)]
            + [(o, f"{template}_officer") for o in officers])
        assert all(d["status"] == "sent" for d in items)
    for contact in (first, second):
        subjects = sorted(m["Subject"] for m in smtp.to(contact) if "Verifiering" in
                          m["Subject"])
        name = company["name"]
        assert subjects == [f"Verifieringen av {name} går ut 2026-06-30",
                            f"Verifieringen av {name} har gått ut"]
    assert smtp.to(elsewhere["email"]) == []  # an officer of another municipality


async def test_a_learning_example_decision_reaches_its_submitter(
    client: httpx.AsyncClient, analyst: dict[str, str], publish: Any, new_contact: Any,
    smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    officer = await new_contact("information_officer")
    submitter = unique("stina")

    def decided(decision: str, email: str = submitter) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "municipality_code": "0180",
                "title": f"Exempel {uuid.uuid4().hex[:6]}", "decision": decision,
                "note": "Tack!", "contact": {"name": "Stina Inlämnare", "email": email}}

    published = await twice(publish, reg.LEARNING_EXAMPLE_PUBLISHED, decided("published"))
    declined = await twice(publish, reg.LEARNING_EXAMPLE_DECLINED, decided("declined"))
    for event, template in ((published, "learning_example_published"),
                            (declined, "learning_example_declined")):
        [d] = await settled(deliveries, eventually, event)
        assert (d["recipient"], d["template"], d["status"]) == (submitter, template, "sent")
    subjects = sorted(m["Subject"] for m in smtp.to(submitter))
    assert [s.split(":")[0] for s in subjects] == [
        "Ditt lärande exempel publiceras inte", "Ditt lärande exempel är publicerat"]
    published_mail = next(m for m in smtp.to(submitter) if "publicerat" in m["Subject"])
    example_id = published.payload["id"]
    assert f"{FRONTEND}/handbook/{example_id}" in text_of(published_mail)
    assert smtp.to(officer["email"]) == []

    # One contact per submitter, which an analyst can stop.
    r = await client.get("/contacts", params={"role": "submitter", "limit": 500},
                         headers=analyst)
    [contact] = [c for c in r.json()["items"] if c["email"] == submitter]
    assert contact["source"] == "submitter"
    r = await client.patch(f"/contacts/{contact['id']}",
                           json={"active": False, "version": contact["version"]},
                           headers=analyst)
    assert r.status_code == 200, r.text
    stopped = await publish(reg.LEARNING_EXAMPLE_PUBLISHED, decided("published"))
    bad = await publish(reg.LEARNING_EXAMPLE_DECLINED, decided("declined", "not an address"))
    for event in (stopped, bad):
        [d] = await settled(deliveries, eventually, event)
        assert d["status"] == "skipped" and d["contact_id"] is None
    assert len(smtp.to(submitter)) == 2


async def test_a_plan_review_reaches_the_assigned_case_worker(
    publish: Any, new_contact: Any, smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    worker = f"cw-{uuid.uuid4().hex[:8]}"
    assigned = await new_contact("case_worker", subject=worker, municipality_code="1480")
    colleague = await new_contact("case_worker", subject=f"cw-{uuid.uuid4().hex[:8]}",
                                  municipality_code="1480")
    participant = uuid.uuid4()
    event = await twice(publish, cw.PLAN_REVIEW_DUE, {
        "participant_id": str(participant), "municipality_code": "1480",
        "assigned_to": worker, "review_date": "2026-09-01", "plan_version": 4})
    [d] = await settled(deliveries, eventually, event)
    assert (d["recipient"], d["template"], d["status"]) == (
        assigned["email"], "plan_review_due", "sent")
    [mail] = smtp.to(assigned["email"])
    assert participant.hex[:8].upper() in mail["Subject"]
    assert "2026-09-01" in text_of(mail) and f"/participants/{participant}" in text_of(mail)
    assert smtp.to(colleague["email"]) == []


async def test_a_statement_reaches_the_company_with_totals_and_no_names(
    publish: Any, known_company: Any, smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    contact = unique("redovisning")
    company_id = await known_company(contact)
    statement_id = uuid.uuid4()
    event = await twice(publish, cw.STATEMENT_ISSUED, {
        "statement_id": str(statement_id), "company_id": str(company_id),
        "municipality_code": "0180", "month": "2026-03", "kind": "original",
        "totals": {"placements": 2, "days_present": 30, "hours_present": 180.0,
                   "absence_days": {"sick": 1}, "amount_sek": 9000.0}})
    [d] = await settled(deliveries, eventually, event)
    assert (d["recipient"], d["template"], d["status"]) == (contact, "statement_issued", "sent")
    [mail] = [m for m in smtp.to(contact) if "Månadsredovisning" in m["Subject"]]
    assert mail["Subject"] == "Månadsredovisning 2026-03 från kommun 0180"
    text = text_of(mail)
    assert f"{FRONTEND}/statements/{statement_id}" in text
    assert statement_id.hex[:8].upper() in text and "9000.0 kr" in text


async def test_the_new_routes_are_seeded_once(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    r = await client.get("/subscriptions", params={"limit": 500}, headers=analyst)
    seeded = [(s["event_type"], s["role"], s["template"]) for s in r.json()["items"]
              if s["role"]]
    for route in (
        (reg.CONTRACT_AWARDED, "company_contact", "contract_awarded_company"),
        (cw.PARTICIPANT_REASSIGNED, "case_worker", "participant_reassigned"),
        (reg.COMPANY_VERIFICATION_EXPIRING, "company_contact", "verification_expiring"),
        (reg.COMPANY_VERIFICATION_EXPIRING, "registry_officer", "verification_expiring_officer"),
        (reg.COMPANY_VERIFICATION_EXPIRED, "company_contact", "verification_expired"),
        (reg.COMPANY_VERIFICATION_EXPIRED, "registry_officer", "verification_expired_officer"),
        (reg.LEARNING_EXAMPLE_PUBLISHED, "submitter", "learning_example_published"),
        (reg.LEARNING_EXAMPLE_DECLINED, "submitter", "learning_example_declined"),
        (cw.PLAN_REVIEW_DUE, "case_worker", "plan_review_due"),
        (cw.STATEMENT_ISSUED, "company_contact", "statement_issued"),
    ):
        assert seeded.count(route) == 1, route
