"""Profile one case-worker write end to end: casework as its own process under py-spy
(sampling, CPU only), `POST /participants/{id}/transitions` at saturation (16 in flight) for
`--seconds`: py-spy's flame graph (`bench/profile-transitions.svg`) and, from a second
sampler of the same process, a summary of where the samples were, by module and by own
time (`bench/profile-transitions.txt`).

    uv run python bench/profile_write.py [--seconds 15]

py-spy runs through `uvx` (a PyPI package; not a dependency of the project).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from bench.casework_http import CASEWORK_MIGRATIONS, HOME, casework_env, fill_participants_sql  # noqa: E402
from bench.common import AMQP, count_samples, scratch_database  # noqa: E402
from bench.load import saturate  # noqa: E402

OUT = ROOT / "bench"
GROUPS = (  # by the file a sample's innermost frame of ours or a library's is in
    ("asyncpg", "asyncpg/"), ("uvicorn/httptools", "uvicorn/"), ("starlette", "starlette/"),
    ("fastapi", "fastapi/"), ("pydantic", "pydantic"), ("jwt", "jwt/"),
    ("structlog/logging", "structlog/"), ("structlog/logging", "logging/"),
    ("opentelemetry", "opentelemetry/"), ("prometheus", "prometheus_client/"),
    ("casework", "casework/"), ("asf_kit", "asf_kit/"), ("cryptography", "cryptography/"),
    ("asyncio", "asyncio/"),
)


def summary(raw: Path, top: int = 40) -> str:
    counted = count_samples(raw, GROUPS)
    own, group, total = counted.own, counted.by_group, counted.total
    lines = [f"{total} samples of casework's CPU while it served the writes", "",
             "by the innermost frame in a known module:"]
    lines += [f"  {n / total * 100:5.1f}%  {g}" for g, n in group.most_common()]
    lines += ["", f"top {top} by own time:"]
    lines += [f"  {n / total * 100:5.1f}%  {f[:140]}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


async def main(seconds: float) -> None:
    from asf_kit.db import migrate
    from asf_testing import auth, service_process

    uvx = shutil.which("uvx")
    if uvx is None:
        raise SystemExit("needs uvx (uv's tool runner) for py-spy")
    headers = auth("case_worker", sub="bench-cw", municipality_code=HOME)
    async with scratch_database("cwprofile") as dsn:
        await migrate(dsn, CASEWORK_MIGRATIONS)
        await fill_participants_sql(dsn, int(600 * seconds) + 2000, stage="referred",
                                home_share=1.0)
        import asyncpg
        import httpx

        conn = await asyncpg.connect(dsn)
        ids = iter([str(r["id"]) for r in await conn.fetch("SELECT id FROM participants")])
        await conn.close()

        def make(_: int) -> tuple[str, str, dict[str, Any]]:
            return ("POST", f"/participants/{next(ids)}/transitions",
                    {"json": {"to": "assessment"}})

        env = casework_env(dsn, os.environ.get("BENCH_BROKER_URL", AMQP))
        async with service_process("casework.cli", env, ROOT / "var" / "bench" /
                                   "casework-profile.log") as p:
            async with httpx.AsyncClient(base_url=p.base_url, headers=headers,
                                         timeout=30) as client:
                for i in range(100):
                    await client.request(*make(i)[:2], **make(i)[2])
                raw = ROOT / "var" / "bench" / f"profile-{uuid.uuid4().hex[:6]}.txt"
                spies = [
                    subprocess.Popen(  # noqa: ASYNC220 - waited for in a thread below
                        [uvx, "py-spy", "record", "-r", "100", "-f", fmt, "-o", str(out),
                         "-d", str(int(seconds)), "-p", str(p.process.pid)])
                    for fmt, out in (("raw", raw),
                                     ("flamegraph", OUT / "profile-transitions.svg"))]
                await asyncio.sleep(1.0)
                r = await saturate(client, "transitions", make, seconds)
                for spy in spies:
                    await asyncio.to_thread(spy.wait, 60)
    print(f"{r.rate:.0f}/s p50 {r.pct(50):.1f} p99 {r.pct(99):.1f} ms while sampled")
    (OUT / "profile-transitions.txt").write_text(
        f"POST /participants/{{id}}/transitions at saturation (16 in flight), {seconds:.0f} s "
        f"under py-spy: {r.rate:.0f}/s, p50 {r.pct(50):.1f} ms, p99 {r.pct(99):.1f} ms\n\n"
        + summary(raw))
    raw.unlink()
    print((OUT / "profile-transitions.txt").read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    import uvloop

    uvloop.run(main(parser.parse_args().seconds))
