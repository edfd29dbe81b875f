"""Outcome statistics from counts the store gathers. Pure, no I/O; counts only, never a person.

Statistics never single anybody out. With `STATS_MIN_GROUP` = k (default 5):

- a count from 1 to k-1 is returned as null, and the response says `suppressed: true`;
  0 is shown (an empty group has nobody in it to single out);
- the median is given only for a group of at least k;
- periods are whole calendar months, so two periods differ by whole months at least;
- a count is also withheld when the same figure over a shorter period sharing the
  period's first or last month would be 1 to k-1. Otherwise two overlapping periods
  (January-April and January-March) would give the small count of the month between
  them by subtraction;
- a count over all municipalities is withheld when the municipalities whose own count
  is withheld add up to 1 to k-1, which the total minus the published ones would show.

Subtracting three or more periods or combining other figures can still narrow a group
down; the README says so.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from pydantic import BaseModel, Field

from asf_kit.rules import RuleError
from casework.attendance import AttendanceShare
from casework.domain import left_for_work_or_studies
from casework.inputs import STAGES


class FollowUpOutcome(BaseModel):
    offset_days: int
    due: int | None = Field(description="Follow-ups due in the period (not cancelled)")
    recorded: int | None
    still_employed: int | None
    share_still_employed: float | None = Field(description="still_employed / recorded")


class Outcomes(BaseModel):
    """Aggregates only: counts of cases, never a person. A null count is a group too small
    to show (`suppressed`)."""

    municipality_code: str | None
    period_from: date | None
    period_to: date | None
    referred: int | None
    by_stage: dict[str, int | None]
    employed_by_form: dict[str, int | None]
    exits_by_reason: dict[str, int | None]
    left_programme: int | None
    left_for_work: int | None
    left_for_studies: int | None
    share_left_for_work_or_studies: float | None
    median_days_referral_to_employment: float | None
    follow_ups: list[FollowUpOutcome]
    attendance: list[AttendanceShare] = Field(
        default_factory=list,
        description="The share of planned hours attended, per kind of placement: planned hours "
        "are the weekly hours spread over the working days the placement ran in the period "
        "(up to today); attended, the hours the host company reported present. Withheld "
        "(null) by the same rule as every count")
    suppressed: bool = Field(description="Some count was withheld to single nobody out")
    min_group: int = Field(description="The smallest group shown (STATS_MIN_GROUP)")


# --- what the store counts --------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """How many, in one municipality and one calendar month (`month` is its first day)."""

    municipality_code: str
    month: date
    n: int


@dataclass(frozen=True)
class StageCount(Count):
    stage: str
    """The stage the cases referred that month are in now."""


@dataclass(frozen=True)
class FormCount(Count):
    form: str


@dataclass(frozen=True)
class ExitCount(Count):
    from_stage: str
    exit_reason: str | None


@dataclass(frozen=True)
class FollowUpCount(Count):
    """Follow-ups due that month (not cancelled): `n` of them due by today."""

    offset_days: int
    recorded: int
    still_employed: int


@dataclass(frozen=True)
class OutcomeCounts:
    """What the store counts for one municipality (or all) and one period."""

    referrals: list[StageCount]
    """Cases referred, by month of referral and current stage."""
    employments: list[FormCount]
    """Employments that started, by month and form."""
    exits: list[ExitCount]
    """Cases closed, by month."""
    first_employments: list[Count]
    """Participants whose first employment started that month: the median's group."""
    median_days_to_employment: float | None
    """Days from referral to the first employment, over the whole period."""
    follow_ups: list[FollowUpCount]


# --- the period -------------------------------------------------------------------------


FIRST_DAY_PATTERN = r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-01$"
_LEAP = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][48]|[13579][26]|[2468]0)00)"
_COMMON = r"([0-9]{2}([02468][1235679]|[13579][01345789])|([02468][1235679]|[13579][01345789])00)"
LAST_DAY_PATTERN = (rf"^(?!0000)([0-9]{{4}}-(01|03|05|07|08|10|12)-31|[0-9]{{4}}-(04|06|09|11)-30"
                    rf"|{_LEAP}-02-29|{_COMMON}-02-28)$")
"""`check_period`'s rules for the OpenAPI document: a first day; a last day (Gregorian leap
years: every fourth, not a century unless it divides by 400)."""


