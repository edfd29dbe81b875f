"""The SQL of attendance, rates and statements. Runs on the caller's connection and
transaction."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import asyncpg

from asf_kit.db import Conn
from casework.attendance import (
    AttendanceDay,
    ClosedMonth,
    HostedPlacement,
    PlacementHours,
    Rate,
    day_report,
)
from casework.domain import SealedPersonalData
from casework.statements import Statement
from casework.workdays import Month

# --- placements as their host and payer see them --------------------------------------

_HOSTED = """
SELECT pl.id, pl.participant_id, pl.company_id, p.municipality_code, pl.kind, pl.start,
       pl.planned_end, pl.ended_on, pl.hours_per_week, pl.status
FROM placements pl JOIN participants p ON p.id = pl.participant_id
"""


def _hosted(r: asyncpg.Record) -> HostedPlacement:
    return HostedPlacement(
        id=r["id"], participant_id=r["participant_id"], company_id=r["company_id"],
        municipality_code=r["municipality_code"], kind=r["kind"], start=r["start"],
        planned_end=r["planned_end"], ended_on=r["ended_on"],
        hours_per_week=r["hours_per_week"], status=r["status"])


async def hosted_placement(conn: Conn, placement_id: UUID, *, share_lock: bool = False
                           ) -> HostedPlacement | None:
    """The placement; `share_lock` keeps it from ending while a report is taken."""
    r = await conn.fetchrow(_HOSTED + " WHERE pl.id = $1"
                            + (" FOR SHARE OF pl" if share_lock else ""), placement_id)
    return _hosted(r) if r is not None else None


async def company_placements(conn: Conn, company_id: UUID, *, active: bool | None,
                             after: tuple[dt.date, UUID] | None, limit: int
                             ) -> list[HostedPlacement]:
    """Placements at the company (every municipality), in start order."""
    rows = await conn.fetch(
        _HOSTED + """
        WHERE pl.company_id = $1
          AND ($2::boolean IS NULL OR (pl.status = 'active') = $2)
          AND ($3::date IS NULL OR (pl.start, pl.id) > ($3, $4::uuid))
        ORDER BY pl.start, pl.id
        LIMIT $5
        """,
        company_id, active, after[0] if after else None, after[1] if after else None, limit)
    return [_hosted(r) for r in rows]


async def sealed_people(conn: Conn, participant_ids: list[UUID]
                        ) -> dict[UUID, SealedPersonalData]:
    """The sealed personal data of each participant not erased, with their wrapped key."""
    rows = await conn.fetch(
        """
        SELECT p.id, p.personal, k.key_id, k.wrapped FROM participants p
        JOIN participant_keys k ON k.participant_id = p.id
        WHERE p.id = ANY($1::uuid[]) AND p.personal IS NOT NULL
        """,
        participant_ids)
    return {r["id"]: SealedPersonalData(bytes(r["personal"]), r["key_id"], bytes(r["wrapped"]))
            for r in rows}


# --- attendance -----------------------------------------------------------------------


def _day(p: HostedPlacement, r: asyncpg.Record) -> AttendanceDay:
    return day_report(p, r["day"], float(r["hours_present"]), r["absence_reason"],
                      r["reported_by"], r["reported_at"], r["version"])


async def attendance_on(conn: Conn, p: HostedPlacement, day: dt.date) -> AttendanceDay | None:
    r = await conn.fetchrow("SELECT * FROM attendance WHERE placement_id = $1 AND day = $2",
                            p.id, day)
    return _day(p, r) if r is not None else None


async def save_attendance(conn: Conn, days: list[AttendanceDay]) -> None:
    """Each day's report, new or corrected."""
    await conn.executemany(
        """
        INSERT INTO attendance (placement_id, day, hours_present, absence_reason, reported_by,
            reported_at, version)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (placement_id, day) DO UPDATE SET
            hours_present = EXCLUDED.hours_present, absence_reason = EXCLUDED.absence_reason,
            reported_by = EXCLUDED.reported_by, reported_at = EXCLUDED.reported_at,
            version = EXCLUDED.version
        """,
        [(d.placement_id, d.date, d.hours_present, d.absence_reason, d.reported_by,
          d.reported_at, d.version) for d in days])


async def attendance_between(conn: Conn, p: HostedPlacement, start: dt.date, end: dt.date
                             ) -> list[AttendanceDay]:
    rows = await conn.fetch(
        "SELECT * FROM attendance WHERE placement_id = $1 AND day BETWEEN $2 AND $3 "
        "ORDER BY day", p.id, start, end)
    return [_day(p, r) for r in rows]


async def attendance_in(conn: Conn, placements: list[HostedPlacement], month: Month
                        ) -> list[AttendanceDay]:
    """Every report of the placements in the month."""
    by_id = {p.id: p for p in placements}
    rows = await conn.fetch(
        "SELECT * FROM attendance WHERE placement_id = ANY($1::uuid[]) "
        "AND day BETWEEN $2 AND $3 ORDER BY placement_id, day",
        list(by_id), month.first, month.last)
    return [_day(by_id[r["placement_id"]], r) for r in rows]


