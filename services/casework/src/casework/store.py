"""Casework's SQL, all of it. Every function runs on the caller's connection and transaction,
and loads or saves domain objects."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from asf_kit.db import Conn
from casework.domain import (
    Company,
    Employment,
    FlaggedPlacement,
    FollowUp,
    KnownUser,
    NoteRef,
    Participant,
    Placement,
    Reassignment,
    Row,
    SealedPersonalData,
    StageChange,
)
from casework.outcomes import (
    Count,
    ExitCount,
    FollowUpCount,
    FormCount,
    OutcomeCounts,
    StageCount,
)
from casework.timeline import CaseHistory

CHANGES_CHANNEL = "casework_changes"
"""PostgreSQL NOTIFY channel of case changes, read by `/stream` on every replica."""

# --- the company read model ------------------------------------------------------------


def _company(r: asyncpg.Record) -> Company:
    return Company(id=r["id"], name=r["name"], municipality_code=r["municipality_code"],
                   status=r["status"], training_places=r["training_places"],
                   version=r["version"])


async def upsert_company(conn: Conn, c: Company) -> bool:
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
        c.id, c.name, c.municipality_code, c.status, c.training_places, c.version,
    )
    return bool(applied)


async def get_company(conn: Conn, company_id: UUID, *, for_update: bool = False
                      ) -> Company | None:
    """The company as casework knows it; `for_update` serialises placements at it."""
    sql = ("SELECT id, name, municipality_code, status, training_places, version "
           "FROM companies WHERE id = $1")
    r = await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), company_id)
    return _company(r) if r is not None else None


async def active_companies(conn: Conn) -> list[Company]:
    rows = await conn.fetch(
        "SELECT id, name, municipality_code, status, training_places, version FROM companies "
        "WHERE status = 'active' ORDER BY name, id")
    return [_company(r) for r in rows]


async def count_active_placements(conn: Conn, company_id: UUID) -> int:
    n = await conn.fetchval(
        "SELECT count(*) FROM placements WHERE company_id = $1 AND status = 'active'", company_id
    )
    return int(n)


async def flag_active_placements(
    conn: Conn, company_id: UUID, reason: str, at: datetime
) -> list[FlaggedPlacement]:
    """Flag the active placements at a company not flagged yet; returns those flagged now."""
    rows = await conn.fetch(
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
    return [FlaggedPlacement(placement_id=r["id"], participant_id=r["participant_id"],
                             municipality_code=r["municipality_code"],
                             assigned_to=r["assigned_to"], stage=r["stage"]) for r in rows]


# --- participants: loading -------------------------------------------------------------

_PARTICIPANT = """
SELECT p.id, p.municipality_code, p.referral_source, p.assigned_to, p.stage, p.exit_reason,
       p.referred_at, p.closed_at, p.erased_at, p.created_by, p.version,
       (SELECT coalesce(json_agg(x ORDER BY x.created_at, x.id), '[]') FROM (
            SELECT pl.*, c.name AS company_name FROM placements pl
            LEFT JOIN companies c ON c.id = pl.company_id
            WHERE pl.participant_id = p.id) x) AS placements,
       (SELECT to_jsonb(e) - 'employer_sealed' FROM employments e
        WHERE e.participant_id = p.id ORDER BY e.created_at DESC LIMIT 1) AS employment,
       (SELECT coalesce(json_agg(f ORDER BY f.offset_days), '[]') FROM follow_ups f
        WHERE f.employment_id = (SELECT e.id FROM employments e WHERE e.participant_id = p.id
                                 ORDER BY e.created_at DESC LIMIT 1)) AS follow_ups
