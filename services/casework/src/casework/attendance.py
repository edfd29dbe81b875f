"""Attendance (närvaro) reported by the host ASF, and the municipalities' rates. Pure, no I/O.

The company rep of the company where a placement runs reports, per day, the hours the
participant was present and, for any absence, why. A day's planned hours are the
placement's `hours_per_week` spread over the working days (Monday to Friday, not a
Swedish holiday: `casework.workdays`); fewer hours present than planned is an absence and
needs a reason. Reports can be corrected until the month is closed by a statement
(`casework.statements`); after that only a correction statement changes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import accumulate
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from asf_kit.rules import RuleError
from casework.inputs import CaseDate, PlacementKind, _In
from casework.workdays import Month, is_working_day

AbsenceReason = Literal["sick", "leave", "unexcused", "other"]
ABSENCE_REASONS: tuple[AbsenceReason, ...] = ("sick", "leave", "unexcused", "other")
PLACEMENT_KINDS: tuple[PlacementKind, ...] = get_args(PlacementKind)
RateUnit = Literal["day", "hour"]
CorrectionReason = Literal["attendance", "rate", "other"]
"""Why a statement is issued again: attendance was corrected, a rate was set or corrected
after the month closed, or something else. A code, not free text: a statement is read by
the company and the municipality and must not carry anything about a person."""


# --- what callers send ------------------------------------------------------------------

def _hundredths(value: float) -> float:
    """Hours and kronor are kept to two decimals (hundredths of an hour, öre)."""
    return round(value, 2)


Hours = Annotated[float, Field(ge=0, le=24, description="Hours present that day, 0 to 24"),
                  AfterValidator(_hundredths)]


class AttendanceIn(_In):
    """One day's report: `PUT /placements/{id}/attendance/{date}`."""

    hours_present: Hours
    absence_reason: AbsenceReason | None = Field(
        default=None, description="Required for any absence (fewer hours than planned)")


class AttendanceCorrection(AttendanceIn):
    placement_id: UUID
    date: dt.date


class CorrectionIn(_In):
    """A re-issue of a closed month: the corrected days, and why."""

    reason: CorrectionReason
    attendance: list[AttendanceCorrection] = Field(default_factory=list, max_length=1000)


class RateIn(_In):
    municipality_code: str | None = Field(
        default=None, pattern=r"^\d{4}$", description="The caller's municipality by default")
    kind: PlacementKind
    unit: RateUnit = Field(description="Paid per day present or per hour present")
    amount_sek: Annotated[float, Field(ge=0.01, le=100_000, description="SEK per day or hour"),
                          AfterValidator(_hundredths)]
    valid_from: CaseDate


# --- the parts --------------------------------------------------------------------------


class Rate(BaseModel):
    """What a municipality pays per day or hour present for one kind of placement, from
    `valid_from` until the next rate of the same kind."""

    id: UUID
    municipality_code: str
    kind: str
    unit: RateUnit
    amount_sek: float
    valid_from: dt.date
    created_by: str
    created_at: dt.datetime


def rate_on(rates: list[Rate], kind: str, day: dt.date) -> Rate | None:
    """The rate in force for `kind` on `day`: the latest that is valid from that day or before."""
    valid = [r for r in rates if r.kind == kind and r.valid_from <= day]
    return max(valid, key=lambda r: r.valid_from, default=None)


@dataclass(frozen=True)
class HostedPlacement:
    """A placement as its host company and the paying municipality see it."""

    id: UUID
    participant_id: UUID
    company_id: UUID
    municipality_code: str
    kind: str
    start: dt.date
    planned_end: dt.date | None
    ended_on: dt.date | None
    hours_per_week: float | None
    status: str

    def runs_on(self, day: dt.date) -> bool:
        return self.start <= day and (self.ended_on is None or day <= self.ended_on)

    def planned_hours(self, day: dt.date) -> float | None:
        """Hours planned that day: a fifth of the week's on a working day the placement runs,
        none otherwise; None when the placement has no planned hours per week."""
        if not (self.runs_on(day) and is_working_day(day)):
            return 0.0
        if self.hours_per_week is None:
            return None
        return round(self.hours_per_week / 5, 2)

    def days_in(self, month: Month) -> list[dt.date]:
        return [d for d in month.days() if self.runs_on(d)]


class AttendanceDay(BaseModel):
    """One day's report as stored and returned."""

    placement_id: UUID
    date: dt.date
    hours_present: float
    absence_reason: AbsenceReason | None
    planned_hours: float | None = Field(description="Null when the placement has no weekly hours")
    absence_hours: float | None = Field(
        description="Planned minus present when positive; null when nothing was planned")
    reported_by: str
    reported_at: dt.datetime
    version: int = Field(description="1 when first reported; grows with each correction")


