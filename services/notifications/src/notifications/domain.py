"""Who hears about what, and what the email says. Pure rules, no I/O.

An event becomes `EventFacts` (which municipality, companies and case workers it
concerns, and the only values a template may print). Each subscription turns the
facts into an `Audience` that the store resolves to contacts. Templates are Jinja2,
rendered in a sandbox; casework facts hold a participant reference and a link,
never anything else about the person.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_kit.fields import Email

Locale = Literal["sv", "en"]
Mode = Literal["immediate", "daily_digest"]
DeliveryStatus = Literal["pending", "sending", "sent", "retrying", "failed", "skipped"]
ContactSource = Literal["manual", "registry"]

INFORMATION_OFFICER = "information_officer"
REGISTRY_OFFICER = "registry_officer"
CASE_WORKER = "case_worker"
"""Routed by relation: the case workers an event names (`assigned_to`, `case_workers`)."""
COMPANY_CONTACT = "company_contact"
"""Routed by relation: the contacts of the companies an event names."""

DIGEST_TEMPLATE = "daily_digest"
DIGEST_EVENT_TYPE = "notifications.daily_digest"
_DIGEST_NAMESPACE = UUID("6f1c1c38-6a51-4c2e-9d47-2f7c4b1d9a10")

_ROLE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _check_role(value: str) -> str:
    if not _ROLE.match(value):
        raise ValueError("must be a short tag: lower case letters, digits and _, 2-40 long")
    return value


RoleName = Annotated[str, AfterValidator(_check_role)]
MunicipalityCode = Annotated[str, Field(pattern=r"^\d{4}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Subject = Annotated[str, Field(min_length=1, max_length=200)]


# --- contacts and subscriptions --------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refuse it here, naming the field, not with a 500.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value


class ContactIn(_In):
    name: Name
    email: Email
    role: RoleName
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    subject: Subject | None = Field(
        default=None, description="The JWT `sub` of the user, e.g. a case worker"
    )
    locale: Locale = "sv"


class ContactPatch(_In):
    name: Name | None = None
    email: Email | None = None
    role: RoleName | None = None
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    subject: Subject | None = None
    locale: Locale | None = None
    active: bool | None = None
    version: int | None = Field(default=None, ge=1, description="The version you read")


class Contact(BaseModel):
    id: UUID
    name: str
    email: str
    role: str
    municipality_code: str | None
    company_id: UUID | None
    subject: str | None
    locale: Locale
    source: ContactSource = Field(description="`registry`: mirrored from the company's events")
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class SubscriptionIn(_In):
    event_type: str = Field(examples=[reg.LEARNING_EXAMPLE_SUBMITTED])
    contact_id: UUID | None = None
    role: RoleName | None = Field(
        default=None,
        description=f"Every active contact with this role; `{CASE_WORKER}` and "
        f"`{COMPANY_CONTACT}` mean the ones the event names",
    )
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    mode: Mode = "immediate"
    template: str | None = Field(default=None, description="Defaults to the event's template")


class SubscriptionPatch(_In):
    event_type: str | None = None
    contact_id: UUID | None = None
    role: RoleName | None = None
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    mode: Mode | None = None
    template: str | None = None
    version: int | None = Field(default=None, ge=1, description="The version you read")


class Subscription(BaseModel):
    id: UUID
    event_type: str
    contact_id: UUID | None
    role: str | None
    municipality_code: str | None
    company_id: UUID | None
    mode: Mode
    template: str
    version: int
    created_at: datetime
    updated_at: datetime


class Delivery(BaseModel):
    id: UUID
    event_id: UUID
    event_type: str
    contact_id: UUID | None
    recipient: str | None
    template: str
    template_locale: Locale | None
    template_version: int | None
    subject: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    message_id: str
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Template(BaseModel):
    name: str
    locale: Locale
    version: int
    subject: str
    text: str
    html: str
    event_type: str | None = None
    created_at: datetime | None = None


def message_id_for(delivery_id: UUID) -> str:
    """The same delivery always carries the same Message-ID, so a resend is recognisable."""
    return f"<{delivery_id}@asf-samverkan>"


# --- events to facts ------------------------------------------------------------------------


@dataclass(frozen=True)
class FlaggedRef:
    reference: str
    link: str
    municipality_code: str
    assigned_to: str


@dataclass(frozen=True)
class EventFacts:
    """What routing and templates may know about one event."""

    event_type: str
    municipality_code: str | None = None
    company_ids: tuple[UUID, ...] = ()
    case_workers: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    routable: bool = True
    """False when the event is of a routed type but not of interest (a non-reserved contract)."""

    def context_for(self, subject: str | None) -> dict[str, Any]:
        """A case worker sees only the flagged placements assigned to them."""
        flagged = self.context.get("placements")
        if self.event_type != cw.PLACEMENTS_FLAGGED or not isinstance(flagged, list):
            return self.context
        own = [p for p in flagged if p["assigned_to"] == subject]
        return {**self.context, "placements": own or flagged, "count": len(own or flagged)}


def reference(participant_id: UUID) -> str:
    """A short reference a case worker can search for; the UUID carries no personal data."""
    return participant_id.hex[:8].upper()


def _link(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _company_facts(
    event_type: str, p: reg.CompanyPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code, company_ids=(p.id,),
        context={
            "company_name": p.name, "org_number": p.org_number, "status": p.status,
            "municipality_code": p.municipality_code, "decision_note": p.decision_note,
            "deregistration_reason": p.deregistration_reason,
            "valid_until": p.valid_until.isoformat() if p.valid_until else None,
            "link": _link(base, f"/companies/{p.id}"),
        },
    )


def _contract_facts(
    event_type: str, p: reg.ContractAwardedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code, company_ids=(p.company_id,),
        routable=p.reserved,
        context={
            "company_name": p.company_name, "title": p.title, "value_sek": p.value_sek,
            "municipality_code": p.municipality_code, "start": p.start.isoformat(),
            "end": p.end.isoformat() if p.end else None,
            "procurement_reference": p.procurement_reference,
            "link": _link(base, f"/companies/{p.company_id}"),
        },
    )


def _learning_example_facts(
    event_type: str, p: reg.LearningExampleSubmittedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        company_ids=tuple(p.company_ids),
        context={
            "title": p.title, "summary": p.summary, "municipality_code": p.municipality_code,
            "collaboration_types": list(p.collaboration_types),
            "submitter_name": p.contact.name, "submitter_email": p.contact.email,
            "link": _link(base, f"/learning-examples/{p.id}"),
        },
    )


def _flagged_facts(
    event_type: str, p: cw.PlacementsFlaggedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    placements = [
        {"reference": reference(f.participant_id), "municipality_code": f.municipality_code,
         "link": _link(base, f"/participants/{f.participant_id}"), "assigned_to": f.assigned_to}
        for f in p.placements
    ]
    codes = {f.municipality_code for f in p.placements}
    return EventFacts(
        event_type=event_type, municipality_code=codes.pop() if len(codes) == 1 else None,
        company_ids=(p.company_id,), case_workers=tuple(p.case_workers),
        context={"company_name": p.company_name, "reason": p.reason,
                 "placements": placements, "count": len(placements)},
    )


def _placement_started_facts(
    event_type: str, p: cw.PlacementStartedPayload, base: str, names: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code, company_ids=(p.company_id,),
        case_workers=(p.assigned_to,),
        context={
            "reference": reference(p.participant_id), "company_name": names.get(p.company_id),
            "start": p.start.isoformat(), "kind": p.kind,
            "municipality_code": p.municipality_code,
            "link": _link(base, f"/placements/{p.placement_id}"),
        },
    )


def _follow_up_facts(
    event_type: str, p: cw.FollowUpDuePayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        case_workers=(p.assigned_to,),
        context={
            "reference": reference(p.participant_id), "offset_days": p.offset_days,
            "due_date": p.due_date.isoformat(), "employment_start": p.employment_start.isoformat(),
            "link": _link(base, f"/participants/{p.participant_id}"),
        },
    )


def _employed_facts(
    event_type: str, p: cw.ParticipantEmployedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        company_ids=(p.employer_company_id,) if p.employer_company_id else (),
        case_workers=(p.assigned_to,),
        context={
            "reference": reference(p.participant_id), "municipality_code": p.municipality_code,
            "employment_form": p.employment_form, "start": p.start.isoformat(),
            "link": _link(base, f"/participants/{p.participant_id}"),
        },
    )


FactsBuilder = Callable[[str, Any, str, dict[UUID, str]], EventFacts]


@dataclass(frozen=True)
class RoutedEvent:
    payload: type[BaseModel]
    facts: FactsBuilder
    templates: tuple[str, ...]
    """The templates written for this event type; the first is the default."""


ROUTED_EVENTS: dict[str, RoutedEvent] = {
    reg.COMPANY_REGISTERED: RoutedEvent(
        reg.CompanyPayload, _company_facts, ("company_registered", "company_registered_receipt")
    ),
    reg.COMPANY_UPDATED: RoutedEvent(reg.CompanyPayload, _company_facts, ()),
    reg.COMPANY_VERIFIED: RoutedEvent(reg.CompanyPayload, _company_facts, ("company_verified",)),
    reg.COMPANY_REJECTED: RoutedEvent(reg.CompanyPayload, _company_facts, ("company_rejected",)),
    reg.COMPANY_DEREGISTERED: RoutedEvent(
        reg.CompanyPayload, _company_facts, ("company_deregistered",)
    ),
    reg.CONTRACT_AWARDED: RoutedEvent(
        reg.ContractAwardedPayload, _contract_facts, ("contract_awarded",)
    ),
    reg.LEARNING_EXAMPLE_SUBMITTED: RoutedEvent(
        reg.LearningExampleSubmittedPayload, _learning_example_facts,
        ("learning_example_submitted",),
    ),
    cw.PLACEMENTS_FLAGGED: RoutedEvent(
        cw.PlacementsFlaggedPayload, _flagged_facts, ("placements_flagged",)
    ),
    cw.PLACEMENT_STARTED: RoutedEvent(
        cw.PlacementStartedPayload, _placement_started_facts, ("placement_started",)
    ),
    cw.FOLLOW_UP_DUE: RoutedEvent(cw.FollowUpDuePayload, _follow_up_facts, ("follow_up_due",)),
    cw.PARTICIPANT_EMPLOYED: RoutedEvent(
        cw.ParticipantEmployedPayload, _employed_facts, ("participant_employed",)
    ),
}
"""Every event type notifications consumes (all version 1), how to read it, its templates."""

COMPANY_EVENTS = frozenset({
    reg.COMPANY_REGISTERED, reg.COMPANY_UPDATED, reg.COMPANY_VERIFIED, reg.COMPANY_REJECTED,
    reg.COMPANY_DEREGISTERED,
})

TEMPLATE_EVENTS: dict[str, str] = {
    name: event_type for event_type, r in ROUTED_EVENTS.items() for name in r.templates
}
"""Which event a template is written for; the digest template is for none."""


def facts_of(
    event_type: str, payload: BaseModel, base_url: str, company_names: dict[UUID, str]
) -> EventFacts:
    return ROUTED_EVENTS[event_type].facts(event_type, payload, base_url, company_names)


# --- routing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Whom one subscription reaches for one event, for the store to look up."""

    kind: Literal["contact", "role", "company_contacts", "case_workers"]
    contact_id: UUID | None = None
    role: str | None = None
    municipality_code: str | None = None
    company_ids: tuple[UUID, ...] = ()
    subjects: tuple[str, ...] = ()

    def describe(self) -> str:
        """Why nobody was found, in words an analyst can act on (no personal data)."""
        if self.kind == "contact":
            return f"contact {self.contact_id} is missing or inactive"
        if self.kind == "role":
            where = f" for municipality {self.municipality_code}" if self.municipality_code else ""
            return f"no active contact with role {self.role}{where}"
        if self.kind == "company_contacts":
            ids = ", ".join(str(c) for c in self.company_ids) or "none named"
            return f"no contact with an email for company {ids}"
        return (f"no case worker contact with subject {', '.join(self.subjects) or '(none named)'};"
                " register one with POST /contacts (role case_worker, subject)")


