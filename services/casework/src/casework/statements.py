"""The monthly statement: one company's attendance for one municipality in one month, with the
compensation at the municipality's rates. Pure, no I/O.

Casework issues it on the first working day of the next month (`casework.workdays`), once
per company, municipality and month, for every placement of the municipality's
participants that ran at the company during the month. A statement never changes: a
correction is a new statement (`kind` `correction`) that names the one it `supersedes`.
It carries no names; the people's given names and family initials are added when the
company's rep or a case worker reads it, from the sealed data (so an erasure removes them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, Field

from asf_contracts import casework as ev
from casework.attendance import (
    ABSENCE_REASONS,
    AttendanceDay,
    CorrectionReason,
    HostedPlacement,
    Rate,
    RateUnit,
    absence,
    rate_on,
)
from casework.domain import Event
from casework.workdays import Month, is_working_day

StatementKind = Literal["original", "correction"]
_ORE = Decimal("0.01")


class RateUsed(BaseModel):
    valid_from: dt.date
    unit: RateUnit
    amount_sek: float
    days: int = Field(description="Days present it was paid for")


class StatementLine(BaseModel):
    """One placement's month."""

    placement_id: UUID
    kind: str
    first_day: dt.date = Field(description="The first day of the month the placement ran")
    last_day: dt.date
    planned_hours: float | None = Field(description="Null without weekly hours")
    working_days: int
    days_reported: int
    days_present: int
    hours_present: float
    absence_days: dict[str, int] = Field(description="Days with an absence, by reason")
    absence_hours: dict[str, float] = Field(description="Hours missing, by reason")
    unreported_working_days: int
    rates: list[RateUsed]
    days_without_rate: int = Field(description="Days present with no rate in force: unpaid")
    amount_sek: float


class Totals(BaseModel):
    placements: int
    planned_hours: float
    days_present: int
    hours_present: float
    absence_days: dict[str, int]
    absence_hours: dict[str, float]
    unreported_working_days: int
    days_without_rate: int
    amount_sek: float

    def contract(self) -> ev.StatementTotals:
        return ev.StatementTotals(placements=self.placements, days_present=self.days_present,
                                  hours_present=self.hours_present,
                                  absence_days=self.absence_days, amount_sek=self.amount_sek)


class Statement(BaseModel):
    """An issued statement, as stored: immutable."""

    id: UUID
    company_id: UUID
    company_name: str | None
    municipality_code: str
    month: str = Field(examples=["2026-10"])
    kind: StatementKind
    supersedes: UUID | None
    reason: CorrectionReason | None = Field(description="Why a correction was issued")
    issued_at: dt.datetime
    issued_by: str = Field(description="`casework` for the month's closing, else who corrected")
    lines: list[StatementLine]
    totals: Totals

    def issued(self) -> Event:
        """`casework.statement.issued.v1`: company, municipality, month, totals; no names."""
        return Event(ev.STATEMENT_ISSUED, self.id, 1, ev.StatementIssuedPayload(
            statement_id=self.id, company_id=self.company_id,
            municipality_code=self.municipality_code, month=self.month, kind=self.kind,
            supersedes=self.supersedes, totals=self.totals.contract()))


CLOSING_ACTOR = "casework"


def issue(*, company_id: UUID, company_name: str | None, municipality_code: str, month: Month,
          placements: list[HostedPlacement], reports: list[AttendanceDay], rates: list[Rate],
          at: dt.datetime, by: str = CLOSING_ACTOR, supersedes: Statement | None = None,
          reason: CorrectionReason | None = None) -> Statement:
    """The statement of the month from the reports and rates as they are now; a correction
    when it `supersedes` an earlier one."""
    by_placement: dict[UUID, list[AttendanceDay]] = {}
    for r in reports:
        by_placement.setdefault(r.placement_id, []).append(r)
    lines = [line(month, p, by_placement.get(p.id, []), rates)
             for p in sorted(placements, key=lambda p: (p.start, str(p.id)))]
    return Statement(
        id=uuid4(), company_id=company_id, company_name=company_name,
        municipality_code=municipality_code, month=str(month),
        kind="correction" if supersedes is not None else "original",
        supersedes=supersedes.id if supersedes is not None else None,
        reason=reason if supersedes is not None else None, issued_at=at, issued_by=by,
        lines=[x for x in lines if x is not None], totals=totals([x for x in lines if x]))


