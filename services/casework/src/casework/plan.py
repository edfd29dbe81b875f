"""The individual plan (genomförandeplan) of a case: goals, planned activities, the next
review and the reviews held. Pure, no I/O.

One plan per case. It is versioned: every change (a rewrite, a review that sets the next
review date) makes a new version, and a change must name the version it was made on.
Goals and activities can say a lot about a person, so the service seals them (and review
comments) with the participant's data key and they go with an erasure; what the rules and
the review sweep need stays readable: the version, the dates, the review outcomes and
whether the participant took part in writing the plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Literal, Self
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from asf_contracts import casework as ev
from asf_kit.fields import Input, refuse_control_characters
from asf_kit.rules import RuleError
from casework.domain import Event, Participant
from casework.inputs import CaseDate
from casework.timeline import TimelineItem

GoalStatus = Literal["open", "reached", "dropped"]
ReviewOutcome = Literal["continue", "revise", "end"]
"""What a review decided: the plan goes on as it is, it is to be revised (a rewrite
follows), or the planned work ends (no next review)."""
PlanChange = Literal["written", "reviewed"]

MAX_GOALS = 50
MAX_ACTIVITIES = 50


def _text(value: str) -> str:
    """Free text: newlines (a CRLF is one) and tabs, but no other control characters."""
    return refuse_control_characters(value)


PlanText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_text)]


# --- what callers send ------------------------------------------------------------------


class GoalIn(Input):
    id: UUID | None = Field(
        default=None, description="An existing goal's id to keep it; left out for a new goal")
    text: PlanText
    target_date: CaseDate
    status: GoalStatus = "open"


class ActivityIn(Input):
    """A planned activity (work training tasks, a course, meetings …), optionally dated."""

    text: PlanText
    start: CaseDate | None = None
    end: CaseDate | None = None

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end cannot be before start")
        return self


class PlanIn(Input):
    """The whole plan; `PUT` replaces it."""

    goals: list[GoalIn] = Field(default_factory=list, max_length=MAX_GOALS)
    activities: list[ActivityIn] = Field(default_factory=list, max_length=MAX_ACTIVITIES)
    next_review_date: CaseDate | None = Field(
        default=None, description="When the plan is next reviewed; a new date may not be past")
    participant_involved: bool = Field(
        description="Whether the participant took part in writing the plan")
    version: int | None = Field(
        default=None, description="The version read, if not sent as If-Match (0: no plan yet)")


class ReviewIn(Input):
    held_on: CaseDate | None = Field(
        default=None, alias="date", description="The day the review was held; today by default")
    outcome: ReviewOutcome
    comment: PlanText | None = Field(default=None, description="Sealed like the plan")
    next_review_date: CaseDate | None = Field(
        default=None, description="Required unless the outcome is `end`")
    version: int | None = Field(default=None, description="The version read, if not If-Match")


# --- the plan ---------------------------------------------------------------------------


class Goal(BaseModel):
    id: UUID
    text: str
    target_date: dt.date
    status: GoalStatus


class Activity(BaseModel):
    text: str
    start: dt.date | None
    end: dt.date | None


class PlanContent(BaseModel):
    """The part of the plan that is sealed with the participant's key."""

    goals: list[Goal]
    activities: list[Activity]


class Review(BaseModel):
    """A review of the plan: when, what it decided, and the version it produced."""

    model_config = ConfigDict(populate_by_name=True)

    id: UUID
    plan_id: UUID
    held_on: dt.date = Field(alias="date")
    outcome: ReviewOutcome
    comment: str | None = Field(description="Null when none was written, or once erased")
    next_review_date: dt.date | None
    plan_version: int = Field(description="The version of the plan the review produced")
    recorded_by: str
    recorded_at: dt.datetime


@dataclass(frozen=True)
class PlanVersion:
    """One version of the plan as saved: its content is sealed by the service."""

    plan_id: UUID
    version: int
    change: PlanChange
    content: PlanContent
    next_review_date: dt.date | None
    participant_involved: bool
    at: dt.datetime
    by: str


