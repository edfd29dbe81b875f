"""Casework's rules: the `Participant` aggregate (one person, one case, in one municipality)
and casework's copy of the companies it places people at. Pure, no I/O.

A participant is a person a municipality refers to work training (arbetsträning) at an ASF.
The case moves `referred` → `assessment` (kartläggning) → `in_training` (an active
placement) → `employed` → `closed`; `closed` is reachable from every stage, and
`employed` → `in_training` again when a job ends early.

Each method of `Participant` decides one change: it refuses with a `RuleError` naming
what the caller can do, or changes the aggregate and records the events the change
causes (`Participant.events`) and the rows it added or changed (`added`, `changed`), which
the store saves and the service publishes in one unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, Field

from asf_contracts import casework as ev
from asf_contracts.registry import CompanyPayload
from asf_kit.rules import RuleError
from casework.inputs import (
    PlacementEndReason,
    PlacementIn,
    ReferralSource,
    Stage,
    TransitionIn,
)

TRANSITIONS: dict[str, tuple[Stage, ...]] = {
    "referred": ("assessment", "closed"),
    "assessment": ("in_training", "closed"),
    "in_training": ("employed", "closed"),
    "employed": ("in_training", "closed"),
    "closed": (),
}
"""Every allowed move; anything else is refused with these as the allowed ones."""


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something that happened to an aggregate, at the aggregate version it produced."""

    type: str
    aggregate_id: UUID
    version: int
    payload: BaseModel


# --- the parts of a case ----------------------------------------------------------------


class Placement(BaseModel):
    """Work training (or another kind of placement) of the participant at an ASF."""

    id: UUID
    participant_id: UUID
    company_id: UUID
    company_name: str | None = Field(description="As casework knows the company")
    kind: str
    start: date
    planned_end: date | None
    hours_per_week: float | None
    status: Literal["active", "ended"]
    ended_on: date | None = None
    end_reason: str | None = None
    flagged_at: datetime | None = Field(
        default=None, description="When the company was deregistered while this ran")
    flag_reason: str | None = None
    created_by: str
    created_at: datetime
    version: int = 1


class Employment(BaseModel):
    id: UUID
    participant_id: UUID
    form: str
    employer_company_id: UUID | None
    employer_name: str | None = Field(
        default=None, description="Personal data: shown only with the participant's own data "
        "(GET /participants/{id}) and in the timeline; sealed at rest, erased with them")
    start: date
    ended_on: date | None = None
    created_at: datetime


FollowUpStatus = Literal["upcoming", "due", "recorded", "cancelled"]


class FollowUp(BaseModel):
    """Whether the participant is still employed, asked at an offset after employment start."""

    id: UUID
    participant_id: UUID
    employment_id: UUID
    offset_days: int
    due_date: date
    due_notified_at: datetime | None = None
    cancelled_at: datetime | None = None
    recorded_at: datetime | None = None
    recorded_by: str | None = None
    still_employed: bool | None = None

    @property
    def is_open(self) -> bool:
        """Neither recorded nor cancelled."""
        return self.recorded_at is None and self.cancelled_at is None

    def status_on(self, today: date) -> FollowUpStatus:
        if self.recorded_at is not None:
            return "recorded"
        if self.cancelled_at is not None:
            return "cancelled"
        return "due" if self.due_date <= today else "upcoming"


class StageChange(BaseModel):
    """One move of the case: the pseudonymous history that stays after erasure."""

    participant_id: UUID
    from_stage: str | None
    to_stage: str
    exit_reason: str | None
    at: datetime
    by: str


class NoteRef(BaseModel):
    """A note on the case without its text, which is sealed with the participant's key."""

    id: UUID
    participant_id: UUID
    author: str
    confidential: bool
    created_at: datetime

    def readable_by(self, sub: str, assigned_to: str) -> bool:
        """A confidential note is read by its author and the assigned case worker only."""
        return not self.confidential or sub in (self.author, assigned_to)


class Reassignment(BaseModel):
    """The case handed from one case worker to another."""

    participant_id: UUID
    from_assigned_to: str
    assigned_to: str
    at: datetime
    by: str


Row = Placement | Employment | FollowUp | StageChange | Reassignment


class KnownUser(BaseModel):
    """Someone who signed in to casework, as their token said the last time it was noted."""

    sub: str
    municipality_code: str | None
    roles: list[str]
    seen_at: datetime

    def is_case_worker_of(self, municipality_code: str) -> bool:
        return "case_worker" in self.roles and self.municipality_code == municipality_code


