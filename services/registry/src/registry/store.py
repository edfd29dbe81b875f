"""The registry's SQL, all of it. Writes take and give domain objects; list reads give the
stored documents, already in the API's shape, so a page needs no model validation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from asf_kit.db import Conn
from registry.domain import Company, Contract
from registry.learning import LearningExample

# --- companies --------------------------------------------------------------------------

_COMPANY_COLUMNS = """
    id, org_number, name, municipality_code, county_code, industries, status,
    training_places, employees_total, document, version, created_at, updated_at
"""
# needs_review, verification_level, verified_at, valid_until, reserved_contract_eligible and
# registered_by are copied out of `document` by the trigger companies_from_document.


def _document(c: Company) -> dict[str, Any]:
    doc = c.model_dump(mode="json")
    for contact in doc["contacts"]:
        # The release before contacts had `public` refuses unknown keys in a contact; while
        # it still serves during a rolling deploy, it reads every company that has no public
        # contact. Missing means false (the default).
        if not contact["public"]:
            del contact["public"]
    return doc


def _company_row(c: Company) -> tuple[Any, ...]:
    return (
        c.id, c.org_number, c.name, c.municipality_code, c.county.code, c.industries, c.status,
        c.training_places, c.workforce.employees_total, _document(c), c.version,
        c.created_at, c.updated_at,
    )


async def insert_company(conn: Conn, c: Company) -> None:
    await conn.execute(
        f"INSERT INTO companies ({_COMPANY_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        *_company_row(c),
    )


async def insert_companies(conn: Conn, companies: list[Company]) -> None:
    await conn.executemany(
        f"INSERT INTO companies ({_COMPANY_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        [_company_row(c) for c in companies],
    )


async def update_company(conn: Conn, c: Company, expected_version: int) -> bool:
    """Write the new state if nobody changed it since `expected_version`."""
    result = await conn.execute(
        """
        UPDATE companies SET org_number = $2, name = $3, municipality_code = $4,
            county_code = $5, industries = $6, status = $7, training_places = $8,
            employees_total = $9, document = $10, version = $11, created_at = $12,
            updated_at = $13
        WHERE id = $1 AND version = $14
        """,
        *_company_row(c), expected_version,
    )
    return bool(result == "UPDATE 1")


async def get_company(
    conn: Conn, company_id: UUID, *, for_update: bool = False
) -> Company | None:
    sql = "SELECT document FROM companies WHERE id = $1" + (" FOR UPDATE" if for_update else "")
    doc = await conn.fetchval(sql, company_id)
    return Company.model_validate(doc) if doc is not None else None


async def get_company_document(conn: Conn, company_id: UUID) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await conn.fetchval(
        "SELECT document FROM companies WHERE id = $1", company_id)
    return doc


async def company_id_by_org_number(conn: Conn, org_number: str) -> UUID | None:
    value = await conn.fetchval("SELECT id FROM companies WHERE org_number = $1", org_number)
    return value if isinstance(value, UUID) else None


async def existing_org_numbers(conn: Conn, org_numbers: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT org_number FROM companies WHERE org_number = ANY($1::text[])", org_numbers
    )
    return {r["org_number"] for r in rows}


async def existing_company_ids(conn: Conn, ids: list[UUID]) -> set[UUID]:
    rows = await conn.fetch("SELECT id FROM companies WHERE id = ANY($1::uuid[])", ids)
    return {r["id"] for r in rows}


@dataclass(frozen=True)
class CompanyFilter:
    municipality_code: str | None = None
    county_code: str | None = None
    industry: str | None = None
    q: str | None = None
    """Part of the name; `%` and `_` are plain text."""
    reserved_contract_eligible: bool | None = None
    status: str | None = None
    needs_review: bool | None = None


@dataclass(frozen=True)
class Readable:
    """Which companies a caller may list: every status, or active ones plus their own."""

    every_status: bool
    own_id: UUID | None = None
    own_sub: str | None = None


def _like_escape(q: str | None) -> str | None:
    if q is None:
        return None
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_companies(
    conn: Conn, f: CompanyFilter, readable: Readable, after: tuple[str, UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One page in name order; `after` is the (name, id) the previous page ended on."""
    rows = await conn.fetch(
        """
        SELECT document FROM companies
        WHERE ($1::text IS NULL OR municipality_code = $1)
          AND ($2::text IS NULL OR county_code = $2)
          AND ($3::text IS NULL OR industries @> ARRAY[$3::text])
          AND ($4::text IS NULL OR status = $4)
          AND ($5::text IS NULL OR name ILIKE '%' || $5 || '%')
          AND ($6::boolean IS NULL OR needs_review = $6)
          AND ($7::boolean IS NULL OR reserved_contract_eligible = $7)
          AND ($8 OR status = 'active' OR id = $9::uuid OR registered_by = $10::text)
          AND ($11::text IS NULL OR (name, id) > ($11, $12::uuid))
        ORDER BY name, id
        LIMIT $13
        """,
        f.municipality_code, f.county_code, f.industry, f.status, _like_escape(f.q),
        f.needs_review, f.reserved_contract_eligible,
        readable.every_status, readable.own_id, readable.own_sub,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [r["document"] for r in rows]


async def active_companies(
    conn: Conn, f: CompanyFilter, after: tuple[str, UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """A page of the public register: active companies only, whatever the filter says."""
    rows = await conn.fetch(
        """
        SELECT document FROM companies
        WHERE status = 'active'
          AND ($1::text IS NULL OR municipality_code = $1)
          AND ($2::text IS NULL OR county_code = $2)
          AND ($3::text IS NULL OR industries @> ARRAY[$3::text])
          AND ($4::text IS NULL OR name ILIKE '%' || $4 || '%')
          AND ($5::boolean IS NULL OR reserved_contract_eligible = $5)
          AND ($6::text IS NULL OR (name, id) > ($6, $7::uuid))
        ORDER BY name, id
        LIMIT $8
        """,
        f.municipality_code, f.county_code, f.industry, _like_escape(f.q),
        f.reserved_contract_eligible, after[0] if after else None,
        after[1] if after else None, limit,
    )
    return [r["document"] for r in rows]


async def active_company(conn: Conn, company_id: UUID) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await conn.fetchval(
        "SELECT document FROM companies WHERE id = $1 AND status = 'active'", company_id)
    return doc


async def active_companies_by_id(conn: Conn, after: UUID | None, limit: int
                                 ) -> list[dict[str, Any]]:
    """The next `limit` active companies in id order after `after`: the open-data export
    reads the register in such batches, each its own short query."""
    rows = await conn.fetch(
        """
        SELECT document FROM companies
        WHERE status = 'active' AND ($1::uuid IS NULL OR id > $1)
        ORDER BY id
        LIMIT $2
        """,
        after, limit,
    )
    return [r["document"] for r in rows]


async def register_changes(conn: Conn) -> int:
    """A number that moves whenever a change to any company commits (trigger
    register_changed)."""
    return int(await conn.fetchval("SELECT changes FROM register_state"))


async def stats_by_county(conn: Conn) -> list[asyncpg.Record]:
    """Companies by status, employees and training places of active companies, per county."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT county_code,
               count(*) FILTER (WHERE status = 'active')       AS active,
               count(*) FILTER (WHERE status = 'pending')      AS pending,
               count(*) FILTER (WHERE status = 'deregistered') AS deregistered,
               count(*) FILTER (WHERE status = 'rejected')     AS rejected,
               coalesce(sum(employees_total) FILTER (WHERE status = 'active'), 0) AS employees,
               coalesce(sum(training_places) FILTER (WHERE status = 'active'), 0) AS training_places
        FROM companies GROUP BY county_code
        """
    )
    return rows


# --- verification expiry ----------------------------------------------------------------


async def claim_expiry_warnings(conn: Conn, today: date, horizon: date, batch: int
                                ) -> list[Company]:
    """Verified companies whose verification runs out between `today` and `horizon` and
    that have not been warned for this decision, locked; other sweeps skip them."""
    rows = await conn.fetch(
        """
        SELECT document FROM companies c
        WHERE status = 'active' AND verification_level <> 'self_declared'
          AND valid_until BETWEEN $1 AND $2
          AND NOT EXISTS (SELECT 1 FROM verification_notices n
                          WHERE n.company_id = c.id AND n.decided_at = c.verified_at
                            AND n.kind = 'expiring')
        ORDER BY valid_until, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
        """,
        today, horizon, batch,
    )
    return [Company.model_validate(r["document"]) for r in rows]


async def claim_expired(conn: Conn, today: date, batch: int) -> list[Company]:
    """Verified companies whose `valid_until` is before `today`, locked."""
    rows = await conn.fetch(
        """
        SELECT document FROM companies
        WHERE status = 'active' AND verification_level <> 'self_declared'
          AND valid_until < $1
        ORDER BY valid_until, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        today, batch,
    )
    return [Company.model_validate(r["document"]) for r in rows]


async def record_notice(conn: Conn, company: Company, kind: str, at: datetime) -> bool:
    """True the first time for this company, decision and kind; False ever after."""
    v = company.verification
    assert v.at is not None and v.valid_until is not None
    done = await conn.fetchval(
        """
        INSERT INTO verification_notices (company_id, decided_at, kind, valid_until, sent_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        company.id, v.at, kind, v.valid_until, at,
    )
    return bool(done)


# --- the public register's rate limit ---------------------------------------------------


async def count_request(conn: Conn, client: str, window_seconds: int) -> tuple[int, int]:
    """Count one request of `client` in the current window: (requests so far in it, seconds
    until it ends). One clock for every replica: the database's. Run it on its own, outside
    a transaction: one client's counter is one row, locked only while the statement runs."""
    row = await conn.fetchrow(
        """
        INSERT INTO public_rate_limits AS r (client, window_start, hits)
        VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2::int) * $2::int), 1)
        ON CONFLICT (client, window_start) DO UPDATE SET hits = r.hits + 1
        RETURNING hits,
                  ceil(extract(epoch FROM r.window_start + make_interval(secs => $2::int) - now()))
                      AS left
        """,
        client, window_seconds,
    )
    assert row is not None
    return int(row["hits"]), max(1, int(row["left"]))


async def forget_old_requests(conn: Conn, window_seconds: int) -> None:
    await conn.execute(
        "DELETE FROM public_rate_limits "
        "WHERE window_start < now() - make_interval(secs => $1::int * 2)", window_seconds)


# --- contracts --------------------------------------------------------------------------


async def insert_contract(conn: Conn, c: Contract) -> None:
    await conn.execute(
        """
        INSERT INTO contracts (id, company_id, municipality_code, reserved, document, created_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        c.id, c.company_id, c.municipality_code, c.reserved, c.model_dump(mode="json"),
        c.created_at,
    )


async def list_contracts(
    conn: Conn,
    *,
    company_id: UUID | None,
    municipality_code: str | None,
    reserved: bool | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Contract]:
    rows = await conn.fetch(
        """
        SELECT document FROM contracts
        WHERE ($1::uuid IS NULL OR company_id = $1)
          AND ($2::text IS NULL OR municipality_code = $2)
          AND ($3::boolean IS NULL OR reserved = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
        ORDER BY created_at, id
        LIMIT $6
        """,
        company_id, municipality_code, reserved,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [Contract.model_validate(r["document"]) for r in rows]


# --- learning examples ------------------------------------------------------------------


# status, version, county_code, title, collaboration_types and published_at are copied out
# of `document` by the trigger learning_examples_from_document.


async def insert_learning_example(conn: Conn, e: LearningExample) -> None:
    await conn.execute(
        """
        INSERT INTO learning_examples (id, municipality_code, document, created_at)
        VALUES ($1, $2, $3, $4)
        """,
        e.id, e.municipality_code, e.model_dump(mode="json"), e.created_at,
    )


async def update_learning_example(conn: Conn, e: LearningExample, expected_version: int
                                  ) -> bool:
    result = await conn.execute(
        "UPDATE learning_examples SET document = $2 WHERE id = $1 AND version = $3",
        e.id, e.model_dump(mode="json"), expected_version,
    )
    return bool(result == "UPDATE 1")


async def get_learning_example(conn: Conn, example_id: UUID, *, for_update: bool = False
                               ) -> LearningExample | None:
    sql = "SELECT document FROM learning_examples WHERE id = $1" + (
        " FOR UPDATE" if for_update else "")
    doc = await conn.fetchval(sql, example_id)
    return LearningExample.model_validate(doc) if doc is not None else None


async def list_learning_examples(
    conn: Conn,
    *,
    municipality_code: str | None,
    status: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[LearningExample]:
    rows = await conn.fetch(
        """
        SELECT document FROM learning_examples
        WHERE ($1::text IS NULL OR municipality_code = $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
        ORDER BY created_at, id
        LIMIT $5
        """,
        municipality_code, status, after[0] if after else None, after[1] if after else None,
        limit,
    )
    return [LearningExample.model_validate(r["document"]) for r in rows]


@dataclass(frozen=True)
class ExampleFilter:
    q: str | None = None
    collaboration_type: str | None = None
    county_code: str | None = None
    municipality_code: str | None = None


async def published_learning_examples(
    conn: Conn, f: ExampleFilter, before: tuple[datetime, UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """A page of the handbook, newest first; `before` is where the previous page ended."""
    rows = await conn.fetch(
        """
        SELECT document FROM learning_examples
        WHERE status = 'published'
          AND ($1::text IS NULL OR title ILIKE '%' || $1 || '%'
               OR document->>'summary' ILIKE '%' || $1 || '%')
          AND ($2::text IS NULL OR collaboration_types @> ARRAY[$2::text])
          AND ($3::text IS NULL OR county_code = $3)
          AND ($4::text IS NULL OR municipality_code = $4)
          AND ($5::timestamptz IS NULL OR (published_at, id) < ($5, $6::uuid))
        ORDER BY published_at DESC, id DESC
        LIMIT $7
        """,
        _like_escape(f.q), f.collaboration_type, f.county_code, f.municipality_code,
        before[0] if before else None, before[1] if before else None, limit,
    )
    return [r["document"] for r in rows]


async def published_learning_example(conn: Conn, example_id: UUID) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await conn.fetchval(
        "SELECT document FROM learning_examples WHERE id = $1 AND status = 'published'",
        example_id)
    return doc


async def active_company_names(conn: Conn, ids: list[UUID]) -> dict[str, str]:
    """id (as text) → name of those of `ids` that are active."""
    rows = await conn.fetch(
        "SELECT id, name FROM companies WHERE id = ANY($1::uuid[]) AND status = 'active'", ids)
    return {str(r["id"]): r["name"] for r in rows}
