"""Casework's SQL, all of it. Every function runs on the caller's connection and transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from asf_contracts.registry import CompanyPayload
from asf_kit.db import Conn

CHANGES_CHANNEL = "casework_changes"
"""PostgreSQL NOTIFY channel of case changes, read by `/stream` on every replica."""

# --- the company read model ------------------------------------------------------------


async def upsert_company(conn: Conn, c: CompanyPayload, version: int) -> bool:
    """Keep the company at the newest version seen; True when this one was applied."""
    applied = await conn.fetchval(
        """
        INSERT INTO companies (id, name, municipality_code, status, training_places, version)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name, municipality_code = EXCLUDED.municipality_code,
            status = EXCLUDED.status, training_places = EXCLUDED.training_places,
            version = EXCLUDED.version, updated_at = now()
        WHERE companies.version < EXCLUDED.version
        RETURNING true
        """,
        c.id, c.name, c.municipality_code, c.status, c.training_places, version,
    )
    return bool(applied)


async def get_company(
    conn: Conn, company_id: UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    """The company as casework knows it; `for_update` serialises placements at it."""
    sql = ("SELECT id, name, municipality_code, status, training_places, version "
           "FROM companies WHERE id = $1")
    return await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), company_id)


async def active_companies(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, name, training_places FROM companies WHERE status = 'active' ORDER BY name, id"
    )


async def count_active_placements(conn: Conn, company_id: UUID) -> int:
    n = await conn.fetchval(
        "SELECT count(*) FROM placements WHERE company_id = $1 AND status = 'active'", company_id
    )
    return int(n)


# --- participants ---------------------------------------------------------------------

_CASE = """
SELECT p.id, p.municipality_code, p.referral_source, p.assigned_to, p.stage, p.exit_reason,
       p.referred_at, p.closed_at, p.erased_at, p.version, p.personal,
       e.id AS employment_id, e.form AS employment_form, e.employer_company_id,
       e.employer_name, e.start AS employment_start, e.ended_on AS employment_ended_on,
       coalesce((SELECT array_agg(pl.id ORDER BY pl.created_at) FROM placements pl
                 WHERE pl.participant_id = p.id AND pl.status = 'active'),
                '{}'::uuid[]) AS active_placement_ids
FROM participants p
LEFT JOIN LATERAL (
    SELECT * FROM employments e WHERE e.participant_id = p.id
    ORDER BY e.created_at DESC LIMIT 1
) e ON true
"""


async def insert_participant(
    conn: Conn, *, id: UUID, municipality_code: str, referral_source: str,
    assigned_to: str, referred_at: datetime, personal: bytes, identity_hash: bytes,
    key_id: str, created_by: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO participants (id, municipality_code, referral_source, assigned_to, stage,
            referred_at, personal, identity_hash, key_id, created_by, version, updated_at)
        VALUES ($1, $2, $3, $4, 'referred', $5, $6, $7, $8, $9, 0, $5)
        """,
        id, municipality_code, referral_source, assigned_to, referred_at, personal,
        identity_hash, key_id, created_by,
    )


async def insert_key(conn: Conn, participant_id: UUID, key_id: str,
                     wrapped: bytes) -> None:
    await conn.execute(
        "INSERT INTO participant_keys (participant_id, key_id, wrapped) VALUES ($1, $2, $3)",
        participant_id, key_id, wrapped,
    )


async def get_key(conn: Conn, participant_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT key_id, wrapped FROM participant_keys WHERE participant_id = $1", participant_id
    )


async def keys_not_under(conn: Conn, key_id: str, limit: int) -> list[asyncpg.Record]:
    """Wrapped data keys still under an older master key (for rotation)."""
    return await conn.fetch(
        """
        SELECT k.participant_id, k.key_id, k.wrapped, p.personal FROM participant_keys k
        JOIN participants p ON p.id = k.participant_id
        WHERE k.key_id <> $1 ORDER BY k.participant_id LIMIT $2
        FOR UPDATE OF k SKIP LOCKED
        """,
        key_id, limit,
    )


