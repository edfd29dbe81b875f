"""Who hears about what. Pure rules, no I/O.

An event becomes `EventFacts`: which municipality, companies, case workers and submitter it
concerns, which participants it refers to, and the only values a template may print. Each
subscription turns the facts into an `Audience` that the store resolves to contacts, and
`EventFacts.context_for(contact)` says what that contact may read. The rule it keeps: a
recipient only ever gets references to participants of their own municipality; a company's
contacts only to the placements at their own company.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from notifications.domain import (
    CASE_WORKER,
    COMPANY_CONTACT,
    INFORMATION_OFFICER,
    REGISTRY_OFFICER,
    SUBMITTER,
    Mode,
    Subscription,
)


class Recipient(Protocol):
    """What the scope rule needs to know about a contact."""

    @property
    def role(self) -> str: ...
    @property
    def municipality_code(self) -> str | None: ...
    @property
    def company_id(self) -> UUID | None: ...
    @property
    def subject(self) -> str | None: ...


def reference(participant_id: UUID) -> str:
    """A short reference a case worker can search for; the UUID carries no personal data."""
    return participant_id.hex[:8].upper()


def link(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


@dataclass(frozen=True)
class ParticipantRef:
    """A participant an email would refer to, and who may see the reference."""

    municipality_code: str
    assigned_to: str | None = None
    host_company_id: UUID | None = None
    """The company where the participant's placement runs; its contacts may see it."""
    item: dict[str, Any] = field(default_factory=dict)
    """What a listing template prints for it (reference and link)."""

    def visible_to(self, who: Recipient) -> bool:
        """A company's contact sees the placements at their own company; a submitter none;
        anyone else the participants of their own municipality."""
        if who.role == COMPANY_CONTACT:
            return self.host_company_id is not None and who.company_id == self.host_company_id
        if who.role == SUBMITTER:
            return False
        return who.municipality_code is not None and who.municipality_code == self.municipality_code


@dataclass(frozen=True)
class EventFacts:
    """What routing and templates may know about one event."""

    event_type: str
    municipality_code: str | None = None
    company_ids: tuple[UUID, ...] = ()
    case_workers: tuple[str, ...] = ()
    submitter: tuple[str, str] | None = None
    """(name, email) of a learning example's submitter."""
    participants: tuple[ParticipantRef, ...] = ()
    listed: str | None = None
    """The context key listing `participants` (each recipient sees only their own)."""
    context: dict[str, Any] = field(default_factory=dict)

    def context_for(self, who: Recipient) -> dict[str, Any] | None:
        """What `who` may read, or None when the email would refer only to participants
        they may not see (then nothing is sent to them)."""
        if not self.participants:
            return self.context
        visible = [p for p in self.participants if p.visible_to(who)]
        if self.listed is None:
            return self.context if len(visible) == len(self.participants) else None
        if who.subject is not None and any(p.assigned_to == who.subject
                                           for p in self.participants):
            # A case worker named in the event sees their own cases, not their colleagues'.
            visible = [p for p in visible if p.assigned_to == who.subject]
        shown = visible
        if not shown:
            return None
        return {**self.context, self.listed: [p.item for p in shown], "count": len(shown)}

    def why_not_for(self, who: Recipient) -> str:
        """Why `context_for(who)` is None, without naming anybody."""
        if who.role == COMPANY_CONTACT:
            return "the event refers to participants placed at other companies than the contact's"
        where = who.municipality_code or "no municipality"
        return (f"the event refers to participants of other municipalities than the "
                f"contact's ({where})")


FactsBuilder = Callable[[str, Any, str, dict[UUID, str]], EventFacts]


# --- events to facts ------------------------------------------------------------------------


def _company_context(p: reg.CompanyPayload, base: str) -> dict[str, Any]:
    return {
        "company_name": p.name, "org_number": p.org_number, "status": p.status,
        "municipality_code": p.municipality_code, "decision_note": p.decision_note,
        "deregistration_reason": p.deregistration_reason,
        "verification_level": p.verification_level,
        "valid_until": p.valid_until.isoformat() if p.valid_until else None,
        "link": link(base, f"/companies/{p.id}"),
    }


