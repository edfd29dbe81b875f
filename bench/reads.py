"""Read latency as the data grows: `GET /companies` (`GET /participants`: `casework_http`)
p99 at 100 requests/s with 10 k, 100 k and 1 M rows. Keyset pagination and indexes should
keep it flat."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from asf_kit.db import migrate
from asf_kit.pagination import encode_cursor
from asf_testing import auth, service_process
from bench.common import AMQP, Result, scratch_database
from bench.load import at_rate
from bench.memory import RssSampler
from registry.demo import COMPANIES, registration
from registry.domain import Company
from registry.municipalities import all_municipalities

ROOT = Path(__file__).resolve().parents[1]
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"


async def fill_companies(dsn: str, n: int, batch: int = 50_000) -> None:
    """n companies, made by SQL from one real document so reads validate as in production."""
    template = Company.register(registration(COMPANIES[0]), "bench", datetime.now(UTC))
    doc = template.model_dump(mode="json")
    munis = list(all_municipalities().values())
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, n, batch):
            await conn.execute(
                """
                INSERT INTO companies (id, org_number, name, municipality_code, county_code,
                    industries, status, training_places, employees_total, document, version,
                    created_at, updated_at)
                SELECT id, org, name, m.code, m.county, ARRAY['cleaning'],
                       CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'active' END, 5, 10,
                       $3::jsonb || jsonb_build_object(
                           'id', id, 'org_number', org, 'name', name,
                           'municipality_code', m.code,
                           'county', jsonb_build_object('code', m.county, 'name', m.county_name),
                           'status', CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'active' END),
                       1, now(), now()
                FROM (
                    SELECT i, gen_random_uuid() AS id,
                           '7' || lpad((i / 10000)::text, 5, '0') || '-'
                               || lpad((i % 10000)::text, 4, '0') AS org,
                           'Företag ' || substr(md5(i::text), 1, 12) AS name
                    FROM generate_series($1::int, $2::int) AS i
                ) g
                JOIN LATERAL (
                    SELECT ($4::text[])[1 + g.i % $7] AS code, ($5::text[])[1 + g.i % $7] AS county,
                           ($6::text[])[1 + g.i % $7] AS county_name
                ) m ON true
                """,
                start, min(start + batch, n) - 1, orjson.dumps(doc).decode(),
                [m.code for m in munis], [m.county_code for m in munis],
                [m.county_name for m in munis], len(munis),
            )
        await conn.execute("ANALYZE companies")
    finally:
        await conn.close()


async def registry_reads(sizes: list[int], rate: float = 100, seconds: float = 10,
                         log_dir: Path = Path("var/bench"), broker_url: str = AMQP,
                         say: Callable[[str], None] = print
                         ) -> tuple[list[Result], dict[str, float]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    memory: dict[str, float] = {}
    headers = auth("case_worker", sub="bench", municipality_code="0180")
    for size in sizes:
        async with scratch_database(f"reads{size}") as dsn:
            await migrate(dsn, REGISTRY_MIGRATIONS)
            await fill_companies(dsn, size)
            conn = await asyncpg.connect(dsn)
            middle = await conn.fetch(
                "SELECT name, id FROM companies ORDER BY name, id OFFSET $1 LIMIT 200", size // 2)
            await conn.close()
            cursors = [encode_cursor([r["name"], str(r["id"])]) for r in middle]
            env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "LOG_LEVEL": "INFO"}
            async with service_process("registry.cli", env, log_dir / f"registry-{size}.log") as p:
                async with httpx.AsyncClient(base_url=p.base_url, headers=headers,
                                             timeout=30) as client:
                    for _ in range(50):  # warm the pool and the caches
                        await client.get("/companies")
                    memory[f"registry_rss_idle_mb_{size}"] = RssSampler.now_mb(p.process.pid)
                    shapes: dict[str, Any] = {
                        "first page": lambda i: ("GET", "/companies", {}),
                        "deep cursor": lambda i: ("GET", "/companies",
                                                  {"params": {"cursor": random.choice(cursors)}}),
                        "municipality filter": lambda i: (
                            "GET", "/companies", {"params": {"municipality_code": "1480"}}),
                    }
                    with RssSampler(p.process.pid) as rss:
                        for label, make in shapes.items():
                            r = await at_rate(client, f"GET /companies {label}, {size:,} rows",
                                              make, rate, seconds)
                            say(f"  {r.name}: p50 {r.pct(50):.1f} p99 {r.pct(99):.1f} ms"
                                f" ({getattr(r, 'failures', 0)} failed)")
                            results.append(r)
                    memory[f"registry_rss_reads_peak_mb_{size}"] = rss.peak_mb
    return results, memory
