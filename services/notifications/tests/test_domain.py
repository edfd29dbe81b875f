"""The pure rules: routing, rendering, backoff, SMTP outcomes, digest days. No I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from notifications import domain, samples, service
from notifications.domain import Subscription, Template


def sub(**fields: object) -> Subscription:
    at = datetime.now(UTC)
    values: dict[str, object] = {
        "id": uuid.uuid4(), "event_type": reg.COMPANY_REGISTERED, "contact_id": None,
        "role": "registry_officer", "municipality_code": None, "company_id": None,
        "mode": "immediate", "template": "company_registered", "version": 1,
        "created_at": at, "updated_at": at, **fields,
    }
    return Subscription.model_validate(values)


def test_retry_delay_doubles_and_is_capped() -> None:
    delays = [domain.retry_delay(n, 30, 600).total_seconds() for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 600, 600]
    assert domain.retry_delay(500, 30, 600) == timedelta(seconds=600)


@pytest.mark.parametrize(("code", "outcome"), [
    (250, "sent"), (421, "retry"), (451, "retry"), (None, "retry"), (550, "fail"), (554, "fail"),
])
def test_smtp_codes(code: int | None, outcome: str) -> None:
    assert domain.outcome_for_code(code) == outcome


def test_after_an_attempt() -> None:
    assert domain.after_attempt("sent", 3, 5, 1, 10) == ("sent", None)
    assert domain.after_attempt("retry", 3, 5, 1, 10) == ("retrying", timedelta(seconds=4))
    assert domain.after_attempt("retry", 5, 5, 1, 10) == ("failed", None)  # out of tries
    assert domain.after_attempt("fail", 1, 5, 1, 10) == ("failed", None)  # a 5xx


def test_message_id_is_deterministic() -> None:
    d = uuid.uuid4()
    assert domain.message_id_for(d) == domain.message_id_for(d) == f"<{d}@asf-samverkan>"


def test_audience_follows_the_subscription_and_its_filters() -> None:
    company = uuid.uuid4()
    payload = reg.CompanyPayload.model_validate(
        {**samples.SAMPLE_PAYLOADS[reg.COMPANY_REGISTERED], "id": str(company)})
    facts = domain.facts_of(reg.COMPANY_REGISTERED, payload, "https://x", {})
    assert domain.audience(sub(), facts) == domain.Audience(
        "role", role="registry_officer", municipality_code="0180")
    assert domain.audience(sub(role="company_contact"), facts) == domain.Audience(
        "company_contacts", company_ids=(company,))
    assert domain.audience(sub(municipality_code="1480"), facts) is None
    assert domain.audience(sub(company_id=uuid.uuid4()), facts) is None
    assert domain.audience(sub(company_id=company), facts) is not None


def test_flagged_placements_reach_each_case_worker_with_only_their_own() -> None:
    payload = cw.PlacementsFlaggedPayload.model_validate({
        "company_id": str(uuid.uuid4()), "company_name": "Bolaget", "case_workers": ["a", "b"],
        "placements": [
            {"placement_id": str(uuid.uuid4()), "participant_id": str(uuid.uuid4()),
             "municipality_code": "0180", "assigned_to": who} for who in ("a", "a", "b")
        ],
    })
    facts = domain.facts_of(cw.PLACEMENTS_FLAGGED, payload, "https://x", {})
    assert facts.case_workers == ("a", "b")
    assert facts.context_for("a")["count"] == 2
    assert facts.context_for("b")["count"] == 1
    assert facts.context_for(None)["count"] == 3


def test_render_escapes_html_and_keeps_the_subject_on_one_line() -> None:
    t = Template(name="t", locale="sv", version=1, subject="Hej\r\nBcc: x@y {{ n }}",
                 text="{{ n }}", html="<p>{{ n }}</p>")
    r = domain.render(t, {"n": "<b>&"})
    assert r.subject == "Hej Bcc: x@y <b>&"
    assert r.text == "<b>&"
    assert r.html == "<p>&lt;b&gt;&amp;</p>"
    with pytest.raises(domain.RenderError):
        domain.render(t, {})


def test_sandbox_refuses_unsafe_templates() -> None:
    t = Template(name="t", locale="sv", version=1, subject="x",
                 text="{{ ''.__class__.__mro__ }}", html="")
    with pytest.raises(domain.RenderError):
        domain.render(t, {})


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_every_packaged_template_renders_its_sample(locale: str) -> None:
    templates = [t for t in service.packaged_templates() if t.locale == locale]
    names = {t.name for t in templates}
    assert names == set(domain.TEMPLATE_EVENTS) | {domain.DIGEST_TEMPLATE}
    for t in templates:
        if t.name == domain.DIGEST_TEMPLATE:
            summary = domain.DigestSummary.model_validate(samples.SAMPLE_DIGEST)
            context = domain.digest_context(summary, "https://x")
        else:
            event_type = domain.TEMPLATE_EVENTS[t.name]
            payload = domain.ROUTED_EVENTS[event_type].payload.model_validate(
                samples.SAMPLE_PAYLOADS[event_type])
            context = domain.facts_of(event_type, payload, "https://x", {}).context_for(None)
        r = domain.render(t, context)
        assert r.subject and r.text.strip() and r.html.strip(), t.name


def test_casework_contexts_hold_only_a_reference_and_a_link() -> None:
    allowed = {"reference", "link", "municipality_code", "start", "kind", "company_name",
               "offset_days", "due_date", "employment_start", "employment_form", "reason",
               "placements", "count"}
    for event_type in (cw.PLACEMENT_STARTED, cw.FOLLOW_UP_DUE, cw.PARTICIPANT_EMPLOYED,
                       cw.PLACEMENTS_FLAGGED):
        payload = domain.ROUTED_EVENTS[event_type].payload.model_validate(
            samples.SAMPLE_PAYLOADS[event_type])
        context = domain.facts_of(event_type, payload, "https://x", {}).context
        assert set(context) <= allowed, event_type
        assert "assigned_to" not in str(context.get("reference"))


def test_digest_days_are_local_days() -> None:
    start, end = domain.digest_window(date(2026, 1, 15), "Europe/Stockholm")
    assert start == datetime(2026, 1, 14, 23, tzinfo=UTC)
    assert end == datetime(2026, 1, 15, 23, tzinfo=UTC)
    morning = datetime(2026, 1, 16, 6, 30, tzinfo=UTC)  # 07:30 in Stockholm
    assert domain.digest_day(morning, "Europe/Stockholm", 7) == date(2026, 1, 15)
    assert domain.digest_day(morning, "Europe/Stockholm", 8) is None
    contact = uuid.uuid4()
    assert domain.digest_event_id(contact, date(2026, 1, 15)) == domain.digest_event_id(
        contact, date(2026, 1, 15))
    assert domain.digest_event_id(contact, date(2026, 1, 15)) != domain.digest_event_id(
        contact, date(2026, 1, 16))
