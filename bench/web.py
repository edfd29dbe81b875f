"""The web app's caseload page: pages per second and p50/p99 with 1,000 cases in the
municipality and 20 signed-in case workers at once, beside the raw cost of the API calls the
page makes (the same two casework calls, made straight to casework by the same 20 users).

Casework and the web app run as their own processes, as deployed; the cases are made by
SQL (`bench.casework_http.fill_participants`, real sealed rows). Not a test: run it alone on
a quiet machine. It uses the broker only through casework's consumer (its own queue
namespace, deleted afterwards) and never restarts anything.

    uv run python bench/web.py                 # 20 users, 20 s per side
    uv run python bench/web.py --seconds 10 --users 20 --cases 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

# Run as a script, this file's folder comes first on the path, and this file's name would
# hide the `web` package: the repository root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from asf_contracts.topology import ServiceQueues  # noqa: E402
from asf_kit.db import migrate  # noqa: E402
from asf_testing import delete_queues, service_process, token  # noqa: E402
from bench.casework_http import (  # noqa: E402
    CASEWORK_MIGRATIONS,
    HOME,
    casework_env,
    fill_participants,
)
from bench.common import AMQP, Result, now, scratch_database  # noqa: E402

OUT = Path(__file__).parent / "results-web.json"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def closed_loop(name: str, clients: list[httpx.AsyncClient], seconds: float,
                      one: Any) -> Result:
    """Each user makes one request (or one page's calls) after the other for `seconds`."""
    latencies: list[float] = []
    failures = 0
    deadline = now() + seconds

    async def user(c: httpx.AsyncClient) -> None:
        nonlocal failures
        while now() < deadline:
            t0 = now()
            ok = await one(c)
            if ok:
                latencies.append(now() - t0)
            else:
                failures += 1

    started = now()
    await asyncio.gather(*(user(c) for c in clients))
    result = Result(name, len(latencies), now() - started, latencies)
    result.failures = failures  # type: ignore[attr-defined]
    return result


async def signed_in(base: str, n: int) -> list[httpx.AsyncClient]:
    clients = []
    for i in range(n):
        c = httpx.AsyncClient(base_url=base, timeout=30)
        page = await c.get("/dev-login")
        m = _CSRF.search(page.text)
        assert m
        r = await c.post("/dev-login", data={
            "sub": f"cw-{i % 40}", "name": f"Handläggare {i}", "role": "case_worker",
            "municipality_code": HOME, "next": "/", "csrf_token": m.group(1)})
        assert r.status_code == 303, r.text[:300]
        clients.append(c)
    return clients


async def web_alone(recorded: dict[str, bytes], seconds: float) -> Result:
    """Pages per second of the web app alone, in this process, one page after the other:
    the APIs answer from memory, so only the web app's work is measured."""
    from web.app import create_app
    from web.settings import WebSettings

    def answer(request: httpx.Request) -> httpx.Response:
        body = recorded.get(request.url.path, b'{"items": []}')
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    mock = httpx.MockTransport(answer)
    app = create_app(WebSettings(app_env="development", jwt_secret="bench-" * 8,
                                 session_secret="bench-session-" * 3, log_level="WARNING",
                                 stream_enabled=False),
                     transports={"casework": mock, "registry": mock, "notifications": mock})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://web") as c:
        page = await c.get("/dev-login")
        m = _CSRF.search(page.text)
        assert m
        await c.post("/dev-login", data={"sub": "cw-1", "role": "case_worker",
                                         "municipality_code": HOME, "next": "/",
                                         "csrf_token": m.group(1)})

        async def one(client: httpx.AsyncClient) -> bool:
            r = await client.get("/caseload")
            return r.status_code == 200

        return await closed_loop("GET /caseload, the web app alone (APIs from memory)",
                                 [c], seconds, one)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    broker = os.environ.get("BENCH_BROKER_URL", AMQP)
    logs = Path(tempfile.mkdtemp(prefix="bench-web-"))
    results: dict[str, Any] = {"cases": args.cases, "users": args.users,
                               "seconds": args.seconds, "load_before": os.getloadavg()}
    async with scratch_database("web_casework") as dsn:
        await migrate(dsn, CASEWORK_MIGRATIONS)
        await fill_participants(dsn, args.cases, home_share=1.0)
        env = {**casework_env(dsn, broker), "APP_ENV": "development"}
        async with service_process("casework.cli", env, logs / "casework.log") as casework:
            web_env = {"APP_ENV": "development", "CASEWORK_URL": casework.base_url,
                       "REGISTRY_URL": "http://127.0.0.1:9", "NOTIFICATIONS_URL":
                       "http://127.0.0.1:9", "SESSION_SECRET": "bench-session-secret-" * 2,
                       "LOG_LEVEL": "WARNING", "STREAM_ENABLED": "false"}
            async with service_process("web.cli", web_env, logs / "web.log",
                                       ready=False) as web:
                for _ in range(100):
                    try:
                        if (await httpx.AsyncClient().get(f"{web.base_url}/healthz")
                                ).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.1)
                users = await signed_in(web.base_url, args.users)
                api_users = [httpx.AsyncClient(base_url=casework.base_url, timeout=30, headers={
                    "Authorization": "Bearer " + token("case_worker", f"cw-{i % 40}",
                                                       municipality_code=HOME)})
                    for i in range(args.users)]

                async def page(c: httpx.AsyncClient) -> bool:
                    r = await c.get("/caseload")
                    return r.status_code == 200 and "case-" in r.text

                async def raw_calls(c: httpx.AsyncClient) -> bool:
                    a, b = await asyncio.gather(
                        c.get("/participants", params={"limit": 50}),
                        c.get("/stats/outcomes", params={"municipality_code": HOME}))
                    return a.status_code == 200 and b.status_code == 200

                for c in users[:2]:  # warm up both sides
                    await page(c)
                for c in api_users[:2]:
                    await raw_calls(c)
                rows = []
                for round_ in range(args.rounds):
                    raw = await closed_loop(f"casework's two calls, round {round_ + 1}",
                                            api_users, args.seconds, raw_calls)
                    web_r = await closed_loop(f"GET /caseload (web), round {round_ + 1}",
                                              users, args.seconds, page)
                    rows += [raw, web_r]
                # The web app's own cost: the same page rendered in this process with
                # casework's real answers (recorded once) served from memory.
                recorded = {
                    "/participants": (await api_users[0].get(
                        "/participants", params={"limit": 50})).content,
                    "/stats/outcomes": (await api_users[0].get(
                        "/stats/outcomes", params={"municipality_code": HOME})).content,
                }
                alone = await web_alone(recorded, args.seconds)
                rows.append(alone)
                for c in users + api_users:
                    await c.aclose()
            results["rows"] = [{**r.row(), "failures": getattr(r, "failures", 0)} for r in rows]
        await delete_queues(broker, ServiceQueues(service=env["QUEUE_NAMESPACE"] + "casework"))
    results["load_after"] = os.getloadavg()
    results["logs"] = str(logs)
    return results


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = asyncio.run(main(args))
    print(f"{args.cases} cases in {HOME}, {args.users} signed-in users, "
          f"{args.seconds:.0f} s per side per round; load {results['load_before']}")
    print(f"{'':52} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'fail':>5}")
    for r in results["rows"]:
        print(f"{r['name']:52} {r['per_second']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['failures']:>5}")
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
