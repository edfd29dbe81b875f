"""Migration 002 under a release that does not know it: the columns lists filter on follow
the stored document, whoever wrote it (a previous release keeps serving during a rolling
deploy, and writes only what it knows)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


async def test_a_company_written_the_old_way_gets_its_columns(registry_app: FastAPI) -> None:
    pool = registry_app.state.runtime.pool
    company_id = uuid.uuid4()
    document: dict[str, Any] = {
        "id": str(company_id), "name": "Gammal Release AB", "status": "active",
        "registered_by": "old-rep", "reserved_contract_eligible": True,
        "verification": {"level": "verified", "by": "o", "at": "2026-11-01T10:00:00+00:00",
                         "valid_until": "2028-11-01", "note": None},
    }
    # The insert of migration 001's release: no new column named.
    await pool.execute(
        """
        INSERT INTO companies (id, org_number, name, municipality_code, county_code, industries,
            status, training_places, employees_total, document, version, created_at, updated_at)
        VALUES ($1, $2, 'Gammal Release AB', '0180', '01', '{cleaning}', 'active', 1, 1, $3, 1,
                $4, $4)
        """, company_id, f"79{uuid.uuid4().int % 10**8:08d}", document, NOW)
    row = await pool.fetchrow(
        "SELECT needs_review, verification_level, verified_at, valid_until, "
        "reserved_contract_eligible, registered_by FROM companies WHERE id = $1", company_id)
    assert dict(row) == {
        "needs_review": False, "verification_level": "verified",
        "verified_at": datetime(2026, 11, 1, 10, tzinfo=UTC),
        "valid_until": datetime(2028, 11, 1).date(), "reserved_contract_eligible": True,
        "registered_by": "old-rep"}
    document["needs_review"] = True
    document["verification"]["level"] = "self_declared"
    await pool.execute("UPDATE companies SET document = $2 WHERE id = $1", company_id, document)
    row = await pool.fetchrow("SELECT needs_review, verification_level FROM companies "
                              "WHERE id = $1", company_id)
    await pool.execute("DELETE FROM companies WHERE id = $1", company_id)  # not a whole one
    assert dict(row) == {"needs_review": True, "verification_level": "self_declared"}


async def test_a_learning_example_written_the_old_way_is_submitted(
    registry_app: FastAPI,
) -> None:
    pool = registry_app.state.runtime.pool
    example_id = uuid.uuid4()
    document = {"id": str(example_id), "title": "Från förr", "municipality_code": "2480",
                "collaboration_types": ["work_training", "other"]}
    await pool.execute(
        "INSERT INTO learning_examples (id, municipality_code, document, created_at) "
        "VALUES ($1, '2480', $2, $3)", example_id, document, NOW)
    row = await pool.fetchrow(
        "SELECT status, version, county_code, title, collaboration_types, published_at "
        "FROM learning_examples WHERE id = $1", example_id)
    await pool.execute("DELETE FROM learning_examples WHERE id = $1", example_id)
    assert dict(row) == {"status": "submitted", "version": 1, "county_code": "24",
                         "title": "Från förr", "collaboration_types": ["work_training", "other"],
                         "published_at": None}


async def test_a_contact_that_is_not_public_is_stored_as_the_previous_release_wrote_it(
    client: Any, headers: dict[str, dict[str, str]], new_company: Any, registry_app: FastAPI
) -> None:
    """The release before `public` refuses unknown keys in a contact: while it still serves,
    it must read every company without a public contact."""
    c = await new_company(contacts=[{"name": "A", "email": "a@example.se"},
                                    {"name": "B", "public": True}])
    stored = await registry_app.state.runtime.pool.fetchval(
        "SELECT document->'contacts' FROM companies WHERE id = $1", uuid.UUID(c["id"]))
    assert [set(x) for x in stored] == [{"name", "role", "email", "phone"},
                                        {"name", "role", "email", "phone", "public"}]
    read = (await client.get(f"/companies/{c['id']}", headers=headers["officer"])).json()
    assert [x["public"] for x in read["contacts"]] == [False, True]
    assert read == c
