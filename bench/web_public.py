"""The web app's public pages as the register grows (issue 13): `/register` (the front page
with its county chart, and a county filter) at a steady rate beside the registry calls it
makes (`/public/stats` at 2 a second: the web app keeps its answer for a minute), and the
open-data CSV streamed through the web app: the web app's resident memory while it passes
the file on, which should stay flat from 1 k to 100 k companies (it never holds the file
whole), and how long the download takes through it and straight from the registry.

The registry and the web app run as their own processes; the companies are made by SQL
(`bench.reads.fill_companies`: every third pending). Not a test: run it alone.

    uv run python bench/web_public.py [--sizes 1000,100000] [--rate 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

# Run as a script, this file's folder comes first on the path: bench.* is imported from the
# repository root instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from asf_kit.db import migrate  # noqa: E402
from asf_testing import free_port, service_process  # noqa: E402
from bench.common import AMQP, Result, scratch_database  # noqa: E402
from bench.load import at_rate  # noqa: E402
from bench.memory import RssSampler  # noqa: E402
from bench.reads import fill_companies  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"


async def _healthy(base_url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base_url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base_url} did not start")


@contextlib.asynccontextmanager
async def _web(registry_url: str, logs: Path) -> AsyncIterator[Any]:
    down = f"http://127.0.0.1:{free_port()}"  # casework and notifications: not needed here
    env = {"REGISTRY_URL": registry_url, "CASEWORK_URL": down, "NOTIFICATIONS_URL": down,
           "SESSION_SECRET": "bench-session-secret-0123456789abcdef", "LOG_LEVEL": "WARNING"}
    async with service_process("web.cli", env, logs / "web.log", ready=False) as web:
        await _healthy(web.base_url)
        yield web


async def _download(client: httpx.AsyncClient, path: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    got = 0
    async with client.stream("GET", path) as r:
        assert r.status_code == 200, r.status_code
        async for chunk in r.aiter_bytes():
            got += len(chunk)
    return got, time.perf_counter() - t0


async def run(sizes: list[int], rate: float, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"rate": rate, "seconds": seconds, "results": [], "memory": {}}

    def keep(r: Result) -> None:
        print(f"  {r.name}: p50 {r.pct(50):.1f} ms, p99 {r.pct(99):.1f} ms "
              f"({r.count} in {r.seconds:.1f} s)")
        out["results"].append(r.row())

    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        for size in sizes:
            print(f"{size:,} active companies")
            async with scratch_database(f"webpublic{size}") as dsn:
                await migrate(dsn, REGISTRY_MIGRATIONS)
                await fill_companies(dsn, size * 3 // 2)
                env = {"DATABASE_URL": dsn, "BROKER_URL": AMQP, "LOG_LEVEL": "WARNING",
                       "PUBLIC_RATE_LIMIT": "0", "VERIFICATION_SWEEP_INTERVAL": "0"}
                async with service_process("registry.cli", env, logs / f"r{size}.log") as reg, \
                        _web(reg.base_url, logs) as web, \
                        httpx.AsyncClient(base_url=web.base_url, timeout=120) as client, \
                        httpx.AsyncClient(base_url=reg.base_url, timeout=120) as api:
                    for _ in range(20):  # warm up both
                        await client.get("/register")
                    pid = web.process.pid
                    out["memory"][f"web_rss_idle_mb_{size}"] = RssSampler.now_mb(pid)
                    keep(await at_rate(client, f"web GET /register (front page), {size:,}",
                                       lambda i: ("GET", "/register", {}), rate, seconds))
                    keep(await at_rate(api, f"registry GET /public/companies, {size:,}",
                                       lambda i: ("GET", "/public/companies",
                                                  {"params": {"limit": 25}}), rate, seconds))
                    keep(await at_rate(api, f"registry GET /public/stats, {size:,}",
                                       lambda i: ("GET", "/public/stats", {}), 2, seconds))
                    keep(await at_rate(client, f"web GET /register?county_code=14, {size:,}",
                                       lambda i: ("GET", "/register",
                                                  {"params": {"county_code": "14"}}),
                                       rate, seconds))
                    with RssSampler(pid, interval=0.05) as rss:
                        got, through_web = await _download(client, "/open-data/asf-register.csv")
                    _, straight = await _download(api, "/public/companies.csv")
                    out["memory"][f"web_rss_csv_peak_mb_{size}"] = rss.peak_mb
                    out["memory"][f"csv_mb_{size}"] = round(got / 1e6, 1)
                    out["memory"][f"csv_seconds_through_web_{size}"] = round(through_web, 2)
                    out["memory"][f"csv_seconds_from_registry_{size}"] = round(straight, 2)
                    print(f"  CSV {got / 1e6:.1f} MB: {through_web:.2f} s through the web app, "
                          f"{straight:.2f} s from the registry; web RSS idle "
                          f"{out['memory'][f'web_rss_idle_mb_{size}']} MB, peak while "
                          f"streaming {rss.peak_mb} MB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results-web-public.json"))
    args = parser.parse_args()
    result = asyncio.run(run([int(s) for s in args.sizes.split(",")], args.rate, args.seconds))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
