"""The public register as the data grows (issue 13): `GET /public/companies` at 100
requests/s and the open-data CSV export, at 10 k and 100 k active companies, each beside the
raw PostgreSQL query it runs (the same SQL through asyncpg in the bench process, no HTTP);
and the registry's resident memory while it streams the export at 1 k, 10 k and 100 k, which
should stay flat.

    uv run python bench/run.py --only public [--sizes 10000,100000]
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from asf_kit.db import create_pool, migrate
from asf_kit.pagination import encode_cursor
from asf_testing import service_process
from bench.common import AMQP, Result, now, scratch_database
from bench.load import at_rate
from bench.memory import RssSampler
from bench.reads import fill_companies
from registry import store
from registry.store import CompanyFilter

ROOT = Path(__file__).resolve().parents[1]
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"
EXPORT_SQL = "SELECT document FROM companies WHERE status = 'active' ORDER BY id"


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) of a process so far; this one by default."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(run: Awaitable[Result], pid: int | None = None) -> Result:
    """`run`, with the CPU it cost the serving process per request (`cpu_ms`): on a busy
    machine latency is mostly waiting for a core, CPU per request is the code's own cost."""
    before = process_cpu(pid)
    result = await run
    result.cpu_ms = (process_cpu(pid) - before) * 1000 / max(result.count, 1)  # type: ignore[attr-defined]
    return result


async def raw_at_rate(name: str, call: Callable[[], Awaitable[Any]], rate: float,
                      seconds: float) -> Result:
    """Open-model load on a coroutine, as `bench.load.at_rate` does for HTTP."""
    latencies: list[float] = []

    async def one() -> None:
        t0 = now()
        await call()
        latencies.append(now() - t0)

    tasks = []
    started = now()
    for i in range(int(rate * seconds)):
        delay = started + i / rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return Result(name, len(latencies), now() - started, latencies)


async def one_at_a_time(name: str, call: Callable[[], Awaitable[Any]], runs: int) -> Result:
    latencies = []
    started = now()
    for _ in range(runs):
        t0 = now()
        await call()
        latencies.append(now() - t0)
    return Result(name, runs, now() - started, latencies)


async def _export_rows(pool: asyncpg.Pool) -> int:
    """The export's queries: the active register in id order, 500 at a time."""
    n = 0
    after = None
    while True:
        async with pool.acquire() as conn:
            batch = await store.active_companies_by_id(conn, after, 500)
        n += len(batch)
        if len(batch) < 500:
            return n
        after = batch[-1]["id"]


async def _copy_csv(pool: asyncpg.Pool) -> int:
    out = io.BytesIO()
    async with pool.acquire() as conn:
        await conn.copy_from_query(EXPORT_SQL, output=out, format="csv")
    return len(out.getvalue())