# --- the companies, as casework knows them ----------------------------------------------


class Company(BaseModel):
    """Casework's copy of a company in the register, kept from the registry's events."""

    id: UUID
    name: str
    municipality_code: str
    status: str
    training_places: int
    version: int

    @classmethod
    def from_payload(cls, payload: CompanyPayload, version: int) -> Company:
        return cls(id=payload.id, name=payload.name,
                   municipality_code=payload.municipality_code, status=payload.status,
                   training_places=payload.training_places, version=version)

    def take_place(self, taken: int) -> None:
        """Only an active company with a free training place takes a new placement."""
        if self.status != "active":
            raise RuleError(
                409, "Company not active",
                f"placements are made only at active companies; this one is {self.status}",
                current_status=self.status,
            )
        if taken >= self.training_places:
            raise RuleError(
                409, "No free training place",
                f"all {self.training_places} training places at the company are taken",
                training_places=self.training_places, active_placements=taken,
            )


@dataclass(frozen=True)
class FlaggedPlacement:
    """An active placement flagged because its company was deregistered."""

    placement_id: UUID
    participant_id: UUID
    municipality_code: str
    assigned_to: str
    stage: str


def flag_reason(company: Company, deregistration_reason: str | None) -> str | None:
    """Why the active placements at the company are flagged now; None when they are not."""
    if company.status != "deregistered":
        return None
    return deregistration_reason or "deregistered"


def placements_flagged(company: Company, reason: str,
                       flagged: list[FlaggedPlacement]) -> Event:
    """The event that tells the assigned case workers (each named once)."""
    return Event(ev.PLACEMENTS_FLAGGED, company.id, company.version, ev.PlacementsFlaggedPayload(
        company_id=company.id, company_name=company.name, reason=reason,
        placements=[ev.FlaggedPlacement(
            placement_id=f.placement_id, participant_id=f.participant_id,
            municipality_code=f.municipality_code, assigned_to=f.assigned_to,
        ) for f in flagged],
        case_workers=sorted({f.assigned_to for f in flagged}),
    ))


# --- rules shared by the methods --------------------------------------------------------


def not_allowed(current: str, to: str, why: str | None = None) -> RuleError:
    allowed = list(TRANSITIONS[current])
    detail = why or (
        f"a case in {current} cannot move to {to}; allowed: "
        f"{', '.join(allowed) if allowed else 'none (the case is closed)'}"
    )
    return RuleError(409, "Transition not allowed", detail, current_stage=current,
                     allowed=allowed)


def invalid(field_name: str, message: str) -> RuleError:
    """A 422 naming one field."""
    return RuleError(422, "Validation failed", f"{field_name}: {message}",
                     errors=[{"field": field_name, "message": message}])


def check_transition(current: str, body: TransitionIn) -> None:
    """Refuse a move the stage machine does not have, or that lacks what it needs."""
    if body.to not in TRANSITIONS[current]:
        raise not_allowed(current, body.to)
    if body.to == "in_training":
        raise not_allowed(
            current, body.to,
            "a case moves to in_training when a placement starts: "
            "POST /participants/{id}/placements",
        )
    if body.to == "closed" and body.exit_reason is None and current != "employed":
        raise invalid("exit_reason", "required when closing")


def check_assignee(municipality_code: str, assigned_to: str,
                   assignee: KnownUser | None) -> None:
    """A case goes only to a case worker of its municipality, as casework knows them."""
    if assignee is None or assignee.sub != assigned_to \
            or not assignee.is_case_worker_of(municipality_code):
        raise invalid(
            "assigned_to",
            f"{assigned_to!r} is not a case worker of municipality {municipality_code} "
            "(casework knows a case worker once they have signed in to it)")


def check_placement_start(current: str) -> None:
    """A placement starts in assessment, beside another one in training, or after a job."""
    if current != "in_training" and "in_training" not in TRANSITIONS[current]:
        raise not_allowed(current, "in_training")


def follow_up_schedule(start: date, offsets: list[int]) -> list[tuple[int, date]]:
    """(offset, due date) for each follow-up of an employment that starts on `start`."""
    return [(o, start + timedelta(days=o)) for o in sorted(set(offsets))]