def line(month: Month, p: HostedPlacement, reports: list[AttendanceDay], rates: list[Rate]
         ) -> StatementLine | None:
    """One placement's month; None when it did not run that month."""
    days = p.days_in(month)
    if not days:
        return None
    reported = {r.date: r for r in reports if month.first <= r.date <= month.last}
    working = [d for d in days if is_working_day(d)]
    planned = [p.planned_hours(d) for d in working]
    absence_days = dict.fromkeys(ABSENCE_REASONS, 0)
    absence_hours = dict.fromkeys(ABSENCE_REASONS, Decimal(0))
    amount = Decimal(0)
    used: dict[UUID, tuple[Rate, int]] = {}
    without_rate = 0
    for day, r in sorted(reported.items()):
        if r.absence_reason is not None:
            absence_days[r.absence_reason] += 1
            _, missing = absence(p, day, r.hours_present)
            absence_hours[r.absence_reason] += Decimal(str(missing or 0))
        if r.hours_present <= 0:
            continue
        rate = rate_on(rates, p.kind, day)
        if rate is None:
            without_rate += 1
            continue
        price = Decimal(str(rate.amount_sek))
        amount += price if rate.unit == "day" else price * Decimal(str(r.hours_present))
        used[rate.id] = (rate, used.get(rate.id, (rate, 0))[1] + 1)
    return StatementLine(
        placement_id=p.id, kind=p.kind, first_day=days[0], last_day=days[-1],
        planned_hours=None if any(h is None for h in planned)
        else round(sum(h or 0 for h in planned), 2),
        working_days=len(working), days_reported=len(reported),
        days_present=sum(1 for r in reported.values() if r.hours_present > 0),
        hours_present=round(sum(r.hours_present for r in reported.values()), 2),
        absence_days=absence_days,
        absence_hours={k: float(v) for k, v in absence_hours.items()},
        unreported_working_days=sum(1 for d in working if d not in reported),
        rates=[RateUsed(valid_from=rate.valid_from, unit=rate.unit, amount_sek=rate.amount_sek,
                        days=n) for rate, n in sorted(used.values(),
                                                      key=lambda x: x[0].valid_from)],
        days_without_rate=without_rate,
        amount_sek=float(amount.quantize(_ORE, rounding=ROUND_HALF_UP)),
    )


def totals(lines: list[StatementLine]) -> Totals:
    return Totals(
        placements=len(lines),
        planned_hours=round(sum(x.planned_hours or 0 for x in lines), 2),
        days_present=sum(x.days_present for x in lines),
        hours_present=round(sum(x.hours_present for x in lines), 2),
        absence_days={k: sum(x.absence_days.get(k, 0) for x in lines) for k in ABSENCE_REASONS},
        absence_hours={k: round(sum(x.absence_hours.get(k, 0) for x in lines), 2)
                       for k in ABSENCE_REASONS},
        unreported_working_days=sum(x.unreported_working_days for x in lines),
        days_without_rate=sum(x.days_without_rate for x in lines),
        amount_sek=float(sum((Decimal(str(x.amount_sek)) for x in lines), Decimal(0))),
    )


# --- what readers get -------------------------------------------------------------------


class StatementSummary(BaseModel):
    """A statement in a list: everything but its lines."""

    id: UUID
    company_id: UUID
    company_name: str | None
    municipality_code: str
    month: str
    kind: StatementKind
    supersedes: UUID | None
    superseded_by: UUID | None = Field(description="The correction that replaced it, if any")
    status: Literal["current", "superseded"]
    reason: CorrectionReason | None
    issued_at: dt.datetime
    issued_by: str
    totals: Totals

    @classmethod
    def of(cls, s: Statement, superseded_by: UUID | None) -> StatementSummary:
        return cls(**s.model_dump(exclude={"lines"}), superseded_by=superseded_by,
                   status="superseded" if superseded_by else "current")


class StatementLineView(StatementLine):
    given_name: str | None = Field(description="Null once the participant is erased")
    family_initial: str | None


class StatementView(StatementSummary):
    lines: list[StatementLineView]


CSV_COLUMNS = (
    "row", "statement_id", "month", "kind", "supersedes", "status", "company_id",
    "company_name", "municipality_code", "placement_id", "placement_kind", "given_name",
    "family_initial", "first_day", "last_day", "planned_hours", "working_days",
    "days_reported", "days_present", "hours_present",
    *(f"absence_days_{r}" for r in ABSENCE_REASONS),
    *(f"absence_hours_{r}" for r in ABSENCE_REASONS),
    "unreported_working_days", "rates", "days_without_rate", "amount_sek",
)
"""The CSV's columns, in this order (stable: add at the end only)."""


def _cell(value: object) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is prefixed with '."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str):
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
    return str(value)


def statement_csv(s: StatementView) -> str:
    """The statement as CSV (RFC 4180, comma, decimal point): one `placement` row per line and a
    `total` row, UTF-8 with a byte-order mark so spreadsheet programs read å, ä and ö."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    head = [s.id, s.month, s.kind, s.supersedes, s.status, s.company_id, s.company_name,
            s.municipality_code]
    for x in s.lines:
        rates = "; ".join(f"{r.amount_sek:.2f} SEK/{r.unit} from {r.valid_from.isoformat()}"
                          for r in x.rates)
        w.writerow([_cell(v) for v in (
            "placement", *head, x.placement_id, x.kind, x.given_name, x.family_initial,
            x.first_day, x.last_day, x.planned_hours, x.working_days, x.days_reported,
            x.days_present, x.hours_present,
            *(x.absence_days[r] for r in ABSENCE_REASONS),
            *(x.absence_hours[r] for r in ABSENCE_REASONS),
            x.unreported_working_days, rates, x.days_without_rate, x.amount_sek)])
    t = s.totals
    w.writerow([_cell(v) for v in (
        "total", *head, None, None, None, None, None, None, t.planned_hours, None, None,
        t.days_present, t.hours_present,
        *(t.absence_days[r] for r in ABSENCE_REASONS),
        *(t.absence_hours[r] for r in ABSENCE_REASONS),
        t.unreported_working_days, None, t.days_without_rate, t.amount_sek)])
    return "\ufeff" + out.getvalue()