@dataclass
class Plan:
    """The plan of one case. `content` is None when it was not opened (or once erased)."""

    id: UUID
    participant_id: UUID
    version: int
    next_review_date: dt.date | None
    participant_involved: bool
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    content: PlanContent | None
    reviews: list[Review] = field(default_factory=list)

    added: list[PlanVersion | Review] = field(default_factory=list, repr=False)
    events: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def write_first(cls, case: Participant, body: PlanIn, by: str, at: dt.datetime,
                    today: dt.date) -> Plan:
        """The first plan of a case (version 1)."""
        _check_open(case)
        errors = [(f"goals[{i}].id", "no goal with this id in the plan (there is no plan yet)")
                  for i, g in enumerate(body.goals) if g.id is not None]
        errors += _review_date_errors(body.next_review_date, None, today)
        if errors:
            raise _invalid(errors)
        plan = cls(id=uuid4(), participant_id=case.id, version=0, next_review_date=None,
                   participant_involved=body.participant_involved, created_at=at,
                   created_by=by, updated_at=at, updated_by=by, content=None)
        plan._apply(body, _goals(body), by, at)
        return plan

    def rewrite(self, case: Participant, body: PlanIn, by: str, at: dt.datetime,
                today: dt.date) -> bool:
        """Replace goals, activities, the next review date and the participant's part.
        Goals sent with their id keep it. False (and no new version) when nothing changes."""
        _check_open(case)
        current = _readable(self)
        errors = _goal_id_errors(body, current)
        errors += _review_date_errors(body.next_review_date, self.next_review_date, today)
        if errors:
            raise _invalid(errors)
        goals = _goals(body)
        content = PlanContent(goals=goals, activities=_activities(body))
        if (content, body.next_review_date, body.participant_involved) == (
                current, self.next_review_date, self.participant_involved):
            return False
        self._apply(body, goals, by, at)
        return True

    def review(self, case: Participant, body: ReviewIn, by: str, at: dt.datetime,
               today: dt.date) -> Review:
        """Record a review held on `body.held_on` (today by default); it sets the next review
        date (none when the outcome is `end`) and so makes a new version."""
        _check_open(case)
        _readable(self)
        held_on = body.held_on or today
        errors: list[tuple[str, str]] = []
        if held_on > today:
            errors.append(("date", "cannot be in the future"))
        elif held_on < self.created_at.date():
            errors.append(("date", f"cannot be before the plan was written "
                                   f"({self.created_at.date().isoformat()})"))
        if body.outcome == "end" and body.next_review_date is not None:
            errors.append(("next_review_date", "is not given when the outcome is end"))
        elif body.outcome != "end" and body.next_review_date is None:
            errors.append(("next_review_date", "is required unless the outcome is end"))
        elif body.next_review_date is not None:
            if body.next_review_date <= held_on:
                errors.append(("next_review_date", "must be after the review's date"))
            elif body.next_review_date < today:
                errors.append(("next_review_date", "cannot be in the past"))
        if errors:
            raise _invalid(errors)
        self.version += 1
        self.next_review_date = body.next_review_date
        self.updated_at, self.updated_by = at, by
        review = Review(id=uuid4(), plan_id=self.id, held_on=held_on, outcome=body.outcome,
                        comment=body.comment, next_review_date=body.next_review_date,
                        plan_version=self.version, recorded_by=by, recorded_at=at)
        self.reviews.append(review)
        self.added.append(self._version_row("reviewed", at, by))
        self.added.append(review)
        return review

    def review_due(self, case: Participant) -> Event | None:
        """The event that tells the assigned case worker the review date has come; None when
        there is nothing to review (no date, or the case is closed or erased). The service
        announces each review date once."""
        if self.next_review_date is None or case.stage == "closed" or case.erased:
            return None
        return Event(ev.PLAN_REVIEW_DUE, self.id, self.version, ev.PlanReviewDuePayload(
            participant_id=case.id, municipality_code=case.municipality_code,
            assigned_to=case.assigned_to, review_date=self.next_review_date,
            plan_version=self.version))

    def take_added(self) -> list[PlanVersion | Review]:
        added, self.added = self.added, []
        return added

    def _apply(self, body: PlanIn, goals: list[Goal], by: str, at: dt.datetime) -> None:
        self.content = PlanContent(goals=goals, activities=_activities(body))
        self.next_review_date = body.next_review_date
        self.participant_involved = body.participant_involved
        self.version += 1
        self.updated_at, self.updated_by = at, by
        self.added.append(self._version_row("written", at, by))

    def _version_row(self, change: PlanChange, at: dt.datetime, by: str) -> PlanVersion:
        assert self.content is not None
        return PlanVersion(plan_id=self.id, version=self.version, change=change,
                           content=self.content, next_review_date=self.next_review_date,
                           participant_involved=self.participant_involved, at=at, by=by)


PLAN = "plan"
PLAN_REVIEW = "plan_review"
"""What the plan's content and a review's comment are sealed as (with the participant)."""


def plan_context(plan_id: UUID, version: int) -> bytes:
    """A plan version's seal is bound to this plan and this version: it cannot be moved to
    another plan, nor an old version passed off as the current one."""
    return plan_id.bytes + version.to_bytes(4, "big")