async def rewrap_key(conn: Conn, participant_id: UUID, key_id: str,
                     wrapped: bytes, identity_hash: bytes) -> None:
    await conn.execute(
        "UPDATE participant_keys SET key_id = $2, wrapped = $3 WHERE participant_id = $1",
        participant_id, key_id, wrapped,
    )
    await conn.execute(
        "UPDATE participants SET key_id = $2, identity_hash = $3 WHERE id = $1",
        participant_id, key_id, identity_hash,
    )


async def find_open_case(
    conn: Conn, municipality_code: str, hashes: list[bytes]
) -> UUID | None:
    """The open case of the same person in the same municipality, if there is one."""
    value = await conn.fetchval(
        """
        SELECT id FROM participants
        WHERE municipality_code = $1 AND identity_hash = ANY($2::bytea[]) AND stage <> 'closed'
        LIMIT 1
        """,
        municipality_code, hashes,
    )
    return value if isinstance(value, UUID) else None


async def find_cases(
    conn: Conn, municipality_code: str, hashes: list[bytes]
) -> list[asyncpg.Record]:
    """Every case, open or closed, of the same person in the same municipality."""
    return await conn.fetch(
        _CASE + """
        WHERE p.municipality_code = $1 AND p.identity_hash = ANY($2::bytea[])
        ORDER BY p.referred_at, p.id
        """,
        municipality_code, hashes,
    )


async def get_case(conn: Conn, participant_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_CASE + " WHERE p.id = $1", participant_id)


async def lock_participant(conn: Conn, participant_id: UUID) -> asyncpg.Record | None:
    """The participant row, locked for the change the caller is about to make."""
    return await conn.fetchrow(
        """
        SELECT id, municipality_code, assigned_to, stage, version, erased_at
        FROM participants WHERE id = $1 FOR UPDATE
        """,
        participant_id,
    )


async def list_cases(
    conn: Conn, *, municipality_code: str, stage: str | None,
    company_id: UUID | None, assigned_to: str | None, after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """One page in referral order; `after` is the (referred_at, id) the last page ended on."""
    return await conn.fetch(
        _CASE + """
        WHERE p.municipality_code = $1
          AND ($2::text IS NULL OR p.stage = $2)
          AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM placements x WHERE
                 x.participant_id = p.id AND x.company_id = $3 AND x.status = 'active'))
          AND ($4::text IS NULL OR p.assigned_to = $4)
          AND ($5::timestamptz IS NULL OR (p.referred_at, p.id) > ($5, $6::uuid))
        ORDER BY p.referred_at, p.id
        LIMIT $7
        """,
        municipality_code, stage, company_id, assigned_to,
        after[0] if after else None, after[1] if after else None, limit,
    )


async def set_stage(
    conn: Conn, participant_id: UUID, stage: str, exit_reason: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        """
        UPDATE participants SET stage = $2, exit_reason = $3,
            closed_at = CASE WHEN $2 = 'closed' THEN $4::timestamptz END, updated_at = $4
        WHERE id = $1
        """,
        participant_id, stage, exit_reason, at,
    )


async def advance_version(
    conn: Conn, participant_id: UUID, events: int, at: datetime
) -> int:
    """Count `events` more events of the case; returns the new version.

    A case's version is the number of events it has published, so each event
    carries its own `aggregate_version` and projections can order them.
    """
    version = await conn.fetchval(
        "UPDATE participants SET version = version + $2, updated_at = $3 WHERE id = $1 "
        "RETURNING version",
        participant_id, events, at,
    )
    return int(version)


async def erase_participant(conn: Conn, participant_id: UUID, at: datetime) -> None:
    """Null the personal columns and shred the data key; the figures stay."""
    await conn.execute("DELETE FROM participant_keys WHERE participant_id = $1", participant_id)
    await conn.execute("UPDATE notes SET sealed = NULL WHERE participant_id = $1", participant_id)
    await conn.execute(
        """
        UPDATE participants SET personal = NULL, identity_hash = NULL, key_id = NULL,
            erased_at = $2, updated_at = $2
        WHERE id = $1
        """,
        participant_id, at,
    )


async def backdate_case(conn: Conn, participant_id: UUID, days: int) -> None:
    """Move a case's referral `days` back in time (demo data only)."""
    await conn.execute(
        "UPDATE participants SET referred_at = referred_at - make_interval(days => $2) "
        "WHERE id = $1", participant_id, days)
    await conn.execute(
        "UPDATE stage_changes SET at = at - make_interval(days => $2) "
        "WHERE participant_id = $1 AND from_stage IS NULL", participant_id, days)


async def insert_stage_change(
    conn: Conn, participant_id: UUID, from_stage: str | None, to_stage: str,
    exit_reason: str | None, at: datetime, by: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO stage_changes (participant_id, from_stage, to_stage, exit_reason, at, by)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        participant_id, from_stage, to_stage, exit_reason, at, by,
    )


async def notify_change(conn: Conn, change: dict[str, Any]) -> None:
    """Tell every replica's `/stream` about a change; PostgreSQL delivers it on commit."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, orjson.dumps(change).decode())


# --- placements -----------------------------------------------------------------------

_PLACEMENT = """
SELECT pl.id, pl.participant_id, pl.company_id, c.name AS company_name, pl.kind, pl.start,
       pl.planned_end, pl.hours_per_week, pl.status, pl.ended_on, pl.end_reason,
       pl.flagged_at, pl.flag_reason, pl.version,
       p.municipality_code, p.assigned_to
FROM placements pl
JOIN participants p ON p.id = pl.participant_id
LEFT JOIN companies c ON c.id = pl.company_id
"""


async def insert_placement(
    conn: Conn, *, id: UUID, participant_id: UUID, company_id: UUID, kind: str,
    start: date, planned_end: date | None, hours_per_week: float | None, created_by: str,
    at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO placements (id, participant_id, company_id, kind, start, planned_end,
            hours_per_week, status, created_by, created_at, version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, 1)
        """,
        id, participant_id, company_id, kind, start, planned_end, hours_per_week, created_by, at,
    )


