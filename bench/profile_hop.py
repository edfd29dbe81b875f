"""Where the hop's CPU goes, the project beside the raw limit: each side run alone in a
process of its own under py-spy (sampling, CPU only), the same number of events queued
beforehand on fresh data, and the samples of the hop (not of start-up, migrations or the
prefill) counted by the library their innermost known frame is in. Written to
`bench/profile-hop.txt`: CPU ms per event by library, raw and project side by side, and the
project's frames by own time.

    uv run python bench/profile_hop.py [--events 3000]

py-spy runs through `uvx` (a PyPI package; not a dependency of the project).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from bench.common import count_samples  # noqa: E402

RATE = 250
"""py-spy's samples per second."""
OUT = ROOT / "bench" / "profile-hop.txt"
LIBRARIES = (  # by the file a sample's innermost frame of a known module is in
    ("asyncpg", "asyncpg/"), ("faststream", "faststream/"), ("aio-pika", "aio_pika/"),
    ("aiormq / pamqp", "aiormq/"), ("aiormq / pamqp", "pamqp/"), ("pydantic", "pydantic"),
    ("opentelemetry", "opentelemetry/"), ("structlog / logging", "structlog/"),
    ("structlog / logging", "logging/"), ("prometheus", "prometheus_client/"),
    ("casework", "casework/"), ("asf_kit", "asf_kit/"), ("asf_contracts", "asf_contracts/"),
    ("the bench (feeder, sink, clock)", "bench/"), ("asyncio", "asyncio/"),
    ("uuid / datetime / json", "uuid.py"), ("uuid / datetime / json", "datetime"),
    ("uuid / datetime / json", "json/"), ("contextlib", "contextlib.py"),
)
NOT_THE_HOP = ("_find_and_load", "prepare_casework_db", "_prefill", "migrate (asf_kit/db.py",
               "scratch_database", "create_app", "Runtime.start", "Runtime.stop",
               "ensure_database")
"""A sample whose stack holds one of these is start-up or tear-down, not the hop."""
OTHER = "the loop, C code, other"


def _ms(samples: int, events: int) -> float:
    return samples / RATE / events * 1000


def report(raw_side: Path, project_side: Path, events: int, top: int = 30) -> str:
    raw_counted = count_samples(raw_side, LIBRARIES, NOT_THE_HOP, OTHER)
    counted = count_samples(project_side, LIBRARIES, NOT_THE_HOP, OTHER)
    raw_lib, raw_total = raw_counted.by_group, raw_counted.total
    proj_lib, proj_own, proj_total = counted.by_group, counted.own, counted.total
    names = sorted(set(raw_lib) | set(proj_lib),
                   key=lambda g: proj_lib[g] - raw_lib[g], reverse=True)
    lines = [
        f"The hop, {events:,} events queued beforehand, each side alone in its own process "
        f"under py-spy ({RATE} samples/s, CPU only); samples of start-up, migrations and the "
        "prefill left out.",
        f"raw: bench.raw.raw_hop_concurrent, 16 in flight; project: the casework app "
        f"(bench.hop.project_hop). Total: raw {_ms(raw_total, events):.2f}, project "
        f"{_ms(proj_total, events):.2f} CPU ms per event (×{proj_total / raw_total:.2f}).",
        "",
        "CPU ms per event, by the library of the innermost known frame (most extra first):",
        f"  {'':34} {'raw':>7} {'project':>8} {'extra':>7}",
    ]
    for g in names:
        r, p = _ms(raw_lib[g], events), _ms(proj_lib[g], events)
        lines.append(f"  {g:34} {r:7.3f} {p:8.3f} {p - r:+7.3f}")
    lines += ["", "Where in each of the project's own layers (its innermost frame there, CPU ms "
              "per event):"]
    for g in names:
        extra = _ms(proj_lib[g] - raw_lib[g], events)
        if extra < 0.04:
            continue
        lines.append(f"  {g} (+{extra:.3f}):")
        lines += [f"    {_ms(n, events):.3f}  {f[:120]}"
                  for f, n in counted.in_group[g].most_common(6)]
    lines += ["", f"The project's top {top} frames by own time (share of its samples):"]
    lines += [f"  {n / proj_total * 100:5.1f}%  {f[:130]}" for f, n in proj_own.most_common(top)]
    return "\n".join(lines) + "\n"


async def _inner(side: str, events: int) -> None:
    from bench.common import AMQP, scratch_database
    from bench.hop import prepare_casework_db, project_hop
    from bench.raw import raw_hop_concurrent

    async with scratch_database("hopprofile") as dsn:
        companies = await prepare_casework_db(dsn, events)
        if side == "raw":
            result = await raw_hop_concurrent(dsn, AMQP, companies, in_flight=16)
        else:
            result = await project_hop(dsn, AMQP, companies,
                                       ROOT / "var" / "bench" / "profile-hop.log")
    print(f"{side}: {result.rate:,.0f}/s, "
          f"CPU {result.cpu_ms:.2f} ms/event")  # type: ignore[attr-defined]


def main(events: int) -> None:
    uvx = shutil.which("uvx")
    if uvx is None:
        raise SystemExit("needs uvx (uv's tool runner) for py-spy")
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    samples = {}
    for side in ("raw", "project"):
        samples[side] = folder / f"profile-hop-{side}-{uuid.uuid4().hex[:6]}.txt"
        subprocess.run(
            [uvx, "py-spy", "record", "-r", str(RATE), "-f", "raw", "-o", str(samples[side]),
             "--", sys.executable, __file__, "--inner", side, "--events", str(events)],
            check=True)
    OUT.write_text(report(samples["raw"], samples["project"], events))
    for path in samples.values():  # kept for a closer look: var/bench/profile-hop-*.txt
        path.replace(folder / f"profile-hop-{path.stem.split('-')[2]}.txt")
    print(OUT.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--inner", choices=("raw", "project"))
    args = parser.parse_args()
    if args.inner:
        import uvloop

        uvloop.run(_inner(args.inner, args.events))
    else:
        main(args.events)