def review_context(plan_id: UUID, review_id: UUID) -> bytes:
    return plan_id.bytes + review_id.bytes


# --- rules ------------------------------------------------------------------------------


def _invalid(errors: list[tuple[str, str]]) -> RuleError:
    """A 422 naming every bad field."""
    return RuleError(422, "Validation failed", "; ".join(f"{f}: {m}" for f, m in errors),
                     errors=[{"field": f, "message": m} for f, m in errors])


def _check_open(case: Participant) -> None:
    if case.erased:
        raise RuleError(409, "Participant erased", "an erased participant's plan is not changed")
    if case.stage == "closed":
        raise RuleError(409, "Case closed", "the plan of a closed case is not changed",
                        current_stage=case.stage)


def _readable(plan: Plan) -> PlanContent:
    """The plan's content, opened; 409 when it did not open (changed outside casework)."""
    if plan.content is None:
        raise RuleError(409, "Plan unreadable",
                        "the plan's sealed text does not open (changed outside casework); "
                        "it cannot be changed")
    return plan.content


def _review_date_errors(new: dt.date | None, current: dt.date | None,
                        today: dt.date) -> list[tuple[str, str]]:
    """A review date that is set or moved cannot be in the past; one left as it was may be
    (the review is then due)."""
    if new is not None and new != current and new < today:
        return [("next_review_date", "cannot be in the past")]
    return []


def _goal_id_errors(body: PlanIn, current: PlanContent) -> list[tuple[str, str]]:
    known = {g.id for g in current.goals}
    errors, seen = [], set()
    for i, g in enumerate(body.goals):
        if g.id is None:
            continue
        if g.id not in known:
            errors.append((f"goals[{i}].id", "no goal with this id in the plan"))
        elif g.id in seen:
            errors.append((f"goals[{i}].id", "the same goal is given twice"))
        seen.add(g.id)
    return errors


def _goals(body: PlanIn) -> list[Goal]:
    return [Goal(id=g.id or uuid4(), text=g.text, target_date=g.target_date, status=g.status)
            for g in body.goals]


def _activities(body: PlanIn) -> list[Activity]:
    return [Activity(text=a.text, start=a.start, end=a.end) for a in body.activities]


# --- what callers get -------------------------------------------------------------------


class PlanView(BaseModel):
    """The plan as a case worker reads it."""

    model_config = ConfigDict(populate_by_name=True)

    id: UUID
    participant_id: UUID
    version: int
    goals: list[Goal] | None = Field(description="Null once the participant is erased")
    activities: list[Activity] | None = Field(description="Null once the participant is erased")
    next_review_date: dt.date | None
    review_due: bool = Field(description="The next review date has come")
    participant_involved: bool
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    reviews: list[Review] = Field(description="Oldest first")

    @classmethod
    def of(cls, plan: Plan, today: dt.date) -> PlanView:
        content = plan.content
        return cls(
            id=plan.id, participant_id=plan.participant_id, version=plan.version,
            goals=content.goals if content else None,
            activities=content.activities if content else None,
            next_review_date=plan.next_review_date,
            review_due=plan.next_review_date is not None and plan.next_review_date <= today,
            participant_involved=plan.participant_involved, created_at=plan.created_at,
            created_by=plan.created_by, updated_at=plan.updated_at, updated_by=plan.updated_by,
            reviews=plan.reviews)


class PlanDue(BaseModel):
    """A plan in the case worker's worklist: ids and dates only."""

    participant_id: UUID
    plan_id: UUID
    assigned_to: str
    version: int
    next_review_date: dt.date
    review_due: bool
    announced: bool = Field(description="casework.plan.review_due.v1 went out for this date")


@dataclass(frozen=True)
class PlanHistory:
    """What happened to a plan, without its sealed text: for the case's timeline."""

    versions: list[tuple[int, PlanChange, dt.datetime, str]]
    reviews: list[Review]
    notices: list[tuple[dt.date, dt.datetime]]


def plan_timeline(history: PlanHistory) -> list[TimelineItem]:
    """The plan's part of the case's timeline: each rewrite, review and review falling due."""
    items = [TimelineItem(at=at, kind="plan_written", by=by, details={"version": version})
             for version, change, at, by in history.versions if change == "written"]
    items += [TimelineItem(at=r.recorded_at, kind="plan_reviewed", by=r.recorded_by, details={
        "date": r.held_on.isoformat(), "outcome": r.outcome, "version": r.plan_version,
        "next_review_date": r.next_review_date.isoformat() if r.next_review_date else None})
        for r in history.reviews]
    items += [TimelineItem(at=at, kind="plan_review_due", by=None,
                           details={"review_date": day.isoformat()})
              for day, at in history.notices]
    return items