async def public_register(sizes: list[int], memory_sizes: list[int], rate: float = 100,
                          seconds: float = 10, log_dir: Path = Path("var/bench"),
                          broker_url: str = AMQP, say: Callable[[str], None] = print
                          ) -> tuple[list[Result], dict[str, float]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    memory: dict[str, float] = {}

    async def keep(run: Awaitable[Result], pid: int | None = None) -> None:
        r = await measured(run, pid)
        say(f"  {r.name}: {r.rate:,.1f}/s p50 {r.pct(50):.1f} p99 {r.pct(99):.1f} ms, CPU "
            f"{r.cpu_ms:.2f} ms each ({getattr(r, 'failures', 0)} failed)")  # type: ignore[attr-defined]
        results.append(r)

    for size in sorted(set(sizes) | set(memory_sizes)):
        async with scratch_database(f"public{size}") as dsn:
            await migrate(dsn, REGISTRY_MIGRATIONS)
            await fill_companies(dsn, size * 3 // 2)  # every third is pending: `size` active
            pool = await create_pool(dsn, 2, 4)
            try:
                active = await pool.fetchval("SELECT count(*) FROM companies "
                                             "WHERE status = 'active'")
                middle = await pool.fetch(
                    "SELECT name, id FROM companies WHERE status = 'active' "
                    "ORDER BY name, id OFFSET $1 LIMIT 200", active // 2)
                cursors = [(r["name"], r["id"]) for r in middle]
                full = size in sizes
                if full:
                    await keep(raw_at_rate(
                        f"raw: the first page's query, {active:,} active", lambda: _page(pool),
                        rate, seconds))
                    await keep(raw_at_rate(
                        f"raw: a deep page's query, {active:,} active",
                        lambda: _page(pool, random.choice(cursors)), rate, seconds))
                runs = 3 if size >= 100_000 else 5
                await keep(one_at_a_time(f"raw: the export's query, {active:,} active",
                                         lambda: _export_rows(pool), runs))
                await keep(one_at_a_time(f"raw: PostgreSQL's own CSV (COPY), {active:,} active",
                                         lambda: _copy_csv(pool), runs))
            finally:
                await pool.close()

            # The rate limit counts every request as in production, and never refuses one.
            env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "LOG_LEVEL": "WARNING",
                   "PUBLIC_RATE_LIMIT": "1000000000", "VERIFICATION_SWEEP_INTERVAL": "0"}
            async with service_process("registry.cli", env, log_dir / f"public-{size}.log") as p:
                async with httpx.AsyncClient(base_url=p.base_url, timeout=120) as client:
                    for _ in range(50):
                        await client.get("/public/companies")
                    pid = p.process.pid
                    memory[f"registry_rss_idle_mb_public_{size}"] = RssSampler.now_mb(pid)
                    if full:
                        wire = [encode_cursor([n, str(i)]) for n, i in cursors]
                        await keep(at_rate(
                            client, f"GET /public/companies first page, {active:,} active",
                            lambda i: ("GET", "/public/companies", {}), rate, seconds), pid)
                        await keep(at_rate(
                            client, f"GET /public/companies deep cursor, {active:,} active",
                            lambda i: ("GET", "/public/companies",
                                       {"params": {"cursor": random.choice(wire)}}),
                            rate, seconds), pid)
                        await keep(at_rate(
                            client, f"GET /public/companies county filter, {active:,} active",
                            lambda i: ("GET", "/public/companies",
                                       {"params": {"county_code": "14"}}), rate, seconds),
                            pid)
                        etag = (await client.get("/public/companies.csv")).headers["etag"]
                        await keep(at_rate(
                            client, f"GET /public/companies.csv If-None-Match (304), "
                            f"{active:,} active",
                            lambda i: ("GET", "/public/companies.csv",
                                       {"headers": {"If-None-Match": etag}}),
                            rate, seconds, expect=304), pid)
                    sizes_seen: list[int] = []

                    async def download() -> None:
                        got = 0
                        async with client.stream("GET", "/public/companies.csv") as r:
                            async for chunk in r.aiter_bytes():
                                got += len(chunk)
                        sizes_seen.append(got)

                    with RssSampler(pid, interval=0.05) as rss:
                        t0 = time.perf_counter()
                        await keep(one_at_a_time(
                            f"GET /public/companies.csv whole, {active:,} active", download,
                            runs), pid)
                        export_s = (time.perf_counter() - t0) / runs
                    memory[f"registry_rss_export_peak_mb_{size}"] = rss.peak_mb
                    say(f"  export: {sizes_seen[-1] / 1e6:.1f} MB, {export_s:.2f} s each, "
                        f"{active / export_s:,.0f} companies/s; RSS idle "
                        f"{memory[f'registry_rss_idle_mb_public_{size}']} MB, peak while "
                        f"exporting {rss.peak_mb} MB")
    return results, memory


async def _page(pool: asyncpg.Pool, after: tuple[str, Any] | None = None) -> int:
    async with pool.acquire() as conn:
        return len(await store.active_companies(conn, CompanyFilter(), after, 51))