def left_for_work_or_studies(from_stage: str, exit_reason: str | None) -> str | None:
    """How a closed case counts in the Kolada-style share: `work`, `studies` or neither.

    A case closed while `employed` left for work (whatever reason was added); one
    closed with `exit_reason = studies` left for studies.
    """
    if from_stage == "employed":
        return "work"
    if exit_reason == "studies":
        return "studies"
    return None


# --- the aggregate ----------------------------------------------------------------------


@dataclass(frozen=True)
class SealedPersonalData:
    """The person's data as stored: a document sealed with their own data key, and that
    key wrapped by a master key. Opaque to the rules; `casework.crypto` opens it."""

    document: bytes
    key_id: str
    wrapped_key: bytes


@dataclass
class Participant:
    """One person referred by one municipality, and their case.

    Loaded with every placement, the latest employment and that employment's follow-ups:
    what the rules need. `version` counts the changes; each event carries the version
    it produced.
    """

    id: UUID
    municipality_code: str
    referral_source: str
    assigned_to: str
    stage: str
    exit_reason: str | None
    referred_at: datetime
    closed_at: datetime | None
    erased_at: datetime | None
    created_by: str
    version: int
    placements: list[Placement] = field(default_factory=list)
    employment: Employment | None = None
    follow_ups: list[FollowUp] = field(default_factory=list)
    """Of the latest employment."""
    sealed: SealedPersonalData | None = None
    """The personal data, when loaded for reading; None once erased."""

    events: list[Event] = field(default_factory=list, repr=False, compare=False)
    added: list[Row] = field(default_factory=list, repr=False, compare=False)
    changed: list[Row] = field(default_factory=list, repr=False, compare=False)

    # --- creation ----------------------------------------------------------------------

    @classmethod
    def refer(cls, municipality_code: str, referral_source: ReferralSource,
              assigned_to: str, by: str, at: datetime,
              assignee: KnownUser | None = None) -> Participant:
        """A person referred to the municipality's work training; the case starts `referred`,
        assigned to the referring case worker or to `assigned_to`, a case worker of the
        municipality (`assignee`: what casework knows of them)."""
        if assigned_to != by:
            check_assignee(municipality_code, assigned_to, assignee)
        pid = uuid4()
        p = cls(id=pid, municipality_code=municipality_code, referral_source=referral_source,
                assigned_to=assigned_to, stage="referred", exit_reason=None, referred_at=at,
                closed_at=None, erased_at=None, created_by=by, version=0)
        p.added.append(StageChange(participant_id=pid, from_stage=None, to_stage="referred",
                                   exit_reason=None, at=at, by=by))
        p._record(ev.PARTICIPANT_REFERRED, ev.ParticipantReferredPayload(
            participant_id=pid, municipality_code=municipality_code,
            referral_source=referral_source, assigned_to=assigned_to, stage="referred"))
        return p

    # --- what the rules read -----------------------------------------------------------

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    @property
    def active_placements(self) -> list[Placement]:
        return [pl for pl in self.placements if pl.status == "active"]

    def placement(self, placement_id: UUID) -> Placement | None:
        return next((pl for pl in self.placements if pl.id == placement_id), None)

    def take_events(self) -> list[Event]:
        """The events recorded since the last call, in order; the aggregate forgets them."""
        events, self.events = self.events, []
        return events

    # --- decisions ---------------------------------------------------------------------

    def transition(self, body: TransitionIn, by: str, at: datetime, offsets: list[int],
                   employer: Company | None = None) -> None:
        """Move the case one step; 409 naming the allowed moves otherwise.

        Moving on to a job or closing ends the active placements. A job starts its
        follow-ups at `offsets` days; `employer` is the company named as employer, when
        one is named and casework knows it.
        """
        check_transition(self.stage, body)
        if body.employment is not None and body.employment.employer_company_id is not None \
                and employer is None:
            raise invalid("employment.employer_company_id",
                          "no company with this id in the register")
        if body.to in ("employed", "closed"):
            reason: PlacementEndReason = "employed" if body.to == "employed" else "case_closed"
            for pl in self.active_placements:
                self._end(pl, reason, at.date())
        self._move(body.to, body.exit_reason, by, at)
        if body.employment is not None:
            e = body.employment
            self.employment = Employment(
                id=uuid4(), participant_id=self.id, form=e.form,
                employer_company_id=e.employer_company_id, employer_name=e.employer_name,
                start=e.start, created_at=at)
            self.added.append(self.employment)
            self.follow_ups = [
                FollowUp(id=uuid4(), participant_id=self.id, employment_id=self.employment.id,
                         offset_days=offset, due_date=due)
                for offset, due in follow_up_schedule(e.start, offsets)
            ]
            self.added.extend(self.follow_ups)
            self._record(ev.PARTICIPANT_EMPLOYED, ev.ParticipantEmployedPayload(
                participant_id=self.id, municipality_code=self.municipality_code,
                assigned_to=self.assigned_to, employment_form=e.form,
                employer_company_id=e.employer_company_id, start=e.start))

    def start_placement(self, body: PlacementIn, company: Company | None, taken: int,
                        by: str, at: datetime) -> Placement:
        """Place the participant at an active company with a free training place (`taken`
        is how many of its places active placements use). The case moves to in_training;
        a job the participant had ends, and its follow-ups not yet due are cancelled."""
        check_placement_start(self.stage)
        if company is None:
            raise invalid("company_id", "no company with this id in the register")
        company.take_place(taken)
        placement = Placement(
            id=uuid4(), participant_id=self.id, company_id=company.id,
            company_name=company.name, kind=body.kind, start=body.start,
            planned_end=body.planned_end, hours_per_week=body.hours_per_week, status="active",
            created_by=by, created_at=at)
        self.placements.append(placement)
        self.added.append(placement)
        self._record(ev.PLACEMENT_STARTED, ev.PlacementStartedPayload(
            placement_id=placement.id, participant_id=self.id, company_id=company.id,
            municipality_code=self.municipality_code, assigned_to=self.assigned_to,
            kind=body.kind, start=body.start, planned_end=body.planned_end,
            hours_per_week=body.hours_per_week))
        if self.stage != "in_training":
            if self.stage == "employed":
                self._end_employment(body.start, at)
            self._move("in_training", None, by, at)
        return placement

    def end_placement(self, placement_id: UUID, reason: PlacementEndReason, end: date | None,
                      at: datetime) -> Placement:
        """End a running placement (today when `end` is left out)."""
        pl = self.placement(placement_id)
        if pl is None:
            raise RuleError(404, "Not found", "placement not found")
        if pl.status != "active":
            raise RuleError(409, "Placement already ended",
                            f"the placement ended on {pl.ended_on}", current_status=pl.status)
        ended_on = end or at.date()
        if ended_on < pl.start:
            raise invalid("end", "cannot be before the placement's start")
        self._end(pl, reason, ended_on)
        return pl

    def record_follow_up(self, offset_days: int | None, still_employed: bool, by: str,
                         at: datetime, offsets: list[int]) -> FollowUp:
        """Record whether the participant is still employed at one follow-up of the latest
        employment: the one at `offset_days`, or the earliest open one."""
        if offset_days is not None:
            fu = next((f for f in self.follow_ups if f.offset_days == offset_days), None)
        else:
            fu = min((f for f in self.follow_ups if f.is_open),
                     key=lambda f: f.offset_days, default=None)
        if fu is None:
            which = f"at {offset_days} days " if offset_days else ""
            raise RuleError(409, "No follow-up to record",
                            f"the case has no open follow-up {which}of its latest employment",
                            offsets=offsets)
        if not fu.is_open:
            state = "recorded" if fu.recorded_at is not None else "cancelled"
            raise RuleError(409, f"Follow-up {state}",
                            f"the follow-up at {fu.offset_days} days is already {state}")
        fu.recorded_at, fu.recorded_by, fu.still_employed = at, by, still_employed
        self.changed.append(fu)
        self._record(ev.FOLLOW_UP_RECORDED, ev.FollowUpRecordedPayload(
            participant_id=self.id, municipality_code=self.municipality_code,
            offset_days=fu.offset_days, still_employed=still_employed))
        return fu

    def announce_follow_up(self, follow_up_id: UUID, at: datetime) -> None:
        """The follow-up has fallen due: tell the assigned case worker, once."""
        fu = next((f for f in self.follow_ups if f.id == follow_up_id), None)
        if fu is None or fu.due_notified_at is not None or not fu.is_open:
            return
        assert self.employment is not None
        fu.due_notified_at = at
        self.changed.append(fu)
        self._record(ev.FOLLOW_UP_DUE, ev.FollowUpDuePayload(
            participant_id=self.id, municipality_code=self.municipality_code,
            assigned_to=self.assigned_to, offset_days=fu.offset_days, due_date=fu.due_date,
            employment_start=self.employment.start))

    def add_note(self, author: str, confidential: bool, at: datetime) -> NoteRef:
        """A note on the case; the caller seals its text with the participant's key and
        stores the two together."""
        if self.erased:
            raise RuleError(409, "Participant erased", "an erased participant takes no notes")
        return NoteRef(id=uuid4(), participant_id=self.id, author=author,
                       confidential=confidential, created_at=at)

    def correct(self, *, by: str, at: datetime, referral_source: ReferralSource | None = None,
                assigned_to: str | None = None, assignee: KnownUser | None = None,
                personal_changed: bool = False) -> bool:
        """Correct the case's details or hand it to another case worker; False when nothing
        changes. `assignee` is what casework knows of `assigned_to`: they must be a case
        worker of the case's municipality. The version moves with every change, published
        or not, so a correction made on a stale copy is caught."""
        if self.erased:
            raise RuleError(409, "Participant erased", "an erased participant is not changed")
        changed = personal_changed
        if referral_source is not None and referral_source != self.referral_source:
            self.referral_source, changed = referral_source, True
        version = self.version
        if assigned_to is not None and assigned_to != self.assigned_to:
            check_assignee(self.municipality_code, assigned_to, assignee)
            self.added.append(Reassignment(participant_id=self.id,
                                           from_assigned_to=self.assigned_to,
                                           assigned_to=assigned_to, at=at, by=by))
            self._record(ev.PARTICIPANT_REASSIGNED, ev.ParticipantReassignedPayload(
                participant_id=self.id, municipality_code=self.municipality_code,
                from_assigned_to=self.assigned_to, assigned_to=assigned_to))
            self.assigned_to, changed = assigned_to, True
        if changed and self.version == version:
            self.version += 1
        return changed

    @property
    def reassigned(self) -> bool:
        """Whether a reassignment is among the changes not yet saved."""
        return any(isinstance(row, Reassignment) for row in self.added)

    def erase(self, at: datetime) -> bool:
        """Erase the person's data for good; only a closed case. False when already erased."""
        if self.erased:
            return False
        if self.stage != "closed":
            raise RuleError(
                409, "Case still open",
                f"close the case before erasing the participant; it is {self.stage}",
                current_stage=self.stage, allowed=["closed"],
            )
        self.erased_at, self.sealed = at, None
        for fu in self.follow_ups:
            if fu.is_open and fu.due_notified_at is None:
                fu.cancelled_at = at
                self.changed.append(fu)
        self._record(ev.PARTICIPANT_ERASED, ev.ParticipantErasedPayload(
            participant_id=self.id, municipality_code=self.municipality_code))
        return True

    # --- steps -------------------------------------------------------------------------

    def _record(self, event_type: str, payload: BaseModel) -> None:
        self.version += 1
        self.events.append(Event(event_type, self.id, self.version, payload))

    def _move(self, to: str, exit_reason: str | None, by: str, at: datetime) -> None:
        self.added.append(StageChange(participant_id=self.id, from_stage=self.stage,
                                      to_stage=to, exit_reason=exit_reason, at=at, by=by))
        self._record(ev.PARTICIPANT_STAGE_CHANGED, ev.StageChangedPayload(
            participant_id=self.id, municipality_code=self.municipality_code,
            assigned_to=self.assigned_to, from_stage=self.stage, to_stage=to,
            exit_reason=exit_reason))
        self.stage, self.exit_reason = to, exit_reason
        self.closed_at = at if to == "closed" else None

    def _end(self, pl: Placement, reason: PlacementEndReason, on: date) -> None:
        pl.status, pl.ended_on, pl.end_reason = "ended", on, reason
        pl.version += 1
        self.changed.append(pl)
        self._record(ev.PLACEMENT_ENDED, ev.PlacementEndedPayload(
            placement_id=pl.id, participant_id=self.id, company_id=pl.company_id,
            municipality_code=self.municipality_code, assigned_to=self.assigned_to,
            reason=reason, end=on))

    def _end_employment(self, on: date, at: datetime) -> None:
        """The job ended early: end it, and cancel its follow-ups not yet due."""
        if self.employment is not None and self.employment.ended_on is None:
            self.employment.ended_on = on
            self.changed.append(self.employment)
        for fu in self.follow_ups:
            if fu.is_open and fu.due_notified_at is None:
                fu.cancelled_at = at
                self.changed.append(fu)
