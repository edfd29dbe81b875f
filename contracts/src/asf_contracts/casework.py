"""Events casework publishes. Participants appear only as random UUIDs: no names,
identity numbers or contact details ever travel in these payloads."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

PRODUCER = "casework"

PARTICIPANT_REFERRED = "casework.participant.referred"
PARTICIPANT_STAGE_CHANGED = "casework.participant.stage_changed"
PARTICIPANT_EMPLOYED = "casework.participant.employed"
PARTICIPANT_ERASED = "casework.participant.erased"
PARTICIPANT_REASSIGNED = "casework.participant.reassigned"
PLACEMENT_STARTED = "casework.placement.started"
PLACEMENT_ENDED = "casework.placement.ended"
PLACEMENTS_FLAGGED = "casework.placements.flagged"
FOLLOW_UP_DUE = "casework.follow_up.due"
FOLLOW_UP_RECORDED = "casework.follow_up.recorded"
PLAN_REVIEW_DUE = "casework.plan.review_due"
STATEMENT_ISSUED = "casework.statement.issued"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ParticipantReferredPayload(_Payload):
    participant_id: UUID
    municipality_code: str
    referral_source: str
    assigned_to: str
    stage: str


class StageChangedPayload(_Payload):
    participant_id: UUID
    municipality_code: str
    assigned_to: str
    from_stage: str
    to_stage: str
    exit_reason: str | None = None


class ParticipantEmployedPayload(_Payload):
    participant_id: UUID
    municipality_code: str
    assigned_to: str
    employment_form: str
    employer_company_id: UUID | None = None
    start: date


class ParticipantErasedPayload(_Payload):
    participant_id: UUID
    municipality_code: str


class PlacementStartedPayload(_Payload):
    placement_id: UUID
    participant_id: UUID
    company_id: UUID
    municipality_code: str
    assigned_to: str
    kind: str
    start: date
    planned_end: date | None = None
    hours_per_week: float | None = None


class PlacementEndedPayload(_Payload):
    placement_id: UUID
    participant_id: UUID
    company_id: UUID
    municipality_code: str
    assigned_to: str
    reason: str
    end: date


class FlaggedPlacement(_Payload):
    placement_id: UUID
    participant_id: UUID
    municipality_code: str
    assigned_to: str


class PlacementsFlaggedPayload(_Payload):
    """A company with active placements was deregistered; aggregate is the company."""

    company_id: UUID
    company_name: str
    reason: str | None = None
    placements: list[FlaggedPlacement]
    case_workers: list[str]
    """The `sub` of each assigned case worker, once each."""


class FollowUpDuePayload(_Payload):
    participant_id: UUID
    municipality_code: str
    assigned_to: str
    offset_days: int
    due_date: date
    employment_start: date


class FollowUpRecordedPayload(_Payload):
    participant_id: UUID
    municipality_code: str
    offset_days: int
    still_employed: bool


class ParticipantReassignedPayload(_Payload):
    """The case moved to another case worker of the same municipality (ids only)."""

    participant_id: UUID
    municipality_code: str
    from_assigned_to: str
    assigned_to: str


class PlanReviewDuePayload(_Payload):
    """The individual plan's (genomförandeplan) review date has come: once per date."""

    participant_id: UUID
    municipality_code: str
    assigned_to: str
    review_date: date
    plan_version: int


class StatementTotals(_Payload):
    placements: int
    days_present: int
    hours_present: float
    absence_days: dict[str, int]
    """Days absent by reason (`sick`, `leave`, `unexcused`, `other`)."""
    amount_sek: float


class StatementIssuedPayload(_Payload):
    """A company's monthly attendance statement for one municipality; no names."""

    statement_id: UUID
    company_id: UUID
    municipality_code: str
    month: str
    """`YYYY-MM`."""
    kind: Literal["original", "correction"]
    supersedes: UUID | None = None
    totals: StatementTotals


PAYLOADS: dict[tuple[str, int], type[BaseModel]] = {
    (PARTICIPANT_REFERRED, 1): ParticipantReferredPayload,
    (PARTICIPANT_STAGE_CHANGED, 1): StageChangedPayload,
    (PARTICIPANT_EMPLOYED, 1): ParticipantEmployedPayload,
    (PARTICIPANT_ERASED, 1): ParticipantErasedPayload,
    (PARTICIPANT_REASSIGNED, 1): ParticipantReassignedPayload,
    (PLACEMENT_STARTED, 1): PlacementStartedPayload,
    (PLACEMENT_ENDED, 1): PlacementEndedPayload,
    (PLACEMENTS_FLAGGED, 1): PlacementsFlaggedPayload,
    (FOLLOW_UP_DUE, 1): FollowUpDuePayload,
    (FOLLOW_UP_RECORDED, 1): FollowUpRecordedPayload,
    (PLAN_REVIEW_DUE, 1): PlanReviewDuePayload,
    (STATEMENT_ISSUED, 1): StatementIssuedPayload,
}