def absence(placement: HostedPlacement, day: dt.date, hours_present: float
            ) -> tuple[bool, float | None]:
    """Whether the report is an absence, and the hours missing (None when not known).

    Without weekly hours the plan of a day is not known: then a working day with no hour
    present is an absence.
    """
    planned = placement.planned_hours(day)
    if planned is None:
        return hours_present == 0, None
    missing = round(max(planned - hours_present, 0.0), 2)
    return missing > 0, missing


def report_errors(placement: HostedPlacement, day: dt.date, body: AttendanceIn, today: dt.date,
                  prefix: str = "") -> list[tuple[str, str]]:
    """Every reason the report cannot be taken, each naming its field."""
    if day > today:
        return [(f"{prefix}date", "is in the future; a day is reported once it has come")]
    if day < placement.start:
        return [(f"{prefix}date",
                 f"is before the placement started ({placement.start.isoformat()})")]
    if placement.ended_on is not None and day > placement.ended_on:
        return [(f"{prefix}date",
                 f"is after the placement ended ({placement.ended_on.isoformat()})")]
    absent, _ = absence(placement, day, body.hours_present)
    planned = placement.planned_hours(day)
    if absent and body.absence_reason is None:
        plan = f"{planned:g} hours were planned" if planned is not None else "a working day"
        return [(f"{prefix}absence_reason",
                 f"is required for an absence ({plan}, {body.hours_present:g} present)")]
    if not absent and body.absence_reason is not None:
        return [(f"{prefix}absence_reason",
                 "is given only for an absence (fewer hours present than planned)")]
    return []


def report(placement: HostedPlacement, day: dt.date, body: AttendanceIn, today: dt.date,
           by: str, at: dt.datetime, previous: AttendanceDay | None) -> AttendanceDay:
    """The day's report, or a 422 naming every bad field."""
    errors = report_errors(placement, day, body, today)
    if errors:
        raise invalid(errors)
    return day_report(placement, day, body.hours_present, body.absence_reason, by, at,
                      (previous.version if previous else 0) + 1)


def day_report(placement: HostedPlacement, day: dt.date, hours_present: float,
               absence_reason: AbsenceReason | None, by: str, at: dt.datetime,
               version: int) -> AttendanceDay:
    _, missing = absence(placement, day, hours_present)
    return AttendanceDay(
        placement_id=placement.id, date=day, hours_present=round(hours_present, 2),
        absence_reason=absence_reason, planned_hours=placement.planned_hours(day),
        absence_hours=missing, reported_by=by, reported_at=at, version=version)


def invalid(errors: list[tuple[str, str]]) -> RuleError:
    """A 422 naming every bad field."""
    return RuleError(422, "Validation failed", "; ".join(f"{f}: {m}" for f, m in errors),
                     errors=[{"field": f, "message": m} for f, m in errors])


def month_closed(month: Month, statement_id: UUID) -> RuleError:
    """409: the month's attendance is in an issued statement."""
    return RuleError(
        409, "Month closed",
        f"the attendance of {month} is closed by statement {statement_id}; a correction is "
        f"a new statement: POST /statements/{statement_id}/corrections",
        month=str(month), statement_id=str(statement_id))


# --- what the company rep sees ----------------------------------------------------------


class RepPlacement(BaseModel):
    """A placement as the host company's rep sees it (SPEC 3.2): the placement, its kind,
    dates and planned hours, and the participant's given name and family-name initial.
    Nothing else about the person leaves casework."""

    id: UUID
    company_id: UUID
    municipality_code: str = Field(description="The municipality that placed and pays")
    kind: str
    start: dt.date
    planned_end: dt.date | None
    ended_on: dt.date | None
    status: str
    hours_per_week: float | None
    given_name: str | None = Field(description="Null once the participant is erased")
    family_initial: str | None = Field(description="The first letter of the family name")

    @classmethod
    def of(cls, p: HostedPlacement, given_name: str | None, family_name: str | None
           ) -> RepPlacement:
        return cls(id=p.id, company_id=p.company_id, municipality_code=p.municipality_code,
                   kind=p.kind, start=p.start, planned_end=p.planned_end, ended_on=p.ended_on,
                   status=p.status, hours_per_week=p.hours_per_week, given_name=given_name,
                   family_initial=family_initial(family_name))