def check_period(start: date | None, end: date | None) -> None:
    """Whole calendar months only: `from` a first day, `to` a last day (422 otherwise)."""
    errors = []
    if start is not None and start.day != 1:
        errors.append({"field": "from", "message": "must be the first day of a month"})
    if end is not None and end.day != calendar.monthrange(end.year, end.month)[1]:
        errors.append({"field": "to", "message": "must be the last day of a month"})
    if start is not None and end is not None and end < start:
        errors.append({"field": "to", "message": "cannot be before from"})
    if errors:
        raise RuleError(422, "Validation failed",
                        "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                        errors=errors)


# --- suppression ------------------------------------------------------------------------

Series = dict[date, int]
"""A figure month by month."""


def _small(n: int, k: int) -> bool:
    return 0 < n < k


def _withheld(series: Series, k: int) -> bool:
    """The figure's total is small, or would be for a shorter period sharing its first or
    last month (what a second, overlapping period would give away by subtraction)."""
    values = [n for _, n in sorted(series.items()) if n]
    if _small(sum(values), k):
        return True
    for ordered in (values, values[::-1]):
        running = 0
        for n in ordered[:-1]:
            running += n
            if _small(running, k):
                return True
    return False


@dataclass
class _Publisher:
    k: int
    all_municipalities: bool
    withheld_any: bool = False

    def count(self, by_municipality: dict[str, Series]) -> int | None:
        """The figure's total, or None when it is withheld."""
        total: Series = defaultdict(int)
        for series in by_municipality.values():
            for month, n in series.items():
                total[month] += n
        value = sum(total.values())
        withheld = _withheld(total, self.k)
        if not withheld and self.all_municipalities:
            hidden = sum(sum(s.values()) for s in by_municipality.values()
                         if _withheld(s, self.k))
            withheld = _small(hidden, self.k)
        if withheld:
            self.withheld_any = True
            return None
        return value


C = TypeVar("C", bound=Count)
K = TypeVar("K")

Figure = dict[str, Series]
"""A figure by municipality, month by month."""


def _figure(counts: Iterable[Count]) -> Figure:
    figure: Figure = defaultdict(lambda: defaultdict(int))
    for c in counts:
        figure[c.municipality_code][c.month] += c.n
    return figure


def _by(counts: Iterable[C], key: Callable[[C], K]) -> dict[K, list[C]]:
    groups: dict[K, list[C]] = defaultdict(list)
    for c in counts:
        groups[key(c)].append(c)
    return groups


def _share(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, 4)


def outcomes(counts: OutcomeCounts, municipality: str | None, start: date | None,
             end: date | None, min_group: int) -> Outcomes:
    """The outcome figures as municipalities report them, none of them singling anybody out.

    - `exits_by_reason`: a case closed from `employed` without a reason counts as `employment`.
    - `share_left_for_work_or_studies` (as municipalities report it to Kolada): (cases closed
      while `employed` + cases closed with `exit_reason = studies`) / all cases closed in the
      period; null when none closed or a part of it is withheld.
    """
    pub = _Publisher(min_group, all_municipalities=municipality is None)
    stages = _by(counts.referrals, lambda c: c.stage)
    by_stage = {s: pub.count(_figure(stages.get(s, []))) for s in STAGES}
    forms = _by(counts.employments, lambda c: c.form)
    exits = _by(counts.exits, lambda c: c.exit_reason or (
        "employment" if c.from_stage == "employed" else "unknown"))
    went = _by(counts.exits, lambda c: left_for_work_or_studies(c.from_stage, c.exit_reason))
    left_for_work = pub.count(_figure(went.get("work", [])))
    left_for_studies = pub.count(_figure(went.get("studies", [])))
    left_programme = pub.count(_figure(counts.exits))
    share = None
    if left_for_work is not None and left_for_studies is not None:
        share = _share(left_for_work + left_for_studies, left_programme)
    group = pub.count(_figure(counts.first_employments))
    median = counts.median_days_to_employment if group is not None and group >= min_group \
        else None
    if median is None and counts.median_days_to_employment is not None:
        pub.withheld_any = True
    follow_ups = []
    for offset, fus in sorted(_by(counts.follow_ups, lambda c: c.offset_days).items()):
        recorded = pub.count(_figure(Count(r.municipality_code, r.month, r.recorded)
                                     for r in fus))
        still = pub.count(_figure(Count(r.municipality_code, r.month, r.still_employed)
                                  for r in fus))
        follow_ups.append(FollowUpOutcome(
            offset_days=offset,
            due=pub.count(_figure(fus)), recorded=recorded, still_employed=still,
            share_still_employed=_share(still, recorded)))
    return Outcomes(
        municipality_code=municipality, period_from=start, period_to=end,
        referred=pub.count(_figure(counts.referrals)), by_stage=by_stage,
        employed_by_form={str(f): pub.count(_figure(rows)) for f, rows in forms.items()},
        exits_by_reason={str(r): pub.count(_figure(rows)) for r, rows in exits.items()},
        left_programme=left_programme, left_for_work=left_for_work,
        left_for_studies=left_for_studies, share_left_for_work_or_studies=share,
        median_days_referral_to_employment=median, follow_ups=follow_ups,
        suppressed=pub.withheld_any, min_group=min_group,
    )
