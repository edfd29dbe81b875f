"""The pure rules: routing and its scope, templates and their versions, backoff, SMTP
outcomes, digest days, settings. No I/O."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_kit.rules import RuleError
from notifications import domain, mail_templates, routing, samples, service
from notifications.domain import Contact, Subscription
from notifications.mail_templates import (
    ReleaseDecision,
    Template,
    TemplateDoesNotRender,
    TemplateHistory,
    TemplateText,
)
from notifications.settings import NotificationsSettings


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
    facts = routing.facts_of(reg.COMPANY_REGISTERED, payload, "https://x", {})
    assert routing.audience(sub(), facts) == routing.Audience(
        "role", role="registry_officer", municipality_code="0180")
    assert routing.audience(sub(role="company_contact"), facts) == routing.Audience(
        "company_contacts", company_ids=(company,))
    assert routing.audience(sub(municipality_code="1480"), facts) is None
    assert routing.audience(sub(company_id=uuid.uuid4()), facts) is None
    assert routing.audience(sub(company_id=company), facts) is not None


def _facts(event_type: str, **changes: object) -> routing.EventFacts:
    payload = routing.ROUTED_EVENTS[event_type].payload.model_validate(
        {**samples.SAMPLE_PAYLOADS[event_type], **changes})
    return routing.facts_of(event_type, payload, "https://x", {})


def test_a_contract_reaches_the_officer_when_reserved_and_the_company_when_not() -> None:
    reserved, open_ = _facts(reg.CONTRACT_AWARDED), _facts(reg.CONTRACT_AWARDED, reserved=False)
    officer = sub(event_type=reg.CONTRACT_AWARDED, role="information_officer",
                  template="contract_awarded")
    company = sub(event_type=reg.CONTRACT_AWARDED, role="company_contact",
                  template="contract_awarded_company")
    assert routing.audience(officer, reserved) is not None
    assert routing.audience(officer, open_) is None
    assert routing.audience(company, reserved) is None
    assert routing.audience(company, open_) == routing.Audience(
        "company_contacts", company_ids=open_.company_ids)


def test_new_routes_name_whom_they_reach() -> None:
    reassigned = _facts(cw.PARTICIPANT_REASSIGNED, from_assigned_to="old", assigned_to="new")
    assert reassigned.case_workers == ("new",)
    assert "old" not in str(reassigned.context)
    assert _facts(cw.PLAN_REVIEW_DUE, assigned_to="cw-9").case_workers == ("cw-9",)
    decided = _facts(reg.LEARNING_EXAMPLE_PUBLISHED)
    assert routing.audience(sub(event_type=reg.LEARNING_EXAMPLE_PUBLISHED, role="submitter",
                                template="learning_example_published"), decided
                            ) == routing.Audience("submitter", emails=("eva@example.se",))
    statement = _facts(cw.STATEMENT_ISSUED)
    assert statement.participants == () and statement.context["link"].startswith(
        "https://x/statements/")
    expiring = _facts(reg.COMPANY_VERIFICATION_EXPIRING)
    assert expiring.context["days_left"] == 30 and expiring.company_ids


@dataclass(frozen=True)
class Who:
    role: str = "case_worker"
    municipality_code: str | None = "0180"
    company_id: uuid.UUID | None = None
    subject: str | None = None


def test_flagged_placements_reach_each_case_worker_with_only_their_own() -> None:
    company = uuid.uuid4()
    payload = cw.PlacementsFlaggedPayload.model_validate({
        "company_id": str(company), "company_name": "Bolaget",
        "case_workers": ["a", "b", "c"],
        "placements": [
            {"placement_id": str(uuid.uuid4()), "participant_id": str(uuid.uuid4()),
             "municipality_code": code, "assigned_to": who}
            for who, code in (("a", "0180"), ("a", "0180"), ("b", "0180"), ("c", "1480"),
                              ("a", "1480"))
        ],
    })
    facts = routing.facts_of(cw.PLACEMENTS_FLAGGED, payload, "https://x", {})

    def seen(who: Who) -> set[str] | None:
        context = facts.context_for(who)
        if context is None:
            return None
        assert context["count"] == len(context["placements"])
        return {p["municipality_code"] + ":" + p["reference"] for p in context["placements"]}

    refs = [routing.reference(p.participant_id) for p in payload.placements]
    assert seen(Who(subject="a")) == {f"0180:{refs[0]}", f"0180:{refs[1]}"}
    assert seen(Who(subject="b")) == {f"0180:{refs[2]}"}
    assert seen(Who(subject="c", municipality_code="1480")) == {f"1480:{refs[3]}"}
    # "a" is also named for a 1480 placement, but is a 0180 contact: never sees it.
    assert seen(Who(subject="a", municipality_code="1480")) == {f"1480:{refs[4]}"}
    # Someone not named (a team lead subscribed by contact) sees their municipality only.
    assert seen(Who(role="team_lead", municipality_code="1480")) == {
        f"1480:{refs[3]}", f"1480:{refs[4]}"}
    # No municipality, or another one: no reference at all.
    assert seen(Who(role="information_officer", municipality_code=None)) is None
    assert seen(Who(subject="a", municipality_code="2480")) is None
    # The company's own contacts may see the placements at their company.
    assert seen(Who(role="company_contact", municipality_code="0180", company_id=company)
                ) is not None
    # Another company's contact sees nothing, even in the same municipality.
    assert seen(Who(role="company_contact", municipality_code="0180",
                    company_id=uuid.uuid4())) is None


def test_a_single_participant_reference_reaches_only_its_municipality() -> None:
    follow_up = _facts(cw.FOLLOW_UP_DUE, municipality_code="1480", assigned_to="cw-1")
    assert follow_up.context_for(Who(municipality_code="1480")) == follow_up.context
    assert follow_up.context_for(Who(municipality_code="0180")) is None
    assert follow_up.context_for(Who(role="information_officer", municipality_code=None)
                                 ) is None
    company = uuid.uuid4()
    started = _facts(cw.PLACEMENT_STARTED, municipality_code="1480",
                     company_id=str(company))
    host = Who(role="company_contact", municipality_code="0180", company_id=company)
    assert started.context_for(host) == started.context
    assert started.context_for(Who(role="company_contact", municipality_code="0180",
                                   company_id=uuid.uuid4())) is None
    company_event = _facts(reg.COMPANY_VERIFIED)
    assert company_event.context_for(Who(municipality_code=None)) == company_event.context


def test_a_case_worker_contact_needs_a_municipality() -> None:
    at = datetime.now(UTC)
    contact = Contact(id=uuid.uuid4(), name="N", email="n@example.se", role="case_worker",
                      municipality_code=None, company_id=None, subject="cw", locale="sv",
                      source="manual", active=True, version=1, created_at=at, updated_at=at)
    with pytest.raises(RuleError) as e:
        domain.check_contact(contact)
    assert e.value.extra["errors"] == [{"field": "municipality_code",
                                        "message": "required for a case worker"}]
    domain.check_contact(contact.model_copy(update={"municipality_code": "0180"}))
    domain.check_contact(contact.model_copy(update={"role": "information_officer"}))


def test_render_escapes_html_and_keeps_the_subject_on_one_line() -> None:
    t = Template(name="t", locale="sv", version=1, subject="Hej\r\nBcc: x@y {{ n }}",
                 text="{{ n }}", html="<p>{{ n }}</p>")
    r = mail_templates.render(t, {"n": "<b>&"})
    assert r.subject == "Hej Bcc: x@y <b>&"
    assert r.text == "<b>&"
    assert r.html == "<p>&lt;b&gt;&amp;</p>"
    with pytest.raises(mail_templates.RenderError) as e:
        mail_templates.render(t, {})
    assert e.value.fault.field == "sv.subject" and e.value.fault.line == 2


@pytest.mark.parametrize(("source", "line", "says"), [
    ("{{ ''.__class__.__mro__ }}", 1, "unsafe"),
    ("ok\n{% for x in range(3) %}{{ x.__class__ }}{% endfor %}", 2, "unsafe"),
    ("a\nb\n{{ 'x' * 100000000 }}", 3, "repeating"),
    ("{{ 10 ** 10000 }}", 1, "exponent"),
    ("1\n2\n3\n{{ 1 / 0 }}", 4, "ZeroDivisionError"),
    ("a\n{{ link }", 2, "unexpected"),
    ("{{ nothing_like_this }}", 1, "undefined"),
    ("{% for %}", 1, "Expected an expression"),
])
def test_the_sandbox_names_the_line_of_what_it_refuses(source: str, line: int, says: str
                                                       ) -> None:
    text = TemplateText(subject="s", text=source, html="<p>ok</p>")
    [fault] = mail_templates.render_faults({"en": text}, {"link": "x"})
    assert (fault.field, fault.line) == ("en.text", line)
    assert says in fault.message, fault.message


def test_a_new_version_must_render_and_only_known_versions_activate() -> None:
    history = TemplateHistory(name="follow_up_due", sources={1: "release", 2: "analyst"},
                              active=2)
    good = TemplateText(subject="{{ reference }}", text="{{ link }}", html="<p>{{ link }}</p>")
    bad = TemplateText(subject="ok", text="x\n{{ referens }}", html="<p>{% if %}</p>")
    sample = samples.sample_context("follow_up_due", "https://x")
    assert history.add({"sv": good, "en": good}, sample) == 3
    with pytest.raises(TemplateDoesNotRender) as e:
        history.add({"sv": good, "en": bad}, sample)
    assert [(f.field, f.line) for f in e.value.faults] == [("en.text", 2), ("en.html", 1)]
    assert history.activate(1) == 1  # rolling back
    with pytest.raises(RuleError) as missing:
        history.activate(7)
    assert missing.value.status == 404 and missing.value.extra["versions"] == [1, 2]


def test_a_release_does_not_replace_an_analysts_version_in_use() -> None:
    fresh = TemplateHistory(name="t", sources={}, active=None)
    assert fresh.release(same_as_last_release=False) == ReleaseDecision(True, True)
    released = TemplateHistory(name="t", sources={1: "release"}, active=1)
    assert released.release(same_as_last_release=True) == ReleaseDecision(False, False)
    assert released.release(same_as_last_release=False) == ReleaseDecision(True, True)
    edited = TemplateHistory(name="t", sources={1: "release", 2: "analyst"}, active=2)
    assert edited.release(same_as_last_release=False) == ReleaseDecision(True, False)
    rolled_back = TemplateHistory(name="t", sources={1: "release", 2: "analyst"}, active=1)
    assert rolled_back.release(same_as_last_release=False) == ReleaseDecision(True, True)


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_every_packaged_template_renders_its_sample(locale: str) -> None:
    packaged = service.packaged_templates()
    assert set(packaged) == set(routing.TEMPLATE_EVENTS) | {domain.DIGEST_TEMPLATE}
    for name, texts in packaged.items():
        t = Template(name=name, locale=locale, version=1, **texts[locale].model_dump())
        r = mail_templates.render(t, samples.sample_context(name, "https://x"))
        assert r.subject and r.text.strip() and r.html.strip(), name


def test_every_routed_event_has_a_sample_and_a_default_route() -> None:
    assert set(samples.SAMPLE_PAYLOADS) == set(routing.ROUTED_EVENTS)
    routed = {r.event_type for r in routing.DEFAULT_ROUTING}
    assert routed == {e for e, r in routing.ROUTED_EVENTS.items() if r.templates}
    for route in routing.DEFAULT_ROUTING:
        assert routing.TEMPLATE_EVENTS[route.template] == route.event_type


def test_casework_contexts_hold_only_a_reference_and_a_link() -> None:
    allowed = {"reference", "link", "municipality_code", "start", "kind", "company_name",
               "offset_days", "due_date", "employment_start", "employment_form", "reason",
               "placements", "count", "review_date", "plan_version", "month", "correction",
               "supersedes", "days_present", "hours_present", "amount_sek", "absence_days"}
    for event_type in (cw.PLACEMENT_STARTED, cw.FOLLOW_UP_DUE, cw.PARTICIPANT_EMPLOYED,
                       cw.PLACEMENTS_FLAGGED, cw.PARTICIPANT_REASSIGNED, cw.PLAN_REVIEW_DUE,
                       cw.STATEMENT_ISSUED):
        context = _facts(event_type).context
        assert set(context) <= allowed, (event_type, set(context) - allowed)
        assert "cw-" not in str(context), event_type  # no case worker's sub is printed


def test_links_point_into_the_web_app() -> None:
    base = "http://localhost:8000"
    assert NotificationsSettings(jwt_secret="x").frontend_base_url == base
    paths = {e: routing.facts_of(e, routing.ROUTED_EVENTS[e].payload.model_validate(
        samples.SAMPLE_PAYLOADS[e]), base, {}).context["link"].removeprefix(base)
        for e in (reg.COMPANY_VERIFIED, reg.LEARNING_EXAMPLE_DECLINED, cw.PLACEMENT_STARTED,
                  cw.FOLLOW_UP_DUE, cw.STATEMENT_ISSUED)}
    assert [p.split("/")[1] for p in paths.values()] == [
        "companies", "learning-examples", "placements", "participants", "statements"]
    summary = domain.DigestSummary.model_validate(samples.SAMPLE_DIGEST)
    assert domain.digest_context(summary, base)["link"] == f"{base}/stats"


def test_smtp_tls_defaults_to_starttls_and_reads_the_old_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert NotificationsSettings(jwt_secret="x").smtp_tls == "starttls"
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    assert NotificationsSettings(jwt_secret="x").smtp_tls == "none"
    monkeypatch.setenv("SMTP_STARTTLS", "true")
    assert NotificationsSettings(jwt_secret="x").smtp_tls == "starttls"
    monkeypatch.setenv("SMTP_TLS", "tls")
    assert NotificationsSettings(jwt_secret="x").smtp_tls == "tls"
    monkeypatch.setenv("SMTP_TLS", "ssl")
    with pytest.raises(ValidationError, match="smtp_tls"):
        NotificationsSettings(jwt_secret="x")


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


def test_every_company_event_is_consumed_with_the_whole_company() -> None:
    """The company read model (and the company's contacts) follow every company event."""
    for event_type in reg.COMPANY_EVENTS:
        assert issubclass(routing.ROUTED_EVENTS[event_type].payload, reg.CompanyPayload)


def test_a_check_stops_a_template_that_would_run_for_hours() -> None:
    loops = TemplateText(subject="s", html="<p>ok</p>", text=(
        "ok\n{% for a in range(99999) %}{% for b in 'x' * 9999 %}{% endfor %}{% endfor %}"))
    before, started = sys.gettrace(), time.monotonic()
    [fault] = mail_templates.render_faults({"sv": loops}, {}, seconds=0.2)
    assert time.monotonic() - started < 5
    assert (fault.field, fault.line) == ("sv.text", 2)
    assert "still rendering after 0.2 s" in fault.message
    assert sys.gettrace() is before  # the limit is gone afterwards