async def get_placement(conn: Conn, placement_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_PLACEMENT + " WHERE pl.id = $1", placement_id)


async def active_placements(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        _PLACEMENT + " WHERE pl.participant_id = $1 AND pl.status = 'active' "
        "ORDER BY pl.created_at", participant_id,
    )


async def placements_of(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        _PLACEMENT + " WHERE pl.participant_id = $1 ORDER BY pl.created_at", participant_id
    )


async def end_placement(
    conn: Conn, placement_id: UUID, ended_on: date, reason: str
) -> None:
    await conn.execute(
        """
        UPDATE placements SET status = 'ended', ended_on = $2, end_reason = $3,
            version = version + 1
        WHERE id = $1 AND status = 'active'
        """,
        placement_id, ended_on, reason,
    )


async def flag_active_placements(
    conn: Conn, company_id: UUID, reason: str, at: datetime
) -> list[asyncpg.Record]:
    """Flag the active placements at a company not flagged yet; returns those flagged now."""
    return await conn.fetch(
        """
        WITH flagged AS (
            UPDATE placements SET flagged_at = $3, flag_reason = $2, version = version + 1
            WHERE company_id = $1 AND status = 'active' AND flagged_at IS NULL
            RETURNING id, participant_id
        )
        SELECT f.id, f.participant_id, p.municipality_code, p.assigned_to, p.stage
        FROM flagged f JOIN participants p ON p.id = f.participant_id
        ORDER BY f.id
        """,
        company_id, reason, at,
    )


# --- employments and follow-ups -------------------------------------------------------


