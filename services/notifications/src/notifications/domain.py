"""Contacts, the routing table, deliveries, sending outcomes and the daily digest: the
models and rules of notifications. Pure, no I/O.

Where the rest lives: `routing` (who hears about an event, and what they may read),
`mail_templates` (the Jinja2 sandbox and template versions).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from asf_contracts import registry as reg
from asf_kit.fields import Documented, Email, Input, not_null
from asf_kit.rules import RuleError
from notifications.mail_templates import Locale

Mode = Literal["immediate", "daily_digest"]
DeliveryStatus = Literal["pending", "sending", "sent", "retrying", "failed", "skipped"]
ContactSource = Literal["manual", "registry", "submitter"]

INFORMATION_OFFICER = "information_officer"
REGISTRY_OFFICER = "registry_officer"
CASE_WORKER = "case_worker"
"""Routed by relation: the case workers an event names (`assigned_to`, `case_workers`)."""
COMPANY_CONTACT = "company_contact"
"""Routed by relation: the contacts of the companies an event names."""
SUBMITTER = "submitter"
"""Routed by relation: the person who submitted the learning example an event is about."""

DIGEST_TEMPLATE = "daily_digest"
DIGEST_EVENT_TYPE = "notifications.daily_digest"
_DIGEST_NAMESPACE = UUID("6f1c1c38-6a51-4c2e-9d47-2f7c4b1d9a10")

ROLE_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
_ROLE = re.compile(ROLE_PATTERN)


def _check_role(value: str) -> str:
    if not _ROLE.match(value):
        raise ValueError("must be a short tag: lower case letters, digits and _, 2-40 long")
    return value


RoleName = Annotated[str, AfterValidator(_check_role), Documented(pattern=ROLE_PATTERN)]
MunicipalityCode = Annotated[str, Field(pattern=r"^\d{4}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Subject = Annotated[str, Field(min_length=1, max_length=200)]


# --- contacts and subscriptions --------------------------------------------------------------


class ContactIn(Input):
    # check_contact's rule, in the schema: a case worker belongs to a municipality
    model_config = ConfigDict(json_schema_extra={
        "if": {"required": ["role"], "properties": {"role": {"const": CASE_WORKER}}},
        "then": {"required": ["municipality_code"],
                 "properties": {"municipality_code": {"type": "string"}}},
    })

    name: Name
    email: Email
    role: RoleName
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    subject: Subject | None = Field(
        default=None, description="The JWT `sub` of the user, e.g. a case worker"
    )
    locale: Locale = "sv"


class ContactPatch(Input):
    name: Name | None = Field(default=None, json_schema_extra=not_null)
    email: Email | None = Field(default=None, json_schema_extra=not_null)
    role: RoleName | None = Field(default=None, json_schema_extra=not_null)
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    subject: Subject | None = None
    locale: Locale | None = Field(default=None, json_schema_extra=not_null)
    active: bool | None = Field(default=None, json_schema_extra=not_null)
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
    source: ContactSource = Field(
        description="`registry`: mirrored from the company's events; `submitter`: from a "
        "learning example's decision"
    )
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


def check_contact(c: Contact) -> None:
    """A case worker belongs to a municipality: participants' references reach a contact
    only when they are of the contact's own municipality, so one without would hear nothing."""
    if c.role == CASE_WORKER and c.municipality_code is None:
        raise RuleError(422, "Validation failed",
                        "municipality_code: required for a case worker",
                        errors=[{"field": "municipality_code",
                                 "message": "required for a case worker"}])


def _routes(schema: dict[str, Any], *, new: bool) -> None:
    """What `service._checked_subscription` holds a subscription to, in its schema: an event
    notifications receives and has a template for, one of that event's templates, and (a new
    one) a contact or a role, not both. (Read when the document is made: `routing` imports
    this module.)"""
    from notifications.routing import ROUTED_EVENTS

    props = schema["properties"]
    routed_with_templates = {e: r for e, r in ROUTED_EVENTS.items() if r.templates}
    events = sorted(routed_with_templates)
    templates = sorted(t.name for r in ROUTED_EVENTS.values() for t in r.templates)
    for name, values in (("event_type", events), ("template", templates)):
        branches = props[name].get("anyOf", [props[name]])
        for branch in branches:
            if branch.get("type") == "string":
                branch["enum"] = values
    schema["allOf"] = [
        {"if": {"required": ["event_type"], "properties": {"event_type": {"const": event}}},
         "then": {"properties": {"template": {"anyOf": [
             {"enum": [t.name for t in routed.templates]}, {"type": "null"}]}}}}
        for event, routed in sorted(routed_with_templates.items())
    ]
    if new:  # exactly one of contact_id and role (if/then/else: a generated client reads
        # past it, where a top-level oneOf would replace the model)
        schema["allOf"].append({
            "if": {"required": ["contact_id"],
                   "properties": {"contact_id": {"type": "string"}}},
            "then": {"properties": {"role": {"type": "null"}}},
            "else": {"required": ["role"], "properties": {"role": {"type": "string"}}},
        })


def check_event_type(value: str | None) -> str | None:
    """An event notifications receives (checked here, before the version: a bad value is a
    422 whatever the version)."""
    from notifications.routing import ROUTED_EVENTS

    if value is not None and value not in ROUTED_EVENTS:
        raise ValueError("not an event notifications receives; one of: "
                         + ", ".join(sorted(ROUTED_EVENTS)))
    return value


def check_template(value: str | None) -> str | None:
    from notifications.routing import TEMPLATE_EVENTS

    if value is not None and value not in TEMPLATE_EVENTS:
        raise ValueError("not a template; one of: " + ", ".join(sorted(TEMPLATE_EVENTS)))
    return value


EventType = Annotated[str, AfterValidator(check_event_type)]
TemplateName = Annotated[str, AfterValidator(check_template)]


def _new_subscription(schema: dict[str, Any]) -> None:
    _routes(schema, new=True)


def _subscription_patch(schema: dict[str, Any]) -> None:
    _routes(schema, new=False)


class SubscriptionIn(Input):
    model_config = ConfigDict(json_schema_extra=_new_subscription)

    event_type: EventType = Field(examples=[reg.LEARNING_EXAMPLE_SUBMITTED])
    contact_id: UUID | None = None
    role: RoleName | None = Field(
        default=None,
        description=f"Every active contact with this role; `{CASE_WORKER}` and "
        f"`{COMPANY_CONTACT}` mean the ones the event names",
    )
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    mode: Mode = "immediate"
    template: TemplateName | None = Field(
        default=None, description="Defaults to the event's template")


class SubscriptionPatch(Input):
    model_config = ConfigDict(json_schema_extra=_subscription_patch)

    event_type: EventType | None = Field(default=None, json_schema_extra=not_null)
    contact_id: UUID | None = None
    role: RoleName | None = None
    municipality_code: MunicipalityCode | None = None
    company_id: UUID | None = None
    mode: Mode | None = Field(default=None, json_schema_extra=not_null)
    template: TemplateName | None = Field(default=None, json_schema_extra=not_null)
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


def message_id_for(delivery_id: UUID) -> str:
    """The same delivery always carries the same Message-ID, so a resend is recognisable."""
    return f"<{delivery_id}@asf-samverkan>"


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
        "link": base_url.rstrip("/") + "/stats",
    }