# --- closing months -------------------------------------------------------------------


async def lock_month(conn: Conn, company_id: UUID, municipality_code: str, month: Month) -> None:
    """Serialise everything that reads or changes one company's month for one municipality:
    reports, the closing and corrections (held until the transaction ends)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 727274019))",
                       f"statement:{company_id}:{municipality_code}:{month}")


async def current_statement(conn: Conn, company_id: UUID, municipality_code: str,
                            month: Month) -> UUID | None:
    """The statement in force for the month (the last correction, or the original)."""
    value = await conn.fetchval(
        """
        SELECT s.id FROM statements s
        WHERE s.company_id = $1 AND s.municipality_code = $2 AND s.month = $3
          AND NOT EXISTS (SELECT 1 FROM statements c WHERE c.supersedes = s.id)
        """,
        company_id, municipality_code, str(month))
    return value if isinstance(value, UUID) else None


async def closed_months(conn: Conn, company_id: UUID, municipality_code: str,
                        start: dt.date, end: dt.date) -> list[ClosedMonth]:
    rows = await conn.fetch(
        """
        SELECT s.month, s.id FROM statements s
        WHERE s.company_id = $1 AND s.municipality_code = $2 AND s.month BETWEEN $3 AND $4
          AND NOT EXISTS (SELECT 1 FROM statements c WHERE c.supersedes = s.id)
        ORDER BY s.month
        """,
        company_id, municipality_code, str(Month.of(start)), str(Month.of(end)))
    return [ClosedMonth(month=r["month"], statement_id=r["id"]) for r in rows]


async def months_to_close(conn: Conn, month: Month, company_id: UUID | None
                          ) -> list[tuple[UUID, str]]:
    """(company, municipality) of every placement that ran in the month, without a statement
    for it yet."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT pl.company_id, p.municipality_code
        FROM placements pl JOIN participants p ON p.id = pl.participant_id
        WHERE pl.start <= $2 AND (pl.ended_on IS NULL OR pl.ended_on >= $1)
          AND ($4::uuid IS NULL OR pl.company_id = $4)
          AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.company_id = pl.company_id
                          AND s.municipality_code = p.municipality_code AND s.month = $3)
        ORDER BY pl.company_id, p.municipality_code
        """,
        month.first, month.last, str(month), company_id)
    return [(r["company_id"], r["municipality_code"]) for r in rows]


async def placements_in(conn: Conn, company_id: UUID, municipality_code: str, month: Month
                        ) -> list[HostedPlacement]:
    """The municipality's placements that ran at the company during the month."""
    rows = await conn.fetch(
        _HOSTED + """
        WHERE pl.company_id = $1 AND p.municipality_code = $2
          AND pl.start <= $4 AND (pl.ended_on IS NULL OR pl.ended_on >= $3)
        ORDER BY pl.start, pl.id
        """,
        company_id, municipality_code, month.first, month.last)
    return [_hosted(r) for r in rows]


async def company_name(conn: Conn, company_id: UUID) -> str | None:
    value = await conn.fetchval("SELECT name FROM companies WHERE id = $1", company_id)
    return value if isinstance(value, str) else None


# --- rates ----------------------------------------------------------------------------


def _rate(r: asyncpg.Record) -> Rate:
    return Rate(id=r["id"], municipality_code=r["municipality_code"], kind=r["kind"],
                unit=r["unit"], amount_sek=float(r["amount_sek"]), valid_from=r["valid_from"],
                created_by=r["created_by"], created_at=r["created_at"])


async def add_rate(conn: Conn, rate: Rate) -> UUID | None:
    """Store the rate; None when the municipality already has one for the kind from that
    date (then `rate_from` finds it)."""
    value = await conn.fetchval(
        """
        INSERT INTO rates (id, municipality_code, kind, unit, amount_sek, valid_from,
            created_by, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (municipality_code, kind, valid_from) DO NOTHING RETURNING id
        """,
        rate.id, rate.municipality_code, rate.kind, rate.unit, rate.amount_sek,
        rate.valid_from, rate.created_by, rate.created_at)
    return value if isinstance(value, UUID) else None


async def rate_from(conn: Conn, municipality_code: str, kind: str, valid_from: dt.date
                    ) -> UUID | None:
    value = await conn.fetchval(
        "SELECT id FROM rates WHERE municipality_code = $1 AND kind = $2 AND valid_from = $3",
        municipality_code, kind, valid_from)
    return value if isinstance(value, UUID) else None


