"""Casework over HTTP, the service running as its own process: case-worker writes
(`POST /participants/{id}/transitions`) at saturation and at 100 requests/s, and
`GET /participants` p99 at 100 requests/s as the participants grow (10 k, 100 k, 1 M).

Participants are made by SQL (COPY) with personal data sealed by the real
`casework.crypto.Vault`, one data key per participant as the service does it, so rows have
their real size; 10 % of them in Stockholm (0180), where the bench case worker works, the
rest spread over the other municipalities.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from asf_kit.db import migrate
from asf_kit.pagination import encode_cursor
from asf_testing import DATA_KEY, auth, service_process
from bench.common import Result
from bench.load import at_rate, saturate
from bench.memory import RssSampler
from casework.crypto import Vault
from registry.municipalities import all_municipalities

ROOT = Path(__file__).resolve().parents[1]
CASEWORK_MIGRATIONS = ROOT / "services" / "casework" / "migrations"
HOME = "0180"
STAGES = ("referred", "assessment", "in_training", "employed", "closed")

Say = Callable[[str], None]


def casework_env(dsn: str, broker_url: str) -> dict[str, str]:
    return {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "CASEWORK_DATA_KEY": DATA_KEY,
            "LOG_LEVEL": "INFO", "FOLLOW_UP_SWEEP_INTERVAL": "0",
            "QUEUE_NAMESPACE": f"bench{uuid.uuid4().hex[:6]}."}


async def fill_participants(dsn: str, n: int, *, stage: str | None = None,
                            home_share: float = 0.10, batch: int = 20_000) -> None:
    """n participants with sealed personal data and wrapped data keys, by COPY."""
    vault = Vault.from_settings(DATA_KEY, "k1")
    munis = [m for m in all_municipalities() if m != HOME]
    base = datetime(2024, 1, 1, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, n, batch):
            people, keys = [], []
            for i in range(start, min(start + batch, n)):
                pid = uuid.uuid4()
                data_key, wrapped = vault.new_data_key(pid)
                born = date(1940, 1, 1) + timedelta(days=i // 10_000)  # unique per row
                number = f"{born:%Y%m%d}-{i % 10_000:04d}"
                personal = {"given_name": "Testa", "family_name": f"Testsson {i}",
                            "personal_identity_number": number, "phone": "070-123 45 67",
                            "email": f"testa{i}@example.se"}
                muni = HOME if random.random() < home_share else munis[i % len(munis)]
                at = base + timedelta(seconds=i * 17)
                people.append((
                    pid, muni, "social_services", f"cw-{i % 40}",
                    stage or STAGES[i % len(STAGES)], at,
                    vault.seal(data_key, pid, "personal", personal),
                    vault.identity_hash(number.replace("-", "")), "k1", "bench", 1, at))
                keys.append((pid, wrapped.key_id, wrapped.wrapped))
            await conn.copy_records_to_table(
                "participants", records=people, columns=[
                    "id", "municipality_code", "referral_source", "assigned_to", "stage",
                    "referred_at", "personal", "identity_hash", "key_id", "created_by",
                    "version", "updated_at"])
            await conn.copy_records_to_table("participant_keys", records=keys,
                                             columns=["participant_id", "key_id", "wrapped"])
        await conn.execute("ANALYZE participants")
        await conn.execute("ANALYZE participant_keys")
    finally:
        await conn.close()


async def fill_participants_sql(dsn: str, n: int, *, home_share: float = 0.10,
                                stage: str | None = None) -> None:
    """n participants made by one SQL statement (fast at 1 M): the municipality, stage,
    case worker and referral time spread as `fill_participants` spreads them; the sealed
    personal data and the wrapped key are one real sealed document and key copied (the list
    never opens them), the identity hash unique per row."""
    vault = Vault.from_settings(DATA_KEY, "k1")
    pid = uuid.uuid4()
    data_key, wrapped = vault.new_data_key(pid)
    sealed = vault.seal(data_key, pid, "personal", {
        "given_name": "Testa", "family_name": "Testsson 1",
        "personal_identity_number": "19400101-0001", "phone": "070-123 45 67",
        "email": "testa1@example.se"})
    munis = [m for m in all_municipalities() if m != HOME]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO participants (id, municipality_code, referral_source, assigned_to,
                    stage, referred_at, personal, identity_hash, key_id, created_by, version,
                    updated_at)
                SELECT gen_random_uuid(),
                       CASE WHEN random() < $2 THEN $3 ELSE ($4::text[])[1 + i % $5] END,
                       'social_services', 'cw-' || (i % 40), ($6::text[])[1 + i % 5],
                       timestamptz '2024-01-01 00:00+00' + make_interval(secs => i * 17),
                       $7, sha256(int8send(i::bigint)), 'k1', 'bench', 1,
                       timestamptz '2024-01-01 00:00+00' + make_interval(secs => i * 17)
                FROM generate_series(1, $1::int) AS i
                """, n, home_share, HOME, munis, len(munis),
                [stage] * 5 if stage else list(STAGES), sealed)
            await conn.execute(
                "INSERT INTO participant_keys (participant_id, key_id, wrapped) "
                "SELECT id, $1, $2 FROM participants", wrapped.key_id, wrapped.wrapped)
        await conn.execute("ANALYZE participants")
        await conn.execute("ANALYZE participant_keys")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def seeded_participants(size: int) -> AsyncIterator[str]:
    """A casework database with `size` participants, kept between runs
    (`bench_keep_participants_<size>`): made and seeded by SQL the first time, reused after
    (only the access log the reads write grows)."""
    from bench.common import PG

    name = f"bench_keep_participants_{size}"
    admin = await asyncpg.connect(PG)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = PG.rsplit("/", 1)[0] + f"/{name}"
    await migrate(dsn, CASEWORK_MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        have = await conn.fetchval("SELECT count(*) FROM participants")
        if have != size:
            await conn.execute("TRUNCATE participants, participant_keys, access_log CASCADE")
    finally:
        await conn.close()
    if have != size:
        await fill_participants_sql(dsn, size)
    yield dsn


async def casework_writes(pg_dsn_factory: Any, broker_url: str, *, seconds: float,
                          rate: float, log_dir: Path, say: Say = print, rounds: int = 1,
                          ) -> tuple[list[Result], dict[str, float]]:
    """Transitions referred → assessment, each on a participant of its own: the raw write
    (`bench.raw_http`: Starlette + asyncpg, the same SQL) and casework, each a process of its
    own on a database of its own, interleaved round by round; CPU of the serving process per
    request beside each figure."""
    from bench.common import scratch_database
    from bench.public import measured

    headers = auth("case_worker", sub="bench-cw", municipality_code=HOME)
    results: list[Result] = []
    memory: dict[str, float] = {}
    sides = (("raw write (Starlette + asyncpg)", "bench.raw_http"), ("casework", "casework.cli"))
    per_side = int(max(rate, 600) * seconds * 3 * rounds) + 2000
    async with scratch_database("cwwritesraw") as raw_dsn, \
            scratch_database("cwwrites") as dsn:
        ids: dict[str, Any] = {}
        for label, db in zip(("raw", "casework"), (raw_dsn, dsn), strict=True):
            await migrate(db, CASEWORK_MIGRATIONS)
            await fill_participants_sql(db, per_side, stage="referred", home_share=1.0)
            conn = await asyncpg.connect(db)
            ids[label] = iter([str(r["id"]) for r in await conn.fetch(
                "SELECT id FROM participants")])
            await conn.close()
        for r in range(rounds):
            for (name, module), db, key in zip(sides, (raw_dsn, dsn), ("raw", "casework"),
                                               strict=True):
                pool = ids[key]

                def make(_: int, pool: Any = pool) -> tuple[str, str, dict[str, Any]]:
                    return ("POST", f"/participants/{next(pool)}/transitions",
                            {"json": {"to": "assessment"}})

                async with service_process(module, casework_env(db, broker_url),
                                           log_dir / f"casework-writes-{key}.log") as p:
                    pid = p.process.pid
                    async with httpx.AsyncClient(base_url=p.base_url, headers=headers,
                                                 timeout=30) as client:
                        for i in range(100):
                            await client.request(*make(i)[:2], **make(i)[2])
                        with RssSampler(pid) as rss:
                            sat = await measured(saturate(
                                client, f"{name}: POST …/transitions, saturation "
                                "(16 in flight)", make, seconds), pid)
                            paced = await measured(at_rate(
                                client, f"{name}: POST …/transitions at {rate:.0f}/s",
                                make, rate, seconds), pid)
                        if key == "casework":
                            memory["casework_rss_writes_peak_mb"] = rss.peak_mb
                for res in (sat, paced):
                    say(f"  round {r + 1}: {res.name}: {res.rate:,.0f}/s p50 {res.pct(50):.1f}"
                        f" p99 {res.pct(99):.1f} ms, CPU {res.cpu_ms:.2f} ms each")  # type: ignore[attr-defined]
                    results.append(res)
    return results, memory


@contextlib.asynccontextmanager
async def commits_not_waiting_for_the_disk(dsn: str) -> AsyncIterator[None]:
    """The database's `synchronous_commit` off for the connections opened meanwhile (bench
    only): a commit returns before its WAL is flushed, so a read's access-log rows no
    longer wait for the disk. Not the product: a crash could lose the last rows."""
    name = dsn.rsplit("/", 1)[1]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        yield
    finally:
        await conn.execute(f'ALTER DATABASE "{name}" RESET synchronous_commit')
        await conn.close()


async def casework_reads(sizes: list[int], broker_url: str, *, rate: float, seconds: float,
                         log_dir: Path, say: Say = print, what_if: bool = False,
                         ) -> tuple[list[Result], dict[str, float]]:
    """`GET /participants` in three shapes at each size; with `what_if`, each size again with
    commits not waiting for the disk (`commits_not_waiting_for_the_disk`), right after."""
    results: list[Result] = []
    memory: dict[str, float] = {}
    for size in sizes:
        async with seeded_participants(size) as dsn:
            results += await _reads_of(dsn, size, broker_url, rate, seconds, log_dir, say,
                                       memory)
            if what_if:
                async with commits_not_waiting_for_the_disk(dsn):
                    results += await _reads_of(dsn, size, broker_url, rate, seconds, log_dir,
                                               say, {}, " (what if: commits not waiting "
                                               "for the disk)")
    return results, memory


async def _reads_of(dsn: str, size: int, broker_url: str, rate: float, seconds: float,
                    log_dir: Path, say: Say, memory: dict[str, float], suffix: str = ""
                    ) -> list[Result]:
    headers = auth("case_worker", sub="bench-cw", municipality_code=HOME)
    results: list[Result] = []
    conn = await asyncpg.connect(dsn)
    home = await conn.fetchval(
        "SELECT count(*) FROM participants WHERE municipality_code = $1", HOME)
    middle = await conn.fetch(
        "SELECT referred_at, id FROM participants WHERE municipality_code = $1 "
        "ORDER BY referred_at, id OFFSET $2 LIMIT 200", HOME, home // 2)
    await conn.close()
    cursors = [encode_cursor([r["referred_at"].isoformat(), str(r["id"])])
               for r in middle]
    async with service_process("casework.cli", casework_env(dsn, broker_url),
                               log_dir / f"casework-reads-{size}.log") as p:
        async with httpx.AsyncClient(base_url=p.base_url, headers=headers,
                                     timeout=30) as client:
            for _ in range(50):
                await client.get("/participants")
            memory[f"casework_rss_idle_mb_{size}"] = RssSampler.now_mb(p.process.pid)
            shapes: dict[str, Any] = {
                "first page": lambda i: ("GET", "/participants", {}),
                "deep cursor": lambda i: ("GET", "/participants",
                                          {"params": {"cursor": random.choice(cursors)}}),
                "stage filter": lambda i: ("GET", "/participants",
                                           {"params": {"stage": "employed"}}),
            }
            with RssSampler(p.process.pid) as rss:
                for label, make in shapes.items():
                    r = await at_rate(client, f"GET /participants {label}, {size:,} "
                                      f"rows{suffix}", make, rate, seconds)
                    say(f"  {r.name}: p50 {r.pct(50):.1f} p99 {r.pct(99):.1f} ms"
                        f" ({getattr(r, 'failures', 0)} failed)")
                    results.append(r)
            memory[f"casework_rss_reads_peak_mb_{size}"] = rss.peak_mb
    return results