async def insert_employment(
    conn: Conn, *, id: UUID, participant_id: UUID, form: str,
    employer_company_id: UUID | None, employer_name: str | None, start: date, at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO employments (id, participant_id, form, employer_company_id, employer_name,
            start, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        id, participant_id, form, employer_company_id, employer_name, start, at,
    )


async def end_current_employment(
    conn: Conn, participant_id: UUID, ended_on: date, at: datetime
) -> None:
    """The job ended early: end it and cancel its follow-ups not yet due."""
    ids = await conn.fetch(
        "UPDATE employments SET ended_on = $2 WHERE participant_id = $1 AND ended_on IS NULL "
        "RETURNING id",
        participant_id, ended_on,
    )
    await conn.execute(
        """
        UPDATE follow_ups SET cancelled_at = $2
        WHERE employment_id = ANY($1::uuid[]) AND due_notified_at IS NULL
          AND recorded_at IS NULL AND cancelled_at IS NULL
        """,
        [r["id"] for r in ids], at,
    )


async def insert_follow_ups(
    conn: Conn, rows: list[tuple[UUID, UUID, UUID, int, date]]
) -> None:
    """(id, participant_id, employment_id, offset_days, due_date) each."""
    await conn.executemany(
        """
        INSERT INTO follow_ups (id, participant_id, employment_id, offset_days, due_date)
        VALUES ($1, $2, $3, $4, $5)
        """,
        rows,
    )


async def cancel_follow_ups(conn: Conn, participant_id: UUID, at: datetime) -> None:
    await conn.execute(
        """
        UPDATE follow_ups SET cancelled_at = $2
        WHERE participant_id = $1 AND due_notified_at IS NULL AND recorded_at IS NULL
          AND cancelled_at IS NULL
        """,
        participant_id, at,
    )


async def claim_due_follow_ups(
    conn: Conn, today: date, limit: int
) -> list[asyncpg.Record]:
    """Due follow-ups nobody has announced yet, locked so two sweeps never take the same.

    The participant rows are locked too (skipping busy ones), in the same order a
    request takes them, so a sweep and a request never wait on each other in a circle.
    """
    return await conn.fetch(
        """
        SELECT f.id, f.participant_id, f.offset_days, f.due_date, e.start AS employment_start,
               p.municipality_code, p.assigned_to, p.stage
        FROM follow_ups f
        JOIN employments e ON e.id = f.employment_id
        JOIN participants p ON p.id = f.participant_id
        WHERE f.due_date <= $1 AND f.due_notified_at IS NULL AND f.cancelled_at IS NULL
        ORDER BY f.due_date, f.id
        LIMIT $2
        FOR UPDATE OF f, p SKIP LOCKED
        """,
        today, limit,
    )


async def mark_follow_up_notified(conn: Conn, follow_up_id: UUID,
                                  at: datetime) -> None:
    await conn.execute("UPDATE follow_ups SET due_notified_at = $2 WHERE id = $1",
                       follow_up_id, at)


async def follow_up_to_record(
    conn: Conn, participant_id: UUID, offset_days: int | None
) -> asyncpg.Record | None:
    """The follow-up of the latest employment with that offset (or the earliest open one)."""
    return await conn.fetchrow(
        """
        SELECT f.* FROM follow_ups f
        WHERE f.employment_id = (SELECT id FROM employments WHERE participant_id = $1
                                 ORDER BY created_at DESC LIMIT 1)
          AND ($2::integer IS NULL OR f.offset_days = $2)
          AND ($2::integer IS NOT NULL OR (f.recorded_at IS NULL AND f.cancelled_at IS NULL))
        ORDER BY f.offset_days LIMIT 1
        FOR UPDATE
        """,
        participant_id, offset_days,
    )


async def record_follow_up(
    conn: Conn, follow_up_id: UUID, still_employed: bool, by: str, at: datetime
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        UPDATE follow_ups SET still_employed = $2, recorded_by = $3, recorded_at = $4
        WHERE id = $1 RETURNING *
        """,
        follow_up_id, still_employed, by, at,
    )
    assert row is not None
    return row


async def follow_ups_of(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM follow_ups WHERE participant_id = $1 ORDER BY due_date, offset_days",
        participant_id,
    )


async def employments_of(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM employments WHERE participant_id = $1 ORDER BY created_at", participant_id
    )


async def stage_changes_of(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM stage_changes WHERE participant_id = $1 ORDER BY id", participant_id
    )


# --- notes and the access log ---------------------------------------------------------


async def insert_note(
    conn: Conn, *, id: UUID, participant_id: UUID, author: str,
    confidential: bool, sealed: bytes, at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO notes (id, participant_id, author, confidential, sealed, created_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        id, participant_id, author, confidential, sealed, at,
    )


async def notes_of(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM notes WHERE participant_id = $1 ORDER BY created_at, id", participant_id
    )


async def log_access(conn: Conn, participant_ids: list[UUID], actor: str,
                     action: str) -> None:
    """One access-log row per participant, in one round trip however many there are."""
    if participant_ids:
        await conn.execute(
            "INSERT INTO access_log (participant_id, actor, action) "
            "SELECT unnest($1::uuid[]), $2, $3",
            participant_ids, actor, action,
        )


async def participant_exists(conn: Conn, participant_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM participants WHERE id = $1",
                                    participant_id))


async def access_log(
    conn: Conn, participant_id: UUID, after: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT id, participant_id, actor, action, at FROM access_log
        WHERE participant_id = $1 AND ($2::bigint IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        participant_id, after, limit,
    )


# --- statistics -----------------------------------------------------------------------
# Each query takes ($1 municipality or NULL, $2 from or NULL, $3 to or NULL), dates inclusive.

_IN_PERIOD = """
    ($1::text IS NULL OR p.municipality_code = $1)
    AND ($2::date IS NULL OR {at}::date >= $2) AND ($3::date IS NULL OR {at}::date <= $3)
"""


async def stats_referred_by_stage(
    conn: Conn, municipality: str | None, start: date | None, end: date | None
) -> list[asyncpg.Record]:
    """The current stage of every case referred in the period."""
    return await conn.fetch(
        "SELECT p.stage, count(*) AS n FROM participants p WHERE "
        + _IN_PERIOD.format(at="p.referred_at") + " GROUP BY p.stage",
        municipality, start, end,
    )


async def stats_employments_by_form(
    conn: Conn, municipality: str | None, start: date | None, end: date | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT e.form, count(*) AS n FROM employments e "
        "JOIN participants p ON p.id = e.participant_id WHERE "
        + _IN_PERIOD.format(at="e.start") + " GROUP BY e.form",
        municipality, start, end,
    )


async def stats_exits(
    conn: Conn, municipality: str | None, start: date | None, end: date | None
) -> list[asyncpg.Record]:
    """Each case closed in the period: the stage it left from and the reason."""
    return await conn.fetch(
        "SELECT s.from_stage, s.exit_reason, count(*) AS n FROM stage_changes s "
        "JOIN participants p ON p.id = s.participant_id WHERE s.to_stage = 'closed' AND "
        + _IN_PERIOD.format(at="s.at") + " GROUP BY s.from_stage, s.exit_reason",
        municipality, start, end,
    )


async def stats_median_days_to_employment(
    conn: Conn, municipality: str | None, start: date | None, end: date | None
) -> float | None:
    """Median days from referral to the first employment, for first employments in the period."""
    value = await conn.fetchval(
        """
        WITH first AS (
            SELECT DISTINCT ON (e.participant_id) e.participant_id, e.start
            FROM employments e ORDER BY e.participant_id, e.created_at
        )
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY f.start - p.referred_at::date)
        FROM first f JOIN participants p ON p.id = f.participant_id WHERE
        """ + _IN_PERIOD.format(at="f.start"),
        municipality, start, end,
    )
    return float(value) if value is not None else None


async def stats_follow_ups(
    conn: Conn, municipality: str | None, start: date | None, end: date | None,
    today: date,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT f.offset_days, "
        "count(*) FILTER (WHERE f.due_date <= $4) AS due, "
        "count(*) FILTER (WHERE f.recorded_at IS NOT NULL) AS recorded, "
        "count(*) FILTER (WHERE f.still_employed) AS still_employed "
        "FROM follow_ups f JOIN participants p ON p.id = f.participant_id "
        "WHERE f.cancelled_at IS NULL AND "
        + _IN_PERIOD.format(at="f.due_date") + " GROUP BY f.offset_days ORDER BY f.offset_days",
        municipality, start, end, today,
    )
