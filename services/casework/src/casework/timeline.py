"""A case's timeline: everything that happened on it, oldest first. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from casework.domain import (
    Employment,
    FollowUp,
    NoteRef,
    Placement,
    Reassignment,
    StageChange,
)


class TimelineItem(BaseModel):
    """One thing that happened on the case."""

    at: datetime
    kind: str = Field(examples=["stage_changed", "placement_started", "note"])
    by: str | None
    details: dict[str, Any]


@dataclass
class CaseHistory:
    """Everything recorded about one case, as the store loads it."""

    assigned_to: str
    stage_changes: list[StageChange]
    placements: list[Placement]
    employments: list[Employment]
    follow_ups: list[FollowUp]
    notes: list[NoteRef]
    reassignments: list[Reassignment]


def _at(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def timeline(history: CaseHistory, note_texts: dict[UUID, str | None]) -> list[TimelineItem]:
    """The case's history as one list, oldest first.

    `note_texts` holds the text of each note the reader may read (see
    `NoteRef.readable_by`); any other note is shown without its text.
    """
    items = [TimelineItem(at=s.at, kind="stage_changed", by=s.by, details={
        "from_stage": s.from_stage, "to_stage": s.to_stage, "exit_reason": s.exit_reason})
        for s in history.stage_changes]
    for pl in history.placements:
        items.append(TimelineItem(at=_at(pl.start), kind="placement_started", by=None, details={
            "placement_id": str(pl.id), "company_id": str(pl.company_id),
            "company_name": pl.company_name, "kind": pl.kind}))
        if pl.flagged_at is not None:
            items.append(TimelineItem(at=pl.flagged_at, kind="placement_flagged", by=None,
                                      details={"placement_id": str(pl.id),
                                               "reason": pl.flag_reason}))
        if pl.ended_on is not None:
            items.append(TimelineItem(at=_at(pl.ended_on), kind="placement_ended", by=None,
                                      details={"placement_id": str(pl.id),
                                               "reason": pl.end_reason}))
    for e in history.employments:
        items.append(TimelineItem(at=_at(e.start), kind="employment_started", by=None, details={
            "employment_id": str(e.id), "form": e.form,
            "employer_company_id": str(e.employer_company_id) if e.employer_company_id else None,
            "employer_name": e.employer_name}))
    for f in history.follow_ups:
        if f.recorded_at is not None:
            items.append(TimelineItem(at=f.recorded_at, kind="follow_up_recorded",
                                      by=f.recorded_by, details={
                                          "offset_days": f.offset_days,
                                          "still_employed": f.still_employed}))
        elif f.due_notified_at is not None:
            items.append(TimelineItem(at=_at(f.due_date), kind="follow_up_due", by=None,
                                      details={"offset_days": f.offset_days}))
    for r in history.reassignments:
        items.append(TimelineItem(at=r.at, kind="reassigned", by=r.by, details={
            "from_assigned_to": r.from_assigned_to, "assigned_to": r.assigned_to}))
    for n in history.notes:
        items.append(TimelineItem(at=n.created_at, kind="note", by=n.author, details={
            "note_id": str(n.id), "confidential": n.confidential,
            "text": note_texts.get(n.id)}))
    items.sort(key=lambda i: i.at)
    return items