def _company_facts(
    event_type: str, p: reg.CompanyPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    context = _company_context(p, base)
    if isinstance(p, reg.VerificationExpiringPayload):
        context["days_left"] = p.days_left
    if isinstance(p, reg.VerificationExpiredPayload):
        context["expired_on"] = p.expired_on.isoformat()
    return EventFacts(event_type=event_type, municipality_code=p.municipality_code,
                      company_ids=(p.id,), context=context)


def _contract_facts(
    event_type: str, p: reg.ContractAwardedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code, company_ids=(p.company_id,),
        context={
            "company_name": p.company_name, "title": p.title, "value_sek": p.value_sek,
            "municipality_code": p.municipality_code, "start": p.start.isoformat(),
            "end": p.end.isoformat() if p.end else None, "reserved": p.reserved,
            "procurement_reference": p.procurement_reference,
            "link": link(base, f"/companies/{p.company_id}"),
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
            "link": link(base, f"/learning-examples/{p.id}"),
        },
    )


def _learning_example_decided_facts(
    event_type: str, p: reg.LearningExampleDecidedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        submitter=(p.contact.name, p.contact.email),
        context={
            "title": p.title, "decision": p.decision, "note": p.note,
            "municipality_code": p.municipality_code, "submitter_name": p.contact.name,
            "link": link(base, f"/learning-examples/{p.id}"),
            "handbook_link": link(base, f"/handbook/{p.id}"),
        },
    )


def _flagged_facts(
    event_type: str, p: cw.PlacementsFlaggedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    refs = tuple(
        ParticipantRef(
            municipality_code=f.municipality_code, assigned_to=f.assigned_to,
            host_company_id=p.company_id,
            item={"reference": reference(f.participant_id),
                  "municipality_code": f.municipality_code,
                  "link": link(base, f"/participants/{f.participant_id}"),
                  "placement_link": link(base, f"/placements/{f.placement_id}")},
        )
        for f in p.placements
    )
    codes = {f.municipality_code for f in p.placements}
    return EventFacts(
        event_type=event_type, municipality_code=codes.pop() if len(codes) == 1 else None,
        company_ids=(p.company_id,), case_workers=tuple(p.case_workers),
        participants=refs, listed="placements",
        context={"company_name": p.company_name, "reason": p.reason,
                 "placements": [r.item for r in refs], "count": len(refs)},
    )


def _placement_started_facts(
    event_type: str, p: cw.PlacementStartedPayload, base: str, names: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code, company_ids=(p.company_id,),
        case_workers=(p.assigned_to,),
        participants=(ParticipantRef(p.municipality_code, p.assigned_to, p.company_id),),
        context={
            "reference": reference(p.participant_id), "company_name": names.get(p.company_id),
            "start": p.start.isoformat(), "kind": p.kind,
            "municipality_code": p.municipality_code,
            "link": link(base, f"/placements/{p.placement_id}"),
        },
    )


def _follow_up_facts(
    event_type: str, p: cw.FollowUpDuePayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        case_workers=(p.assigned_to,),
        participants=(ParticipantRef(p.municipality_code, p.assigned_to),),
        context={
            "reference": reference(p.participant_id), "offset_days": p.offset_days,
            "due_date": p.due_date.isoformat(), "employment_start": p.employment_start.isoformat(),
            "municipality_code": p.municipality_code,
            "link": link(base, f"/participants/{p.participant_id}"),
        },
    )


def _employed_facts(
    event_type: str, p: cw.ParticipantEmployedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        company_ids=(p.employer_company_id,) if p.employer_company_id else (),
        case_workers=(p.assigned_to,),
        participants=(ParticipantRef(p.municipality_code, p.assigned_to),),
        context={
            "reference": reference(p.participant_id), "municipality_code": p.municipality_code,
            "employment_form": p.employment_form, "start": p.start.isoformat(),
            "link": link(base, f"/participants/{p.participant_id}"),
        },
    )


def _reassigned_facts(
    event_type: str, p: cw.ParticipantReassignedPayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    """To the new case worker only; who had the case before is not printed."""
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        case_workers=(p.assigned_to,),
        participants=(ParticipantRef(p.municipality_code, p.assigned_to),),
        context={
            "reference": reference(p.participant_id), "municipality_code": p.municipality_code,
            "link": link(base, f"/participants/{p.participant_id}"),
        },
    )


def _plan_review_facts(
    event_type: str, p: cw.PlanReviewDuePayload, base: str, _: dict[UUID, str]
) -> EventFacts:
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code,
        case_workers=(p.assigned_to,),
        participants=(ParticipantRef(p.municipality_code, p.assigned_to),),
        context={
            "reference": reference(p.participant_id), "municipality_code": p.municipality_code,
            "review_date": p.review_date.isoformat(), "plan_version": p.plan_version,
            "link": link(base, f"/participants/{p.participant_id}"),
        },
    )


def _statement_facts(
    event_type: str, p: cw.StatementIssuedPayload, base: str, names: dict[UUID, str]
) -> EventFacts:
    """Totals only: a statement names no participant."""
    t = p.totals
    return EventFacts(
        event_type=event_type, municipality_code=p.municipality_code, company_ids=(p.company_id,),
        context={
            "reference": reference(p.statement_id), "company_name": names.get(p.company_id),
            "municipality_code": p.municipality_code, "month": p.month, "kind": p.kind,
            "correction": p.kind == "correction",
            "supersedes": reference(p.supersedes) if p.supersedes else None,
            "placements": t.placements, "days_present": t.days_present,
            "hours_present": t.hours_present, "amount_sek": t.amount_sek,
            "absence_days": dict(sorted(t.absence_days.items())),
            "link": link(base, f"/statements/{p.statement_id}"),
        },
    )


@dataclass(frozen=True)
class TemplateSpec:
    """A template written for an event type, and which of its events it is for."""

    name: str
    applies: Callable[[EventFacts], bool] = lambda _: True


def _reserved(facts: EventFacts) -> bool:
    return bool(facts.context.get("reserved"))


def _not_reserved(facts: EventFacts) -> bool:
    return not facts.context.get("reserved")


@dataclass(frozen=True)
class RoutedEvent:
    payload: type[BaseModel]
    facts: FactsBuilder
    templates: tuple[TemplateSpec, ...]
    """The templates written for this event type; the first is the default."""


def _specs(*names: str) -> tuple[TemplateSpec, ...]:
    return tuple(TemplateSpec(n) for n in names)


ROUTED_EVENTS: dict[str, RoutedEvent] = {
    reg.COMPANY_REGISTERED: RoutedEvent(
        reg.CompanyPayload, _company_facts,
        _specs("company_registered", "company_registered_receipt"),
    ),
    reg.COMPANY_UPDATED: RoutedEvent(reg.CompanyPayload, _company_facts, ()),
    reg.COMPANY_VERIFIED: RoutedEvent(reg.CompanyPayload, _company_facts,
                                      _specs("company_verified")),
    reg.COMPANY_REJECTED: RoutedEvent(reg.CompanyPayload, _company_facts,
                                      _specs("company_rejected")),
    reg.COMPANY_DEREGISTERED: RoutedEvent(
        reg.CompanyPayload, _company_facts, _specs("company_deregistered")
    ),
    reg.COMPANY_VERIFICATION_EXPIRING: RoutedEvent(
        reg.VerificationExpiringPayload, _company_facts,
        _specs("verification_expiring", "verification_expiring_officer"),
    ),
    reg.COMPANY_VERIFICATION_EXPIRED: RoutedEvent(
        reg.VerificationExpiredPayload, _company_facts,
        _specs("verification_expired", "verification_expired_officer"),
    ),
    reg.CONTRACT_AWARDED: RoutedEvent(
        reg.ContractAwardedPayload, _contract_facts,
        (TemplateSpec("contract_awarded", _reserved),
         TemplateSpec("contract_awarded_company", _not_reserved)),
    ),
    reg.LEARNING_EXAMPLE_SUBMITTED: RoutedEvent(
        reg.LearningExampleSubmittedPayload, _learning_example_facts,
        _specs("learning_example_submitted"),
    ),
    reg.LEARNING_EXAMPLE_PUBLISHED: RoutedEvent(
        reg.LearningExampleDecidedPayload, _learning_example_decided_facts,
        _specs("learning_example_published"),
    ),
    reg.LEARNING_EXAMPLE_DECLINED: RoutedEvent(
        reg.LearningExampleDecidedPayload, _learning_example_decided_facts,
        _specs("learning_example_declined"),
    ),
    cw.PLACEMENTS_FLAGGED: RoutedEvent(
        cw.PlacementsFlaggedPayload, _flagged_facts, _specs("placements_flagged")
    ),
    cw.PLACEMENT_STARTED: RoutedEvent(
        cw.PlacementStartedPayload, _placement_started_facts, _specs("placement_started")
    ),
    cw.FOLLOW_UP_DUE: RoutedEvent(cw.FollowUpDuePayload, _follow_up_facts,
                                  _specs("follow_up_due")),
    cw.PARTICIPANT_EMPLOYED: RoutedEvent(
        cw.ParticipantEmployedPayload, _employed_facts, _specs("participant_employed")
    ),
    cw.PARTICIPANT_REASSIGNED: RoutedEvent(
        cw.ParticipantReassignedPayload, _reassigned_facts, _specs("participant_reassigned")
    ),
    cw.PLAN_REVIEW_DUE: RoutedEvent(cw.PlanReviewDuePayload, _plan_review_facts,
                                    _specs("plan_review_due")),
    cw.STATEMENT_ISSUED: RoutedEvent(
        cw.StatementIssuedPayload, _statement_facts, _specs("statement_issued")
    ),
}
"""Every event type notifications consumes (all version 1), how to read it, its templates."""

TEMPLATE_SPECS: dict[str, TemplateSpec] = {
    spec.name: spec for routed in ROUTED_EVENTS.values() for spec in routed.templates
}
TEMPLATE_EVENTS: dict[str, str] = {
    spec.name: event_type for event_type, r in ROUTED_EVENTS.items() for spec in r.templates
}
"""Which event a template is written for; the digest template is for none."""


def facts_of(
    event_type: str, payload: BaseModel, base_url: str, company_names: dict[UUID, str]
) -> EventFacts:
    return ROUTED_EVENTS[event_type].facts(event_type, payload, base_url, company_names)


def template_applies(template: str, facts: EventFacts) -> bool:
    """Whether a template is for this particular event (a reserved contract or not)."""
    spec = TEMPLATE_SPECS.get(template)
    return spec is None or spec.applies(facts)


# --- audiences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Whom one subscription reaches for one event, for the store to look up."""

    kind: Literal["contact", "role", "company_contacts", "case_workers", "submitter"]
    contact_id: UUID | None = None
    role: str | None = None
    municipality_code: str | None = None
    company_ids: tuple[UUID, ...] = ()
    subjects: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

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
        if self.kind == "submitter":
            return ("the submitter has no valid email address, or their contact is inactive"
                    if self.emails else "the event names no submitter")
        return (f"no case worker contact with subject {', '.join(self.subjects) or '(none named)'};"
                " register one with POST /contacts (role case_worker, subject)")


def audience(sub: Subscription, facts: EventFacts) -> Audience | None:
    """Whom `sub` reaches for this event, or None when its filters leave the event out."""
    if sub.municipality_code is not None and facts.municipality_code != sub.municipality_code:
        return None
    if sub.company_id is not None and sub.company_id not in facts.company_ids:
        return None
    if not template_applies(sub.template, facts):
        return None
    if sub.contact_id is not None:
        return Audience("contact", contact_id=sub.contact_id)
    if sub.role == COMPANY_CONTACT:
        return Audience("company_contacts", company_ids=facts.company_ids)
    if sub.role == CASE_WORKER:
        return Audience("case_workers", subjects=facts.case_workers)
    if sub.role == SUBMITTER:
        return Audience("submitter", emails=(facts.submitter[1],) if facts.submitter else ())
    return Audience("role", role=sub.role, municipality_code=facts.municipality_code)


# --- the default routing table --------------------------------------------------------------


@dataclass(frozen=True)
class DefaultRoute:
    event_type: str
    role: str
    template: str
    mode: Mode = "immediate"
    seed: str = "default_routing_v1"
    """Routes are seeded once per seed name, so routes added later reach running systems."""


_V2 = "default_routing_v2"

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
    # SPEC 3.3 "More routing"
    DefaultRoute(reg.CONTRACT_AWARDED, COMPANY_CONTACT, "contract_awarded_company", seed=_V2),
    DefaultRoute(cw.PARTICIPANT_REASSIGNED, CASE_WORKER, "participant_reassigned", seed=_V2),
    DefaultRoute(reg.COMPANY_VERIFICATION_EXPIRING, COMPANY_CONTACT, "verification_expiring",
                 seed=_V2),
    DefaultRoute(reg.COMPANY_VERIFICATION_EXPIRING, REGISTRY_OFFICER,
                 "verification_expiring_officer", seed=_V2),
    DefaultRoute(reg.COMPANY_VERIFICATION_EXPIRED, COMPANY_CONTACT, "verification_expired",
                 seed=_V2),
    DefaultRoute(reg.COMPANY_VERIFICATION_EXPIRED, REGISTRY_OFFICER,
                 "verification_expired_officer", seed=_V2),
    DefaultRoute(reg.LEARNING_EXAMPLE_PUBLISHED, SUBMITTER, "learning_example_published",
                 seed=_V2),
    DefaultRoute(reg.LEARNING_EXAMPLE_DECLINED, SUBMITTER, "learning_example_declined",
                 seed=_V2),
    DefaultRoute(cw.PLAN_REVIEW_DUE, CASE_WORKER, "plan_review_due", seed=_V2),
    DefaultRoute(cw.STATEMENT_ISSUED, COMPANY_CONTACT, "statement_issued", seed=_V2),
)
"""SPEC 3.3's routing table, seeded once (per seed name) as subscriptions and editable after."""