"""
_FROM = " FROM participants p "
_WITH_PERSONAL = """, p.personal, k.key_id AS wrapped_key_id, k.wrapped
FROM participants p LEFT JOIN participant_keys k ON k.participant_id = p.id
"""


def _participant(r: asyncpg.Record) -> Participant:
    employment = r["employment"]  # json columns arrive decoded (asf_kit.db)
    sealed = None
    if "personal" in r and r["personal"] is not None and r["wrapped"] is not None:
        sealed = SealedPersonalData(bytes(r["personal"]), r["wrapped_key_id"],
                                    bytes(r["wrapped"]))
    return Participant(
        id=r["id"], municipality_code=r["municipality_code"],
        referral_source=r["referral_source"], assigned_to=r["assigned_to"], stage=r["stage"],
        exit_reason=r["exit_reason"], referred_at=r["referred_at"], closed_at=r["closed_at"],
        erased_at=r["erased_at"], created_by=r["created_by"], version=r["version"],
        placements=[Placement.model_validate(x) for x in r["placements"]],
        employment=Employment.model_validate(employment) if employment else None,
        follow_ups=[FollowUp.model_validate(x) for x in r["follow_ups"]],
        sealed=sealed,
    )


async def load_participant(conn: Conn, participant_id: UUID, *, lock: bool = False,
                           personal: bool = False) -> Participant | None:
    """The participant's case; `lock` for a change, `personal` to read their sealed data."""
    sql = _PARTICIPANT + (_WITH_PERSONAL if personal else _FROM) + " WHERE p.id = $1"
    r = await conn.fetchrow(sql + (" FOR UPDATE OF p" if lock else ""), participant_id)
    return _participant(r) if r is not None else None


