"""The registry's SQL, all of it, and the transaction a change runs in."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from asf_kit.db import Conn
from registry.domain import Company, Contract, LearningExample

_COMPANY_COLUMNS = """
    id, org_number, name, municipality_code, county_code, industries, status,
    training_places, employees_total, document, version, created_at, updated_at
"""


def _company_row(c: Company) -> tuple[Any, ...]:
    return (
        c.id, c.org_number, c.name, c.municipality_code, c.county.code, c.industries, c.status,
        c.training_places, c.workforce.employees_total, c.model_dump(mode="json"), c.version,
        c.created_at, c.updated_at,
    )


async def insert_company(conn: Conn, c: Company) -> None:
    await conn.execute(
        f"INSERT INTO companies ({_COMPANY_COLUMNS}) "  # noqa: S608 (constant columns)
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        *_company_row(c),
    )


async def insert_companies(conn: Conn, companies: list[Company]) -> None:
    await conn.executemany(
        f"INSERT INTO companies ({_COMPANY_COLUMNS}) "  # noqa: S608 (constant columns)
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
    lock = " FOR UPDATE" if for_update else ""
    sql = "SELECT document FROM companies WHERE id = $1" + lock  # noqa: S608 (constant SQL)
    doc = await conn.fetchval(sql, company_id)
    return Company.model_validate(doc) if doc is not None else None


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


async def list_companies(
    conn: Conn,
    *,
    municipality_code: str | None,
    county_code: str | None,
    industry: str | None,
    status: str | None,
    q: str | None,
    after: tuple[str, UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One page in name order, as stored documents (already in the API's shape, so a read
    needs no model validation); `after` is the (name, id) the previous page ended on."""
    rows = await conn.fetch(
        """
        SELECT document FROM companies
        WHERE ($1::text IS NULL OR municipality_code = $1)
          AND ($2::text IS NULL OR county_code = $2)
          AND ($3::text IS NULL OR industries @> ARRAY[$3::text])
          AND ($4::text IS NULL OR status = $4)
          AND ($5::text IS NULL OR name ILIKE '%' || $5 || '%')
          AND ($6::text IS NULL OR (name, id) > ($6, $7::uuid))
        ORDER BY name, id
        LIMIT $8
        """,
        municipality_code, county_code, industry, status, _like_escape(q),
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [r["document"] for r in rows]


async def get_company_document(conn: Conn, company_id: UUID) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await conn.fetchval(
        "SELECT document FROM companies WHERE id = $1", company_id)
    return doc


def _like_escape(q: str | None) -> str | None:
    if q is None:
        return None
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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


async def insert_learning_example(conn: Conn, e: LearningExample) -> None:
    await conn.execute(
        """
        INSERT INTO learning_examples (id, municipality_code, document, created_at)
        VALUES ($1, $2, $3, $4)
        """,
        e.id, e.municipality_code, e.model_dump(mode="json"), e.created_at,
    )


async def list_learning_examples(
    conn: Conn,
    *,
    municipality_code: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[LearningExample]:
    rows = await conn.fetch(
        """
        SELECT document FROM learning_examples
        WHERE ($1::text IS NULL OR municipality_code = $1)
          AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
        ORDER BY created_at, id
        LIMIT $4
        """,
        municipality_code, after[0] if after else None, after[1] if after else None, limit,
    )
    return [LearningExample.model_validate(r["document"]) for r in rows]


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
