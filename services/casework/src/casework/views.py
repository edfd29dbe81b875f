"""What casework returns over HTTP. Only `Participant` carries personal data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class Employment(BaseModel):
    id: UUID
    form: str
    employer_company_id: UUID | None
    employer_name: str | None
    start: date
    ended_on: date | None


class Case(BaseModel):
    """A participant's case without personal data: what lists and changes return."""

    id: UUID
    municipality_code: str
    referral_source: str
    assigned_to: str
    stage: str
    exit_reason: str | None
    referred_at: datetime
    closed_at: datetime | None
    erased_at: datetime | None
    employment: Employment | None = Field(description="The current or last employment")
    active_placement_ids: list[UUID]
    version: int = Field(description="Grows with every change; the number of events the case "
                         "has published, each carrying its own version")


class Participant(Case):
    """The case with the person's data; returned by GET /participants/{id} and on create.

    The personal fields are null once the participant has been erased.
    """

    given_name: str | None
    family_name: str | None
    personal_identity_number: str | None
    phone: str | None
    email: str | None


class Placement(BaseModel):
    id: UUID
    participant_id: UUID
    company_id: UUID
    company_name: str | None
    kind: str
    start: date
    planned_end: date | None
    hours_per_week: float | None
    status: str
    ended_on: date | None
    end_reason: str | None
    flagged_at: datetime | None
    flag_reason: str | None
    version: int


class FollowUp(BaseModel):
    id: UUID
    participant_id: UUID
    employment_id: UUID
    offset_days: int
    due_date: date
    due_notified_at: datetime | None
    cancelled_at: datetime | None
    recorded_at: datetime | None
    still_employed: bool | None


class Note(BaseModel):
    id: UUID
    participant_id: UUID
    author: str
    confidential: bool
    text: str | None = Field(description="Null for a confidential note the caller may not read")
    created_at: datetime


class TimelineItem(BaseModel):
    """One thing that happened on the case, oldest first."""

    at: datetime
    kind: str = Field(examples=["stage_changed", "placement_started", "note"])
    by: str | None
    details: dict[str, Any]


class AccessLogEntry(BaseModel):
    id: int
    participant_id: UUID
    actor: str
    action: str
    at: datetime


class StageCount(BaseModel):
    stage: str
    count: int


class FollowUpOutcome(BaseModel):
    offset_days: int
    due: int = Field(description="Follow-ups due in the period (not cancelled)")
    recorded: int
    still_employed: int
    share_still_employed: float | None = Field(description="still_employed / recorded")


class Outcomes(BaseModel):
    """Aggregates only: counts of cases, never a person."""

    municipality_code: str | None
    period_from: date | None
    period_to: date | None
    referred: int
    by_stage: dict[str, int]
    employed_by_form: dict[str, int]
    exits_by_reason: dict[str, int]
    left_programme: int
    left_for_work: int
    left_for_studies: int
    share_left_for_work_or_studies: float | None
    median_days_referral_to_employment: float | None
    follow_ups: list[FollowUpOutcome]
