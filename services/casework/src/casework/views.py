"""What casework returns over HTTP besides the domain's own parts (placements, follow-ups).
Only `ParticipantView` carries personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from casework.domain import Employment, FollowUp, FollowUpStatus, NoteRef, Participant, Placement
from casework.inputs import PERSONAL_FIELDS, ExitReason, ReferralSource, Stage


class Case(BaseModel):
    """A participant's case without personal data: what lists and changes return (the
    employer's name too is left out)."""

    id: UUID
    municipality_code: str
    referral_source: ReferralSource
    assigned_to: str
    stage: Stage
    exit_reason: ExitReason | None
    referred_at: datetime
    closed_at: datetime | None
    erased_at: datetime | None
    employment: Employment | None = Field(description="The current or last employment")
    active_placement_ids: list[UUID]
    version: int = Field(description="Grows with every change of the case; each event the "
                         "case publishes carries the version it produced")

    @classmethod
    def of(cls, p: Participant) -> Case:
        return cls(
            id=p.id, municipality_code=p.municipality_code, referral_source=p.referral_source,
            assigned_to=p.assigned_to, stage=p.stage, exit_reason=p.exit_reason,
            referred_at=p.referred_at, closed_at=p.closed_at, erased_at=p.erased_at,
            employment=p.employment.model_copy(update={"employer_name": None})
            if p.employment else None,
            active_placement_ids=[pl.id for pl in p.active_placements],
            version=p.version,
        )


class ParticipantView(Case):
    """The case with the person's data; returned by GET /participants/{id} and on create.

    The personal fields are null once the participant has been erased.
    """

    given_name: str | None
    family_name: str | None
    personal_identity_number: str | None
    phone: str | None
    email: str | None

    @classmethod
    def with_personal(cls, p: Participant, personal: dict[str, Any] | None,
                      employer_name: str | None = None) -> ParticipantView:
        fields = dict.fromkeys(PERSONAL_FIELDS)
        fields.update(personal or {})
        view = cls(**Case.of(p).model_dump(), **fields)
        if view.employment is not None:
            view.employment.employer_name = employer_name
        return view


class Note(NoteRef):
    text: str | None = Field(description="Null for a confidential note the caller may not read")


class AccessLogEntry(BaseModel):
    id: int
    participant_id: UUID
    actor: str
    action: str
    at: datetime


class FollowUpItem(FollowUp):
    """A follow-up on a worklist."""

    municipality_code: str
    assigned_to: str = Field(description="The case worker the case is assigned to")
    status: FollowUpStatus


class PlacementItem(Placement):
    """A placement on a worklist."""

    municipality_code: str
    assigned_to: str = Field(description="The case worker the case is assigned to")
