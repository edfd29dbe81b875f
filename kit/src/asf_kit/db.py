"""The asyncpg pool and forward-only SQL migrations.

Migrations are files named `NNN_what.sql`, applied in order, each once, each in
its own transaction, under an advisory lock so two replicas starting together
do not race. The kit's own tables (outbox, inbox) are applied first under the
namespace `kit`.

A migration waits at most `lock_timeout` seconds (`MIGRATION_LOCK_TIMEOUT`, 5 s) for each
lock it takes. An `ALTER TABLE` that queued behind a long transaction would otherwise hold
every later reader and writer of that table in the queue behind it while the previous
release serves; it fails instead (`MigrationLockTimeout`), nothing of it applied, and the
deploy retries it. A file whose first line is `-- migration: no transaction` runs outside a
transaction, one statement after the other (split at a `;` that ends a line): for
`CREATE INDEX CONCURRENTLY`, which a transaction refuses. Such a file must be safe to run
again from the start (`IF NOT EXISTS`, a `DROP INDEX CONCURRENTLY IF EXISTS` first for an
index a failed build left invalid): it is recorded as applied only once every statement
has run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from asf_kit.logging import get_logger

log = get_logger(__name__)

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
Conn = asyncpg.Connection | PoolConnectionProxy
"""A connection, whether taken from a pool or opened alone; what store functions take."""

_MIGRATION_NAME = re.compile(r"^(\d{3,})_[\w-]+\.sql$")
_LOCK_KEY = 727_274_001
NO_TRANSACTION = "-- migration: no transaction"
"""The first line of a migration that must run outside a transaction."""
LOCK_TIMEOUT = 5.0
"""Seconds a migration waits for a lock before it gives up (`MIGRATION_LOCK_TIMEOUT`)."""


class MigrationLockTimeout(RuntimeError):
    """A migration waited longer than its lock timeout; nothing of it was applied."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool without asyncpg's reset query (advisory unlock, CLOSE
    ALL, UNLISTEN, RESET ALL): one round trip less per transaction. asyncpg still rolls back
    an open transaction and drops listeners; the services keep no session state on pooled
    connections (locks are `pg_advisory_xact_lock`, LISTEN has its own connection)."""


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections speak JSON with orjson."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    assert pool is not None
    return pool


async def ensure_database(dsn: str) -> bool:
    """Create the database named in `dsn` if it is missing. Returns True when created."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await conn.close()


def _migration_files(folder: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append((int(m.group(1)), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"two migrations share a number in {folder}")
    return found


def _has_statements(sql: str) -> bool:
    """Whether SQL holds more than `--` comments and blank lines (asyncpg fails on none)."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def _statements(sql: str) -> list[str]:
    """A no-transaction migration's statements: split where a `;` ends a line."""
    out, current = [], []
    for line in sql.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(current))
            current = []
    out.append("\n".join(current))
    return [s for s in out if _has_statements(s)]


async def _apply(conn: Any, sql: str, record: tuple[str, int, str], lock_timeout: float) -> None:
    """Run one migration file and record it, in one transaction, or (a no-transaction
    file) statement by statement, recorded at the end."""
    ms = max(1, int(lock_timeout * 1000))
    insert = "INSERT INTO schema_migrations (namespace, version, name) VALUES ($1, $2, $3)"
    if sql.lstrip().startswith(NO_TRANSACTION):
        await conn.execute(f"SET lock_timeout = {ms}")
        try:
            for statement in _statements(sql):
                await conn.execute(statement)
        finally:
            await conn.execute("RESET lock_timeout")
        await conn.execute(insert, *record)
        return
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = {ms}")
        if _has_statements(sql):  # a file of comments only is recorded, not run
            await conn.execute(sql)
        await conn.execute(insert, *record)


async def migrate(dsn: str, service_migrations: Path,
                  lock_timeout: float = LOCK_TIMEOUT) -> list[str]:
    """Apply what has not been applied yet; returns the names applied now. Raises
    `MigrationLockTimeout` when one waits over `lock_timeout` seconds for a lock."""
    conn: Any = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                namespace  text NOT NULL,
                version    integer NOT NULL,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (namespace, version)
            )
            """
        )
        for namespace, folder in (("kit", KIT_MIGRATIONS), ("service", service_migrations)):
            done = {
                r["version"]
                for r in await conn.fetch(
                    "SELECT version FROM schema_migrations WHERE namespace = $1", namespace
                )
            }
            for version, name, path in _migration_files(folder):
                if version in done:
                    continue
                sql = path.read_text(encoding="utf-8")
                try:
                    await _apply(conn, sql, (namespace, version, name), lock_timeout)
                except asyncpg.exceptions.LockNotAvailableError as e:
                    raise MigrationLockTimeout(
                        f"migration {namespace}/{name} waited over {lock_timeout:g} s for a "
                        "lock (a long transaction holds a table it changes); not applied: "
                        "run it again, or when the table is less busy") from e
                log.info("migration applied", namespace=namespace, migration=name)
                applied_now.append(f"{namespace}/{name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        await conn.close()
    return applied_now