def family_initial(family_name: str | None) -> str | None:
    return family_name.strip()[:1].upper() if family_name and family_name.strip() else None


class ClosedMonth(BaseModel):
    month: str
    statement_id: UUID


class AttendancePage(BaseModel):
    """A placement's reported days in a period, oldest first, and the months in the period
    already closed by a statement (their days can no longer be changed)."""

    items: list[AttendanceDay]
    next_cursor: str | None = None
    placement: RepPlacement
    closed_months: list[ClosedMonth]


# --- attendance in the outcome figures --------------------------------------------------


@dataclass(frozen=True)
class PlacementHours:
    """One placement in a period: what was planned and the hours reported present."""

    kind: str
    municipality_code: str
    start: dt.date
    ended_on: dt.date | None
    hours_per_week: float
    hours_present: float


class AttendanceShare(BaseModel):
    """The share of planned hours attended, for one kind of placement."""

    kind: str
    placements: int | None = Field(description="Placements with planned hours in the period")
    planned_hours: float | None
    hours_present: float | None
    share_attended: float | None = Field(description="hours_present / planned_hours")


@dataclass(frozen=True)
class _Span:
    """The working days a placement ran in the period, and its months there (indexes)."""

    row: PlacementHours
    working_days: int
    first_month: int
    last_month: int


def attendance_shares(rows: list[PlacementHours], start: dt.date | None, end: dt.date | None,
                      today: dt.date, min_group: int, *, all_municipalities: bool = False
                      ) -> tuple[list[AttendanceShare], bool]:
    """Per kind of placement: the hours planned (the weekly hours over the working days the
    placement ran in the period, up to today) and the hours reported present; and whether
    a figure was withheld.

    The same rule as every outcome figure (`casework.outcomes`): a kind's figures are null
    when its placements number 1 to `min_group` - 1, or would in a shorter period sharing
    the period's first or last month (two overlapping periods would otherwise give a small
    group's hours by subtraction), or, over all municipalities, when the municipalities
    withheld add up to such a group.
    """
    last = min(end, today) if end is not None else today
    first = start if start is not None else min((r.start for r in rows), default=last)
    days = [first + dt.timedelta(days=i) for i in range(max((last - first).days + 1, 0))]
    # working days up to and including each day, so each placement costs one subtraction
    through = list(accumulate(1 if is_working_day(d) else 0 for d in days))
    months = sorted({Month.of(d) for d in days})
    index = {m: i for i, m in enumerate(months)}

    def span(r: PlacementHours) -> _Span | None:
        a, b = max(r.start, first), min(r.ended_on, last) if r.ended_on else last
        if a > b:
            return None
        i, j = (a - first).days, (b - first).days
        n = through[j] - (through[i - 1] if i > 0 else 0)
        if n == 0:
            return None
        while not is_working_day(a):
            a += dt.timedelta(days=1)
        while not is_working_day(b):
            b -= dt.timedelta(days=1)
        return _Span(r, n, index[Month.of(a)], index[Month.of(b)])

    spans = [x for x in (span(r) for r in rows) if x is not None]
    shares, suppressed = [], False
    for kind in PLACEMENT_KINDS:
        mine = [x for x in spans if x.row.kind == kind]
        withheld = _withheld(mine, len(months), min_group)
        if not withheld and all_municipalities:
            hidden = 0
            for municipality in {x.row.municipality_code for x in mine}:
                theirs = [x for x in mine if x.row.municipality_code == municipality]
                if _withheld(theirs, len(months), min_group):
                    hidden += len(theirs)
            withheld = 0 < hidden < min_group
        if withheld:
            suppressed = True
            shares.append(AttendanceShare(kind=kind, placements=None, planned_hours=None,
                                          hours_present=None, share_attended=None))
            continue
        planned = sum(x.working_days * x.row.hours_per_week / 5 for x in mine)
        present = sum(x.row.hours_present for x in mine)
        shares.append(AttendanceShare(
            kind=kind, placements=len(mine), planned_hours=round(planned, 2),
            hours_present=round(present, 2),
            share_attended=round(present / planned, 4) if planned > 0 else None))
    return shares, suppressed


def _withheld(spans: list[_Span], months: int, k: int) -> bool:
    """The group is 1 to k - 1 placements, or would be over a shorter period sharing the
    first or the last month."""
    def small(n: int) -> bool:
        return 0 < n < k

    if small(len(spans)):
        return True
    return any(small(sum(1 for x in spans if x.first_month <= j))
               or small(sum(1 for x in spans if x.last_month >= months - 1 - j))
               for j in range(months - 1))