async def list_participants(
    conn: Conn, *, municipality_code: str, stage: str | None,
    company_id: UUID | None, assigned_to: str | None, after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Participant]:
    """One page in referral order; `after` is the (referred_at, id) the last page ended on."""
    rows = await conn.fetch(
        _PARTICIPANT + _FROM + """
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
    return [_participant(r) for r in rows]


async def find_participants(conn: Conn, municipality_code: str,
                            hashes: list[bytes]) -> list[Participant]:
    """Every case, open or closed, of the same person in the same municipality."""
    rows = await conn.fetch(
        _PARTICIPANT + _FROM + """
        WHERE p.municipality_code = $1 AND p.identity_hash = ANY($2::bytea[])
        ORDER BY p.referred_at, p.id
        """,
        municipality_code, hashes,
    )
    return [_participant(r) for r in rows]


async def find_open_case(conn: Conn, municipality_code: str, hashes: list[bytes]) -> UUID | None:
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


async def participant_of_placement(conn: Conn, placement_id: UUID) -> UUID | None:
    value = await conn.fetchval("SELECT participant_id FROM placements WHERE id = $1",
                                placement_id)
    return value if isinstance(value, UUID) else None


async def municipality_of(conn: Conn, participant_id: UUID) -> str | None:
    value = await conn.fetchval("SELECT municipality_code FROM participants WHERE id = $1",
                                participant_id)
    return value if isinstance(value, str) else None


async def history(conn: Conn, p: Participant
                  ) -> tuple[CaseHistory, dict[UUID, tuple[bytes, int]]]:
    """Everything recorded about the case, and each note's sealed text with how it was
    sealed (`notes.sealed_with`)."""
    stages = await conn.fetch(
        "SELECT participant_id, from_stage, to_stage, exit_reason, at, by FROM stage_changes "
        "WHERE participant_id = $1 ORDER BY id", p.id)
    placements = await conn.fetch(
        "SELECT pl.*, c.name AS company_name FROM placements pl "
        "LEFT JOIN companies c ON c.id = pl.company_id "
        "WHERE pl.participant_id = $1 ORDER BY pl.created_at, pl.id", p.id)
    employments = await conn.fetch(
        "SELECT * FROM employments WHERE participant_id = $1 ORDER BY created_at", p.id)
    follow_ups = await conn.fetch(
        "SELECT * FROM follow_ups WHERE participant_id = $1 ORDER BY due_date, offset_days", p.id)
    notes = await conn.fetch(
        "SELECT * FROM notes WHERE participant_id = $1 ORDER BY created_at, id", p.id)
    reassignments = await conn.fetch(
        "SELECT participant_id, from_assigned_to, assigned_to, at, by FROM reassignments "
        "WHERE participant_id = $1 ORDER BY id", p.id)
    return CaseHistory(
        assigned_to=p.assigned_to,
        stage_changes=[StageChange(**dict(r)) for r in stages],
        placements=[Placement(**dict(r)) for r in placements],
        employments=[Employment(**dict(r)) for r in employments],
        follow_ups=[FollowUp(**dict(r)) for r in follow_ups],
        notes=[NoteRef(**{k: r[k] for k in NoteRef.model_fields}) for r in notes],
        reassignments=[Reassignment(**dict(r)) for r in reassignments],
    ), {r["id"]: (bytes(r["sealed"]), r["sealed_with"]) for r in notes
        if r["sealed"] is not None}


async def employer_names(conn: Conn, participant_id: UUID
                         ) -> dict[UUID, tuple[bytes | None, str | None]]:
    """Each employment's employer name: sealed, or as written before names were sealed."""
    rows = await conn.fetch(
        "SELECT id, employer_sealed, employer_name FROM employments WHERE participant_id = $1 "
        "AND (employer_sealed IS NOT NULL OR employer_name IS NOT NULL)", participant_id)
    return {r["id"]: (bytes(r["employer_sealed"]) if r["employer_sealed"] else None,
                      r["employer_name"]) for r in rows}


async def seal_employer_name(conn: Conn, employment_id: UUID, sealed: bytes | None) -> None:
    """The employer's name sealed (None: gone, for an erased participant); never in clear."""
    await conn.execute(
        "UPDATE employments SET employer_sealed = $2, employer_name = NULL WHERE id = $1",
        employment_id, sealed)


# --- participants: saving --------------------------------------------------------------


async def add_participant(conn: Conn, p: Participant, sealed: SealedPersonalData,
                          identity_hash: bytes) -> None:
    """A new participant with their sealed data and wrapped key, and what the referral added."""
    await conn.execute(
        """
        INSERT INTO participants (id, municipality_code, referral_source, assigned_to, stage,
            referred_at, personal, identity_hash, key_id, created_by, version, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $6)
        """,
        p.id, p.municipality_code, p.referral_source, p.assigned_to, p.stage, p.referred_at,
        sealed.document, identity_hash, sealed.key_id, p.created_by, p.version,
    )
    await conn.execute(
        "INSERT INTO participant_keys (participant_id, key_id, wrapped) VALUES ($1, $2, $3)",
        p.id, sealed.key_id, sealed.wrapped_key,
    )
    await _save_rows(conn, p)


async def save_participant(conn: Conn, p: Participant) -> None:
    """The case as the aggregate has it now, and every row it added or changed."""
    await conn.execute(
        """
        UPDATE participants SET referral_source = $2, assigned_to = $3, stage = $4,
            exit_reason = $5, closed_at = $6, erased_at = $7, version = $8, updated_at = now()
        WHERE id = $1
        """,
        p.id, p.referral_source, p.assigned_to, p.stage, p.exit_reason, p.closed_at,
        p.erased_at, p.version,
    )
    await _save_rows(conn, p)


async def _save_rows(conn: Conn, p: Participant) -> None:
    added: dict[type[Row], list[Any]] = {}
    for row in p.added:
        added.setdefault(type(row), []).append(row)
    changed = {id(row): row for row in p.changed}.values()
    p.added, p.changed = [], []
    if rows := added.get(StageChange):
        await conn.executemany(
            "INSERT INTO stage_changes (participant_id, from_stage, to_stage, exit_reason, at, "
            "by) VALUES ($1, $2, $3, $4, $5, $6)",
            [(s.participant_id, s.from_stage, s.to_stage, s.exit_reason, s.at, s.by)
             for s in rows])
    if rows := added.get(Reassignment):
        await conn.executemany(
            "INSERT INTO reassignments (participant_id, from_assigned_to, assigned_to, at, by) "
            "VALUES ($1, $2, $3, $4, $5)",
            [(r.participant_id, r.from_assigned_to, r.assigned_to, r.at, r.by) for r in rows])
    if rows := added.get(Placement):
        await conn.executemany(
            "INSERT INTO placements (id, participant_id, company_id, kind, start, planned_end, "
            "hours_per_week, status, created_by, created_at, version) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [(x.id, x.participant_id, x.company_id, x.kind, x.start, x.planned_end,
              x.hours_per_week, x.status, x.created_by, x.created_at, x.version) for x in rows])
    if rows := added.get(Employment):
        # the employer's name is personal data: the service seals it (seal_employer_name)
        await conn.executemany(
            "INSERT INTO employments (id, participant_id, form, employer_company_id, start, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            [(e.id, e.participant_id, e.form, e.employer_company_id, e.start, e.created_at)
             for e in rows])
    if rows := added.get(FollowUp):
        await conn.executemany(
            "INSERT INTO follow_ups (id, participant_id, employment_id, offset_days, due_date) "
            "VALUES ($1, $2, $3, $4, $5)",
            [(f.id, f.participant_id, f.employment_id, f.offset_days, f.due_date) for f in rows])
    for row in changed:
        if isinstance(row, Placement):
            await conn.execute(
                "UPDATE placements SET status = $2, ended_on = $3, end_reason = $4, "
                "version = $5 WHERE id = $1",
                row.id, row.status, row.ended_on, row.end_reason, row.version)
        elif isinstance(row, Employment):
            await conn.execute("UPDATE employments SET ended_on = $2 WHERE id = $1",
                               row.id, row.ended_on)
        elif isinstance(row, FollowUp):
            await conn.execute(
                "UPDATE follow_ups SET due_notified_at = $2, cancelled_at = $3, "
                "recorded_at = $4, recorded_by = $5, still_employed = $6 WHERE id = $1",
                row.id, row.due_notified_at, row.cancelled_at, row.recorded_at,
                row.recorded_by, row.still_employed)