def audience(sub: Subscription, facts: EventFacts) -> Audience | None:
    """Whom `sub` reaches for this event, or None when its filters leave the event out."""
    if sub.municipality_code is not None and facts.municipality_code != sub.municipality_code:
        return None
    if sub.company_id is not None and sub.company_id not in facts.company_ids:
        return None
    if sub.contact_id is not None:
        return Audience("contact", contact_id=sub.contact_id)
    if sub.role == COMPANY_CONTACT:
        return Audience("company_contacts", company_ids=facts.company_ids)
    if sub.role == CASE_WORKER:
        return Audience("case_workers", subjects=facts.case_workers)
    return Audience("role", role=sub.role, municipality_code=facts.municipality_code)


@dataclass(frozen=True)
class DefaultRoute:
    event_type: str
    role: str
    template: str
    mode: Mode = "immediate"


DEFAULT_ROUTING: tuple[DefaultRoute, ...] = (
    DefaultRoute(reg.LEARNING_EXAMPLE_SUBMITTED, INFORMATION_OFFICER, "learning_example_submitted"),
    DefaultRoute(reg.CONTRACT_AWARDED, INFORMATION_OFFICER, "contract_awarded"),
    DefaultRoute(reg.COMPANY_REGISTERED, REGISTRY_OFFICER, "company_registered"),
    DefaultRoute(reg.COMPANY_REGISTERED, COMPANY_CONTACT, "company_registered_receipt"),
    DefaultRoute(reg.COMPANY_VERIFIED, COMPANY_CONTACT, "company_verified"),
    DefaultRoute(reg.COMPANY_REJECTED, COMPANY_CONTACT, "company_rejected"),
    DefaultRoute(reg.COMPANY_DEREGISTERED, COMPANY_CONTACT, "company_deregistered"),
    DefaultRoute(cw.PLACEMENTS_FLAGGED, CASE_WORKER, "placements_flagged"),
    DefaultRoute(cw.PLACEMENT_STARTED, COMPANY_CONTACT, "placement_started"),
    DefaultRoute(cw.FOLLOW_UP_DUE, CASE_WORKER, "follow_up_due"),
    DefaultRoute(cw.PARTICIPANT_EMPLOYED, INFORMATION_OFFICER, "participant_employed",
                 "daily_digest"),
)
"""SPEC 3.3's routing table, seeded once as subscriptions and editable after."""