async def list_rates(conn: Conn, *, municipality_code: str | None, kind: str | None,
                     after: tuple[str, str, dt.date] | None, limit: int) -> list[Rate]:
    """Rates by municipality, kind and date."""
    rows = await conn.fetch(
        """
        SELECT * FROM rates
        WHERE ($1::text IS NULL OR municipality_code = $1) AND ($2::text IS NULL OR kind = $2)
          AND ($3::text IS NULL OR (municipality_code, kind, valid_from) > ($3, $4, $5::date))
        ORDER BY municipality_code, kind, valid_from
        LIMIT $6
        """,
        municipality_code, kind, after[0] if after else None, after[1] if after else None,
        after[2] if after else None, limit)
    return [_rate(r) for r in rows]


async def rates_of(conn: Conn, municipality_code: str) -> list[Rate]:
    rows = await conn.fetch("SELECT * FROM rates WHERE municipality_code = $1",
                            municipality_code)
    return [_rate(r) for r in rows]


# --- statements -----------------------------------------------------------------------


def _statement(r: asyncpg.Record) -> Statement:
    return Statement(
        id=r["id"], company_id=r["company_id"], company_name=r["company_name"],
        municipality_code=r["municipality_code"], month=r["month"], kind=r["kind"],
        supersedes=r["supersedes"], reason=r["reason"], issued_at=r["issued_at"],
        issued_by=r["issued_by"], lines=r["lines"], totals=r["totals"])


async def add_statement(conn: Conn, s: Statement) -> bool:
    """Store an issued statement; False when the month already has its original (another
    replica closed it first) or the statement superseded already has a correction."""
    done = await conn.fetchval(
        """
        INSERT INTO statements (id, company_id, company_name, municipality_code, month, kind,
            supersedes, reason, issued_at, issued_by, lines, totals)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT DO NOTHING RETURNING true
        """,
        s.id, s.company_id, s.company_name, s.municipality_code, s.month, s.kind,
        s.supersedes, s.reason, s.issued_at, s.issued_by,
        [x.model_dump(mode="json") for x in s.lines], s.totals.model_dump(mode="json"))
    return bool(done)


_STATEMENT = """
SELECT s.*, (SELECT c.id FROM statements c WHERE c.supersedes = s.id) AS superseded_by
FROM statements s
"""


async def get_statement(conn: Conn, statement_id: UUID) -> tuple[Statement, UUID | None] | None:
    """The statement and the correction that superseded it, if any."""
    r = await conn.fetchrow(_STATEMENT + " WHERE s.id = $1", statement_id)
    return (_statement(r), r["superseded_by"]) if r is not None else None


async def list_statements(
    conn: Conn, *, company_id: UUID | None, municipality_code: str | None, month: str | None,
    current: bool | None, after: tuple[dt.datetime, UUID] | None, limit: int,
) -> list[tuple[Statement, UUID | None]]:
    """Statements newest first; `current` keeps only (or, False, leaves out) those in force."""
    rows = await conn.fetch(
        "SELECT * FROM (" + _STATEMENT + """
        WHERE ($1::uuid IS NULL OR s.company_id = $1)
          AND ($2::text IS NULL OR s.municipality_code = $2)
          AND ($3::text IS NULL OR s.month = $3)
          AND ($5::timestamptz IS NULL OR (s.issued_at, s.id) < ($5, $6::uuid))
        ) x WHERE ($4::boolean IS NULL OR (x.superseded_by IS NULL) = $4)
        ORDER BY x.issued_at DESC, x.id DESC
        LIMIT $7
        """,
        company_id, municipality_code, month, current, after[0] if after else None,
        after[1] if after else None, limit)
    return [(_statement(r), r["superseded_by"]) for r in rows]


async def participants_of(conn: Conn, placement_ids: list[UUID]) -> dict[UUID, UUID]:
    """The participant of each placement."""
    rows = await conn.fetch("SELECT id, participant_id FROM placements WHERE id = ANY($1::uuid[])",
                            placement_ids)
    return {r["id"]: r["participant_id"] for r in rows}


# --- statistics -----------------------------------------------------------------------


async def placement_hours(conn: Conn, municipality: str | None, start: dt.date | None,
                          last: dt.date) -> list[PlacementHours]:
    """Placements with weekly hours that ran between `start` (or ever) and `last`, each with
    the hours reported present in that window."""
    rows = await conn.fetch(
        """
        SELECT pl.kind, p.municipality_code, pl.start, pl.ended_on, pl.hours_per_week,
               coalesce((SELECT sum(a.hours_present) FROM attendance a
                         WHERE a.placement_id = pl.id AND a.day <= $3
                           AND ($2::date IS NULL OR a.day >= $2)), 0) AS present
        FROM placements pl JOIN participants p ON p.id = pl.participant_id
        WHERE ($1::text IS NULL OR p.municipality_code = $1) AND pl.hours_per_week IS NOT NULL
          AND pl.start <= $3 AND ($2::date IS NULL OR pl.ended_on IS NULL OR pl.ended_on >= $2)
        """,
        municipality, start, last)
    return [PlacementHours(kind=r["kind"], municipality_code=r["municipality_code"],
                           start=r["start"], ended_on=r["ended_on"],
                           hours_per_week=r["hours_per_week"],
                           hours_present=float(r["present"])) for r in rows]
