"""Migrations against the real PostgreSQL: a migration stuck behind a long transaction gives
up after its lock timeout with nothing applied, rather than queue every query on the table
behind it; a no-transaction file builds an index concurrently and is safe to run again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from asf_kit.db import MigrationLockTimeout, migrate
from asf_testing import fresh_database


@pytest.fixture
async def db(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_things.sql").write_text(
        "CREATE TABLE things (id bigint PRIMARY KEY, label text);\n"
        "INSERT INTO things SELECT i, 'thing ' || i FROM generate_series(1, 1000) AS i;\n")
    async with fresh_database(postgres_url, "kit_migrations", folder) as dsn:
        yield dsn, folder


async def _applied(conn: asyncpg.Connection) -> list[str]:
    return [r["name"] for r in await conn.fetch(
        "SELECT name FROM schema_migrations WHERE namespace = 'service' ORDER BY version")]


async def test_a_migration_behind_a_long_transaction_gives_up_and_applies_nothing(
    db: tuple[str, Path],
) -> None:
    dsn, folder = db
    (folder / "002_label_kind.sql").write_text(
        "CREATE TABLE kinds (kind text PRIMARY KEY);\n"
        "ALTER TABLE things ADD COLUMN kind text;\n")
    reader = await asyncpg.connect(dsn)
    writer = await asyncpg.connect(dsn)
    try:
        # The previous release holds a transaction open that read the table: the ALTER
        # cannot get its lock while it lasts.
        reading = reader.transaction()
        await reading.start()
        await reader.fetchval("SELECT count(*) FROM things")
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout, match="002_label_kind") as caught:
            await migrate(dsn, folder, lock_timeout=0.5)
        assert time.monotonic() - started < 5
        assert "not applied" in str(caught.value)
        # Nothing of it: neither the table created before the ALTER nor the record.
        assert await _applied(writer) == ["001_things"]
        assert await writer.fetchval("SELECT to_regclass('kinds')") is None
        # While it waited, writes to the table went on (a queued ALTER would hold them).
        await asyncio.wait_for(
            writer.execute("UPDATE things SET label = 'still written' WHERE id = 1"), 2)
        await reading.rollback()
        assert await migrate(dsn, folder, lock_timeout=0.5) == ["service/002_label_kind"]
        assert await writer.fetchval("SELECT to_regclass('kinds')") is not None
    finally:
        await reader.close()
        await writer.close()


async def test_an_index_is_built_concurrently_outside_a_transaction_and_can_run_again(
    db: tuple[str, Path],
) -> None:
    dsn, folder = db
    (folder / "002_things_by_label.sql").write_text(
        "-- migration: no transaction\n"
        "-- An index for a big table, built while writes go on.\n"
        "DROP INDEX CONCURRENTLY IF EXISTS things_by_label;\n"
        "CREATE INDEX CONCURRENTLY things_by_label\n"
        "    ON things (label);\n")
    conn = await asyncpg.connect(dsn)
    try:
        # A half-built index (a build that failed) is left invalid: the file starts over.
        await conn.execute("CREATE INDEX things_by_label ON things (id)")
        await conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'things_by_label'::regclass")
        assert await migrate(dsn, folder) == ["service/002_things_by_label"]
        index = await conn.fetchrow(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i "
            "WHERE i.indexrelid = 'things_by_label'::regclass")
        assert index is not None and index["indisvalid"]
        assert "(label)" in index["definition"]
        assert await _applied(conn) == ["001_things", "002_things_by_label"]
    finally:
        await conn.close()


async def test_a_concurrent_index_in_a_transaction_is_refused_by_postgresql(
    db: tuple[str, Path],
) -> None:
    """Why the marker exists: without it the file runs in a transaction, which PostgreSQL
    refuses for a concurrent build, and nothing is recorded."""
    dsn, folder = db
    (folder / "002_things_by_label.sql").write_text(
        "CREATE INDEX CONCURRENTLY things_by_label ON things (label);\n")
    with pytest.raises(asyncpg.exceptions.ActiveSQLTransactionError):
        await migrate(dsn, folder)
    conn = await asyncpg.connect(dsn)
    try:
        assert await _applied(conn) == ["001_things"]
    finally:
        await conn.close()