# --- templates ------------------------------------------------------------------------------


class RenderError(Exception):
    """A template could not be rendered with the values given."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                 keep_trailing_newline=True)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


def render(t: Template, context: dict[str, Any]) -> Rendered:
    """Subject on one line (no header injection), text unescaped, HTML autoescaped."""
    try:
        subject = _text_env.from_string(t.subject).render(context)
        text = _text_env.from_string(t.text).render(context)
        html = _html_env.from_string(t.html).render(context)
    except TemplateError as e:
        raise RenderError(f"{type(e).__name__}: {e}") from e
    subject = " ".join(subject.split())[:300]
    return Rendered(subject=subject, text=text, html=html)


def check_template(t: Template) -> None:
    """Parse all three parts, so a broken template fails where it is loaded."""
    for part in (t.subject, t.text):
        _text_env.parse(part)
    _html_env.parse(t.html)


def pick_locale(available: dict[str, Template], wanted: str) -> Template | None:
    """The contact's language when the template has it, Swedish otherwise."""
    return available.get(wanted) or available.get("sv") or next(iter(available.values()), None)


# --- sending outcomes -----------------------------------------------------------------------


def retry_delay(attempts: int, base_seconds: float, cap_seconds: float) -> timedelta:
    """Capped exponential backoff: base, 2·base, 4·base, … never more than the cap."""
    exponent = max(attempts - 1, 0)
    seconds = cap_seconds if exponent > 30 else min(cap_seconds, base_seconds * 2**exponent)
    return timedelta(seconds=seconds)