async def update_personal(conn: Conn, participant_id: UUID, document: bytes) -> None:
    """The person's corrected data, sealed again with their key."""
    await conn.execute("UPDATE participants SET personal = $2 WHERE id = $1",
                       participant_id, document)


async def shred_personal_data(conn: Conn, participant_id: UUID) -> None:
    """Erasure: destroy the data key and null every sealed column; the figures stay."""
    await conn.execute("DELETE FROM participant_keys WHERE participant_id = $1", participant_id)
    await conn.execute("UPDATE notes SET sealed = NULL WHERE participant_id = $1", participant_id)
    await conn.execute("UPDATE employments SET employer_sealed = NULL, employer_name = NULL "
                       "WHERE participant_id = $1", participant_id)
    await conn.execute(
        "UPDATE plan_versions SET sealed = NULL WHERE plan_id IN "
        "(SELECT id FROM plans WHERE participant_id = $1)", participant_id)
    await conn.execute(
        "UPDATE plan_reviews SET sealed = NULL WHERE plan_id IN "
        "(SELECT id FROM plans WHERE participant_id = $1)", participant_id)
    await conn.execute(
        "UPDATE participants SET personal = NULL, identity_hash = NULL, key_id = NULL "
        "WHERE id = $1", participant_id)


async def insert_note(conn: Conn, note: NoteRef, sealed: bytes) -> None:
    await conn.execute(
        """
        INSERT INTO notes (id, participant_id, author, confidential, sealed, created_at,
                           sealed_with)
        VALUES ($1, $2, $3, $4, $5, $6, 2)
        """,
        note.id, note.participant_id, note.author, note.confidential, sealed, note.created_at,
    )


async def backdate_case(conn: Conn, participant_id: UUID, days: int) -> None:
    """Move a case's referral `days` back in time (demo data only)."""
    await conn.execute(
        "UPDATE participants SET referred_at = referred_at - make_interval(days => $2) "
        "WHERE id = $1", participant_id, days)
    await conn.execute(
        "UPDATE stage_changes SET at = at - make_interval(days => $2) "
        "WHERE participant_id = $1 AND from_stage IS NULL", participant_id, days)


# --- the worklists --------------------------------------------------------------------


