"""Outcome statistics from counts the store gathers. Pure, no I/O; counts only, never a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, Field

from casework.domain import left_for_work_or_studies
from casework.inputs import STAGES


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


@dataclass(frozen=True)
class Exit:
    """Cases closed from one stage with one reason, and how many."""

    from_stage: str
    exit_reason: str | None
    n: int


@dataclass(frozen=True)
class FollowUpCount:
    offset_days: int
    due: int
    recorded: int
    still_employed: int


@dataclass(frozen=True)
class OutcomeCounts:
    """What the store counts for one municipality (or all) and one period."""

    by_stage: dict[str, int]
    """Cases referred in the period, by the stage each is in now."""
    employed_by_form: dict[str, int]
    """Employments that started in the period, by form."""
    exits: list[Exit]
    """Cases closed in the period."""
    median_days_to_employment: float | None
    """Over participants whose first employment started in the period."""
    follow_ups: list[FollowUpCount]
    """Per offset, follow-ups due in the period that were not cancelled."""


def outcomes(counts: OutcomeCounts, municipality: str | None, start: date | None,
             end: date | None) -> Outcomes:
    """The outcome figures as municipalities report them.

    - `exits_by_reason`: a case closed from `employed` without a reason counts as `employment`.
    - `share_left_for_work_or_studies` (as municipalities report it to Kolada): (cases closed
      while `employed` + cases closed with `exit_reason = studies`) / all cases closed in the
      period; null when none closed.
    """
    by_stage: dict[str, int] = dict.fromkeys(STAGES, 0)
    by_stage.update(counts.by_stage)
    exits_by_reason: dict[str, int] = {}
    work = studies = left = 0
    for x in counts.exits:
        key = x.exit_reason or ("employment" if x.from_stage == "employed" else "unknown")
        exits_by_reason[key] = exits_by_reason.get(key, 0) + x.n
        left += x.n
        went = left_for_work_or_studies(x.from_stage, x.exit_reason)
        work += x.n if went == "work" else 0
        studies += x.n if went == "studies" else 0
    return Outcomes(
        municipality_code=municipality, period_from=start, period_to=end,
        referred=sum(by_stage.values()), by_stage=by_stage,
        employed_by_form=dict(counts.employed_by_form),
        exits_by_reason=exits_by_reason, left_programme=left, left_for_work=work,
        left_for_studies=studies,
        share_left_for_work_or_studies=round((work + studies) / left, 4) if left else None,
        median_days_referral_to_employment=counts.median_days_to_employment,
        follow_ups=[FollowUpOutcome(
            offset_days=f.offset_days, due=f.due, recorded=f.recorded,
            still_employed=f.still_employed,
            share_still_employed=round(f.still_employed / f.recorded, 4) if f.recorded else None,
        ) for f in counts.follow_ups],
    )