Outcome = Literal["sent", "retry", "fail"]


def outcome_for_code(code: int | None) -> Outcome:
    """SMTP reply codes: 2xx sent, 5xx refused for good, 4xx and no reply worth retrying."""
    if code is not None and 200 <= code < 300:
        return "sent"
    if code is not None and 500 <= code < 600:
        return "fail"
    return "retry"


def after_attempt(
    outcome: Outcome, attempts: int, max_attempts: int, base_seconds: float, cap_seconds: float
) -> tuple[DeliveryStatus, timedelta | None]:
    """Where a delivery goes after try number `attempts`: sent, retrying (and when), failed."""
    if outcome == "sent":
        return "sent", None
    if outcome == "retry" and attempts < max_attempts:
        return "retrying", retry_delay(attempts, base_seconds, cap_seconds)
    return "failed", None


# --- the daily digest -----------------------------------------------------------------------


def digest_event_id(contact_id: UUID, day: date) -> UUID:
    """One digest per contact per day: the same (contact, day) gives the same id."""
    return uuid5(_DIGEST_NAMESPACE, f"digest:{contact_id}:{day.isoformat()}")


def digest_window(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The local calendar day as a UTC interval [start, end)."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def digest_day(now: datetime, timezone: str, hour: int) -> date | None:
    """The day a digest run at `now` covers: yesterday, once the local hour has come."""
    local = now.astimezone(ZoneInfo(timezone))
    if local.hour < hour:
        return None
    return local.date() - timedelta(days=1)


class DigestLine(BaseModel):
    event_type: str
    municipality_code: str | None
    count: int = Field(ge=0)


class DigestSummary(BaseModel):
    """What one contact's digest for one day counts: events per type and municipality."""

    day: date
    lines: list[DigestLine]


def digest_context(summary: DigestSummary, base_url: str) -> dict[str, Any]:
    sections: dict[str, dict[str, Any]] = {}
    for line in sorted(summary.lines, key=lambda x: (x.event_type, x.municipality_code or "")):
        s = sections.setdefault(line.event_type, {"event_type": line.event_type, "total": 0,
                                                  "by_municipality": []})
        s["total"] += line.count
        s["by_municipality"].append({"municipality_code": line.municipality_code or "-",
                                     "count": line.count})
    return {
        "day": summary.day.isoformat(),
        "sections": list(sections.values()),
        "total": sum(x.count for x in summary.lines),
        "link": _link(base_url, "/stats"),
    }