async def list_follow_ups(
    conn: Conn, *, municipality_code: str, assigned_to: str | None, due_before: date | None,
    status: str | None, today: date, after: tuple[date, UUID] | None, limit: int,
) -> list[tuple[FollowUp, str]]:
    """Follow-ups of the municipality's cases (not erased) in due order, each with the case
    worker assigned; `status` as `FollowUp.status` says (none: all but the cancelled)."""
    rows = await conn.fetch(
        """
        SELECT f.*, p.assigned_to AS case_assigned_to FROM follow_ups f
        JOIN participants p ON p.id = f.participant_id
        WHERE p.municipality_code = $1 AND p.erased_at IS NULL
          AND ($2::text IS NULL OR p.assigned_to = $2)
          AND ($3::date IS NULL OR f.due_date < $3)
          AND CASE $4::text
                WHEN 'recorded' THEN f.recorded_at IS NOT NULL
                WHEN 'cancelled' THEN f.recorded_at IS NULL AND f.cancelled_at IS NOT NULL
                WHEN 'due' THEN f.recorded_at IS NULL AND f.cancelled_at IS NULL
                                AND f.due_date <= $5
                WHEN 'upcoming' THEN f.recorded_at IS NULL AND f.cancelled_at IS NULL
                                     AND f.due_date > $5
                ELSE f.recorded_at IS NOT NULL OR f.cancelled_at IS NULL
              END
          AND ($6::date IS NULL OR (f.due_date, f.id) > ($6, $7::uuid))
        ORDER BY f.due_date, f.id
        LIMIT $8
        """,
        municipality_code, assigned_to, due_before, status, today,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [(FollowUp(**{k: r[k] for k in FollowUp.model_fields}), r["case_assigned_to"])
            for r in rows]


async def list_placements(
    conn: Conn, *, municipality_code: str, company_id: UUID | None, flagged: bool | None,
    active: bool | None, after: tuple[datetime, UUID] | None, limit: int,
) -> list[tuple[Placement, str]]:
    """Placements of the municipality's cases in the order they were made, each with the
    case worker assigned."""
    rows = await conn.fetch(
        """
        SELECT pl.*, c.name AS company_name, p.assigned_to AS case_assigned_to
        FROM placements pl
        JOIN participants p ON p.id = pl.participant_id
        LEFT JOIN companies c ON c.id = pl.company_id
        WHERE p.municipality_code = $1
          AND ($2::uuid IS NULL OR pl.company_id = $2)
          AND ($3::boolean IS NULL OR (pl.flagged_at IS NOT NULL) = $3)
          AND ($4::boolean IS NULL OR (pl.status = 'active') = $4)
          AND ($5::timestamptz IS NULL OR (pl.created_at, pl.id) > ($5, $6::uuid))
        ORDER BY pl.created_at, pl.id
        LIMIT $7
        """,
        municipality_code, company_id, flagged, active,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [(Placement(**{k: r[k] for k in Placement.model_fields}), r["case_assigned_to"])
            for r in rows]


# --- the people who signed in ---------------------------------------------------------


async def note_user(conn: Conn, user: KnownUser) -> None:
    await conn.execute(
        """
        INSERT INTO known_users (sub, municipality_code, roles, seen_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (sub) DO UPDATE SET municipality_code = EXCLUDED.municipality_code,
            roles = EXCLUDED.roles, seen_at = EXCLUDED.seen_at
        """,
        user.sub, user.municipality_code, user.roles, user.seen_at,
    )


async def known_user(conn: Conn, sub: str) -> KnownUser | None:
    r = await conn.fetchrow(
        "SELECT sub, municipality_code, roles, seen_at FROM known_users WHERE sub = $1", sub)
    return KnownUser(**dict(r)) if r is not None else None


# --- the stream ------------------------------------------------------------------------


async def add_stream_event(conn: Conn, municipality_code: str, participant_id: UUID,
                           body: dict[str, Any]) -> int:
    """Keep a change for `/stream` and tell every replica about it on commit.

    The id is taken under a transaction-level advisory lock, which the commit releases:
    ids follow the order in which the changes commit, so a client that resumes after
    id N is sent every change committed after N's.
    """
    stream_id = await conn.fetchval(
        """
        WITH serial AS (SELECT pg_advisory_xact_lock(hashtext('casework.stream_events'), 0)),
        kept AS (
            INSERT INTO stream_events (municipality_code, participant_id, body)
            SELECT $2, $3, $4 FROM serial RETURNING id
        )
        SELECT id FROM kept, pg_notify($1, ($4::jsonb || jsonb_build_object('id', id))::text)
        """,
        CHANGES_CHANNEL, municipality_code, participant_id, body,
    )
    return int(stream_id)


async def stream_position(conn: Conn) -> tuple[int, int]:
    """(the newest id handed out, as far as committed changes tell, and the highest id
    pruned)."""
    r = await conn.fetchrow(
        "SELECT greatest((SELECT max(id) FROM stream_events), through) AS newest, "
        "through AS pruned FROM stream_pruned")
    assert r is not None
    return int(r["newest"]), int(r["pruned"])


async def stream_since(conn: Conn, municipality_code: str, after: int,
                       limit: int) -> list[tuple[int, dict[str, Any]]]:
    """The changes in a municipality after id `after`, oldest first."""
    rows = await conn.fetch(
        "SELECT id, body FROM stream_events WHERE municipality_code = $1 AND id > $2 "
        "ORDER BY id LIMIT $3", municipality_code, after, limit)
    return [(r["id"], {**r["body"], "id": r["id"]}) for r in rows]


async def prune_stream(conn: Conn, older_than: datetime) -> int:
    """Forget changes kept since before `older_than`; returns how many."""
    async with conn.transaction():
        r = await conn.fetchrow(
            """
            WITH gone AS (DELETE FROM stream_events WHERE at < $1 RETURNING id)
            SELECT count(*) AS n, max(id) AS through FROM gone
            """, older_than)
        assert r is not None
        if r["through"] is not None:
            await conn.execute("UPDATE stream_pruned SET through = greatest(through, $1)",
                               r["through"])
    return int(r["n"])


async def claim_stream(conn: Conn, stream_id: UUID, sub: str, process_id: UUID, limit: int,
                       stale_before: datetime) -> bool:
    """Count one more open stream of `sub`, unless they already hold `limit` of them
    (on any replica; those of a replica that stopped refreshing them do not count)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('casework.open_streams'), "
                           "hashtext($1))", sub)
        await conn.execute("DELETE FROM open_streams WHERE sub = $1 AND seen_at < $2",
                           sub, stale_before)
        held = await conn.fetchval("SELECT count(*) FROM open_streams WHERE sub = $1", sub)
        if held >= limit:
            return False
        await conn.execute(
            "INSERT INTO open_streams (id, sub, process_id) VALUES ($1, $2, $3)",
            stream_id, sub, process_id)
    return True


async def release_stream(conn: Conn, stream_id: UUID) -> None:
    await conn.execute("DELETE FROM open_streams WHERE id = $1", stream_id)


async def refresh_streams(conn: Conn, stream_ids: list[UUID]) -> None:
    """The streams this replica still serves are alive."""
    if stream_ids:
        await conn.execute("UPDATE open_streams SET seen_at = now() WHERE id = ANY($1::uuid[])",
                           stream_ids)


# --- keys ------------------------------------------------------------------------------


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


async def get_key(conn: Conn, participant_id: UUID) -> tuple[str, bytes] | None:
    r = await conn.fetchrow(
        "SELECT key_id, wrapped FROM participant_keys WHERE participant_id = $1", participant_id)
    return (r["key_id"], bytes(r["wrapped"])) if r is not None else None


# --- resealing what was sealed before -------------------------------------------------


async def notes_to_reseal(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Notes sealed the first way (bound to the participant only), with the wrapped key."""
    return await conn.fetch(
        """
        SELECT n.id, n.participant_id, n.confidential, n.sealed, k.key_id, k.wrapped
        FROM notes n LEFT JOIN participant_keys k ON k.participant_id = n.participant_id
        WHERE n.sealed_with = 1 ORDER BY n.id LIMIT $1
        FOR UPDATE OF n SKIP LOCKED
        """, limit)


async def reseal_note(conn: Conn, note_id: UUID, sealed: bytes | None) -> None:
    await conn.execute("UPDATE notes SET sealed = $2, sealed_with = 2 WHERE id = $1",
                       note_id, sealed)


async def employer_names_to_seal(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Employers' names still in clear, with the participant's wrapped key."""
    return await conn.fetch(
        """
        SELECT e.id, e.participant_id, e.employer_name, k.key_id, k.wrapped
        FROM employments e LEFT JOIN participant_keys k ON k.participant_id = e.participant_id
        WHERE e.employer_name IS NOT NULL ORDER BY e.id LIMIT $1
        FOR UPDATE OF e SKIP LOCKED
        """, limit)


# --- follow-ups due --------------------------------------------------------------------


async def claim_due_follow_ups(conn: Conn, today: date, limit: int) -> list[tuple[UUID, UUID]]:
    """(participant, follow-up) of due follow-ups nobody has announced yet, locked so two
    sweeps never take the same.

    The participant rows are locked too (skipping busy ones), in the same order a
    request takes them, so a sweep and a request never wait on each other in a circle.
    """
    rows = await conn.fetch(
        """
        SELECT f.id, f.participant_id
        FROM follow_ups f
        JOIN participants p ON p.id = f.participant_id
        WHERE f.due_date <= $1 AND f.due_notified_at IS NULL AND f.cancelled_at IS NULL
        ORDER BY f.due_date, f.id
        LIMIT $2
        FOR UPDATE OF f, p SKIP LOCKED
        """,
        today, limit,
    )
    return [(r["participant_id"], r["id"]) for r in rows]


# --- the access log --------------------------------------------------------------------


async def log_access(conn: Conn, participant_ids: list[UUID], actor: str,
                     action: str) -> None:
    """One access-log row per participant, in one round trip however many there are."""
    if participant_ids:
        await conn.execute(
            "INSERT INTO access_log (participant_id, actor, action) "
            "SELECT unnest($1::uuid[]), $2, $3",
            participant_ids, actor, action,
        )


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
# Each query takes ($1 municipality or NULL, $2 from or NULL, $3 to or NULL), dates inclusive,
# and counts by municipality and calendar month (casework.outcomes withholds small groups).

_IN_PERIOD = """
    ($1::text IS NULL OR p.municipality_code = $1)
    AND ($2::date IS NULL OR {at}::date >= $2) AND ($3::date IS NULL OR {at}::date <= $3)
"""
_MONTH = "date_trunc('month', {at})::date"


async def outcome_counts(conn: Conn, municipality: str | None, start: date | None,
                         end: date | None, today: date) -> OutcomeCounts:
    """The counts the outcome figures are made of (see `casework.outcomes`)."""
    args = (municipality, start, end)
    referrals = await conn.fetch(
        "SELECT p.municipality_code, " + _MONTH.format(at="p.referred_at") + " AS month, "
        "p.stage, count(*) AS n FROM participants p WHERE "
        + _IN_PERIOD.format(at="p.referred_at") + " GROUP BY 1, 2, 3", *args)
    employments = await conn.fetch(
        "SELECT p.municipality_code, " + _MONTH.format(at="e.start") + " AS month, e.form, "
        "count(*) AS n FROM employments e JOIN participants p ON p.id = e.participant_id WHERE "
        + _IN_PERIOD.format(at="e.start") + " GROUP BY 1, 2, 3", *args)
    exits = await conn.fetch(
        "SELECT p.municipality_code, " + _MONTH.format(at="s.at") + " AS month, s.from_stage, "
        "s.exit_reason, count(*) AS n FROM stage_changes s "
        "JOIN participants p ON p.id = s.participant_id WHERE s.to_stage = 'closed' AND "
        + _IN_PERIOD.format(at="s.at") + " GROUP BY 1, 2, 3, 4", *args)
    first = """
        WITH first AS (
            SELECT DISTINCT ON (e.participant_id) e.participant_id, e.start
            FROM employments e ORDER BY e.participant_id, e.created_at
        )
    """
    first_employments = await conn.fetch(
        first + "SELECT p.municipality_code, " + _MONTH.format(at="f.start") + " AS month, "
        "count(*) AS n FROM first f JOIN participants p ON p.id = f.participant_id WHERE "
        + _IN_PERIOD.format(at="f.start") + " GROUP BY 1, 2", *args)
    median = await conn.fetchval(
        first + "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY f.start - p.referred_at::date) "
        "FROM first f JOIN participants p ON p.id = f.participant_id WHERE "
        + _IN_PERIOD.format(at="f.start"), *args)
    follow_ups = await conn.fetch(
        "SELECT p.municipality_code, " + _MONTH.format(at="f.due_date") + " AS month, "
        "f.offset_days, "
        "count(*) FILTER (WHERE f.due_date <= $4) AS due, "
        "count(*) FILTER (WHERE f.recorded_at IS NOT NULL) AS recorded, "
        "count(*) FILTER (WHERE f.still_employed) AS still_employed "
        "FROM follow_ups f JOIN participants p ON p.id = f.participant_id "
        "WHERE f.cancelled_at IS NULL AND "
        + _IN_PERIOD.format(at="f.due_date") + " GROUP BY 1, 2, 3", *args, today)
    return OutcomeCounts(
        referrals=[StageCount(r["municipality_code"], r["month"], r["n"], r["stage"])
                   for r in referrals],
        employments=[FormCount(r["municipality_code"], r["month"], r["n"], r["form"])
                     for r in employments],
        exits=[ExitCount(r["municipality_code"], r["month"], r["n"], r["from_stage"],
                         r["exit_reason"]) for r in exits],
        first_employments=[Count(r["municipality_code"], r["month"], r["n"])
                           for r in first_employments],
        median_days_to_employment=float(median) if median is not None else None,
        follow_ups=[FollowUpCount(r["municipality_code"], r["month"], r["due"],
                                  r["offset_days"], r["recorded"], r["still_employed"])
                    for r in follow_ups],
    )
