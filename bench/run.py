"""Every benchmark in one command, each project figure beside the raw limit measured in the
same run: `uv run python bench/run.py` (`make bench`). Writes `bench/results.json` and
prints a table. See bench/README.md for what each figure is.

    --quick              small counts and short runs, the 10 k size only (a smoke test)
    --sizes 10000,...    row counts for the read benchmarks (default 10 k, 100 k, 1 M)
    --only hop,reads     run some sections: raw, hop, levers, writes, reads, participants (the
                         casework half of reads), e2e, public, scale
    --levers             also run the hop with each kit lever switched off (before/after) and
                         the decisions left (what if); GET /participants also with commits
                         not waiting for the disk
    --loop asyncio       run the bench process on the default asyncio loop, not uvloop
    --events N --rounds R  events per hop run (queued; half of it paced) and rounds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The repository, not bench/ (the script's own folder, which Python puts first): bench/public.py
# would shadow the `public` package aiosmtpd imports.
sys.path[0] = str(ROOT)

from bench.common import AMQP, PG, Result, scratch_database  # noqa: E402

SECTIONS = ("raw", "hop", "levers", "writes", "reads", "participants", "e2e", "public", "scale")
BENCH_VHOST = "asf_bench"
LOG_DIR = ROOT / "var" / "bench"


def say(line: str) -> None:
    print(line, flush=True)


# --- the machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return float("nan")


async def machine(broker_url: str) -> dict[str, Any]:
    import aio_pika
    import asyncpg

    conn = await asyncpg.connect(PG)
    pg = await conn.fetchval("SHOW server_version")
    sync = await conn.fetchval("SHOW synchronous_commit")
    await conn.close()
    amqp = await aio_pika.connect(broker_url)
    props = amqp.transport.connection.server_properties if amqp.transport else {}
    rabbit = props.get("version", b"?")
    await amqp.close()
    return {
        "cpu_model": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
        "python": platform.python_version(), "os": platform.platform(),
        "postgresql": pg, "postgresql_synchronous_commit": sync,
        "rabbitmq": rabbit.decode() if isinstance(rabbit, bytes) else str(rabbit),
        "load_average_at_start": os.getloadavg(),
    }


def bench_vhost() -> str:
    """A RabbitMQ vhost of its own, so the bench's events never reach anyone's test queues
    on a shared broker. Made with rabbitmqctl when it is there; else BENCH_BROKER_URL."""
    if os.environ.get("BENCH_BROKER_URL"):
        return AMQP
    import shutil
    import subprocess

    ctl = shutil.which("rabbitmqctl")
    if ctl:  # afresh each run: nothing left over from an interrupted one
        subprocess.run([ctl, "delete_vhost", BENCH_VHOST], capture_output=True, check=False)
        subprocess.run([ctl, "add_vhost", BENCH_VHOST], capture_output=True, check=False)
        done = subprocess.run([ctl, "set_permissions", "-p", BENCH_VHOST, "guest", ".*", ".*",
                               ".*"], capture_output=True, check=False)
        if done.returncode == 0:
            return AMQP.rstrip("/") + "/" + BENCH_VHOST
    say("! no rabbitmqctl: using BENCH_BROKER_URL / the default vhost (shared with others)")
    return AMQP


# --- figures -------------------------------------------------------------------------------


def row(r: Result, **extra: Any) -> dict[str, Any]:
    out = r.row()
    if hasattr(r, "failures"):
        out["failures"] = r.failures
    out.update(extra)
    return out


def median_ratio(pairs: list[tuple[float, float]]) -> float | None:
    ratios = [a / b for a, b in pairs if b]
    return round(statistics.median(ratios), 3) if ratios else None


def summarize_hop(results: list[Result], raw_name: str) -> dict[str, Any]:
    """Median over rounds of each side, and the median of the per-round ratios against
    `raw_name` (each round pairs the raw runs with the project runs right after them). The
    one-at-a-time and each in-flight raw run are kept, their ratios against the limit too."""
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.name, []).append(r)
    raws = by.pop(raw_name)
    out: dict[str, Any] = {"raw": _med(raws)}
    out["raw"]["in_flight_each_round"] = [getattr(r, "in_flight", None) for r in raws]
    for name, runs in by.items():
        m = _med(runs)
        m["throughput_ratio"] = median_ratio([(p.rate, q.rate) for p, q in zip(runs, raws,
                                                                              strict=False)])
        m["p50_ratio"] = median_ratio([(p.pct(50), q.pct(50)) for p, q in zip(runs, raws,
                                                                              strict=False)])
        m["p99_ratio"] = median_ratio([(p.pct(99), q.pct(99)) for p, q in zip(runs, raws,
                                                                              strict=False)])
        m["cpu_ratio"] = median_ratio([(p.cpu_ms, q.cpu_ms) for p, q in zip(  # type: ignore[attr-defined]
            runs, raws, strict=False)])
        out[name] = m
    return out


def _med(runs: list[Result]) -> dict[str, Any]:
    return {"name": runs[0].name, "rounds": len(runs), "count": runs[0].count,
            "per_second": round(statistics.median(r.rate for r in runs), 1),
            "p50_ms": round(statistics.median(r.pct(50) for r in runs), 2),
            "p99_ms": round(statistics.median(r.pct(99) for r in runs), 2),
            "cpu_ms_per_event": round(statistics.median(r.cpu_ms for r in runs), 3),  # type: ignore[attr-defined]
            "each_round": [{**r.row(), "cpu_ms_per_event": r.cpu_ms} for r in runs]}  # type: ignore[attr-defined]


# --- sections ------------------------------------------------------------------------------


async def run_raw(broker: str, n: int) -> dict[str, Any]:
    from bench.hop import prepare_casework_db
    from bench.raw import raw_postgres, raw_rabbitmq

    async with scratch_database("rawpg") as dsn:
        companies = await prepare_casework_db(dsn, n)
        pg = await raw_postgres(dsn, companies)
    publish, consume = await raw_rabbitmq(broker, n)
    for r in (pg, publish, consume):
        say(f"  {r.name}: {r.rate:,.0f}/s p50 {r.pct(50):.2f} p99 {r.pct(99):.2f} ms")
    return {"results": [row(pg), row(publish), row(consume)]}


async def run_hop(broker: str, n: int, rounds: int, rate: float, paced_n: int,
                  levers: bool) -> dict[str, Any]:
    from bench.hop import Variant, hop_rounds
    from bench.levers import LEVERS

    variants = {"project hop (casework)": Variant()}
    if levers:
        variants["project, every kit lever off"] = Variant(levers_off=("all",))
        for name in LEVERS:
            variants[f"project, without: {name}"] = Variant(levers_off=(name,))
        variants["project, relay batch of 1"] = Variant(settings={"relay_batch_size": 1})
        variants["project, consumer concurrency 1"] = Variant(
            settings={"consumer_concurrency": 1})
        # The decisions left, measured beside the project as it is (bench/README.md).
        variants["what if: consumer and relay on aio-pika, not FastStream"] = Variant(
            what_if=("consumer and relay on aio-pika, not FastStream",))
        variants["what if: no span or INFO line per event"] = Variant(
            settings={"log_level": "WARNING"}, what_if=("no span or INFO line per event",))
        variants["what if: both"] = Variant(
            settings={"log_level": "WARNING"},
            what_if=("consumer and relay on aio-pika, not FastStream",
                     "no span or INFO line per event"))
    from bench.hop import RAW_LIMIT

    raw_name = RAW_LIMIT
    say(f"  queued beforehand: {n} events, {rounds} rounds, raw and project interleaved")
    saturated = await hop_rounds(PG, broker, n, rounds, LOG_DIR, variants, say)
    say(f"  at a steady {rate:.0f} events/s: {paced_n} events, {rounds} rounds")
    paced = await hop_rounds(PG, broker, paced_n, rounds, LOG_DIR, variants, say, rate=rate)
    out = {"saturated": summarize_hop(saturated, raw_name),
           "paced": summarize_hop(paced, raw_name), "paced_rate": rate}
    if levers:
        from bench.levers import per_call_costs

        out["per_call_us"] = per_call_costs()
        for what, us in out["per_call_us"].items():
            say(f"  per call: {what}: {us:.1f} µs")
    return out


async def run_writes(broker: str, seconds: float, rate: float, rounds: int = 1
                     ) -> dict[str, Any]:
    from bench.casework_http import casework_writes

    results, memory = await casework_writes(None, broker, seconds=seconds, rate=rate,
                                            log_dir=LOG_DIR, say=say, rounds=rounds)
    rows = []
    for i in range(0, len(results), 4):  # each round: raw saturation, raw paced, casework's
        raw_sat, raw_paced, sat, paced = results[i:i + 4]
        for r in (raw_sat, raw_paced):
            rows.append(row(r, cpu_ms_per_request=round(r.cpu_ms, 3), note="raw limit"))  # type: ignore[attr-defined]
        rows.append(row(sat, cpu_ms_per_request=round(sat.cpu_ms, 3),  # type: ignore[attr-defined]
                        note=f"x{sat.rate / raw_sat.rate:.2f} req/s of raw, "
                        f"CPU x{sat.cpu_ms / raw_sat.cpu_ms:.2f}"))  # type: ignore[attr-defined]
        rows.append(row(paced, cpu_ms_per_request=round(paced.cpu_ms, 3),  # type: ignore[attr-defined]
                        note=f"x{paced.pct(50) / raw_paced.pct(50):.2f} p50, "
                        f"x{paced.pct(99) / raw_paced.pct(99):.2f} p99 of raw, "
                        f"CPU x{paced.cpu_ms / raw_paced.cpu_ms:.2f}"))  # type: ignore[attr-defined]
    return {"results": rows, "memory": memory}


async def run_reads(broker: str, sizes: list[int], seconds: float, rate: float
                    ) -> dict[str, Any]:
    from bench.casework_http import casework_reads
    from bench.reads import registry_reads

    reg, reg_mem = await registry_reads(sizes, rate, seconds, LOG_DIR, broker, say)
    cw, cw_mem = await casework_reads(sizes, broker, rate=rate, seconds=seconds,
                                      log_dir=LOG_DIR, say=say)
    return {"results": [row(r, note=f"p99 x{r.pct(99) / r.pct(50):.1f} of p50")
                        for r in reg + cw], "memory": {**reg_mem, **cw_mem}}


async def run_participants(broker: str, sizes: list[int], seconds: float, rate: float,
                           what_if: bool = False) -> dict[str, Any]:
    """`GET /participants` alone (casework's part of `reads`); with `--levers`, each size
    again with commits not waiting for the disk (what the access log's commit costs)."""
    from bench.casework_http import casework_reads

    cw, memory = await casework_reads(sizes, broker, rate=rate, seconds=seconds,
                                      log_dir=LOG_DIR, say=say, what_if=what_if)
    return {"results": [row(r, note=f"p99 x{r.pct(99) / r.pct(50):.1f} of p50") for r in cw],
            "memory": memory}


async def run_public(broker: str, sizes: list[int], seconds: float, rate: float
                     ) -> dict[str, Any]:
    from bench.public import public_register

    results, memory = await public_register(
        [s for s in sizes if s <= 100_000], [1_000], rate=rate, seconds=seconds,
        log_dir=LOG_DIR, broker_url=broker, say=say)
    return {"results": [row(r, cpu_ms_per_request=round(r.cpu_ms, 3))  # type: ignore[attr-defined]
                        for r in results], "memory": memory}


async def run_scale(broker: str, n: int) -> dict[str, Any]:
    from bench.scale import scale_out

    results = await scale_out(broker, n, (1, 2, 3), LOG_DIR, say)
    first = results[0].rate
    return {"results": [row(r, processes=r.processes,  # type: ignore[attr-defined]
                            cpu_ms_per_event=r.cpu_ms_per_event,  # type: ignore[attr-defined]
                            note=f"x{r.rate / first:.2f} of one process; CPU ms/event "
                            + ", ".join(f"{k} {v}" for k, v in
                                        r.cpu_ms_per_event.items()))  # type: ignore[attr-defined]
                        for r in results]}


async def run_e2e(broker: str, seconds: float, rate: float) -> dict[str, Any]:
    from bench.e2e import end_to_end

    results, memory = await end_to_end(broker, rate=rate, seconds=seconds, log_dir=LOG_DIR,
                                       say=say)
    return {"results": [row(r) for r in results], "memory": memory}


# --- the table -----------------------------------------------------------------------------


def table(out: dict[str, Any]) -> str:
    lines = [f"{'figure':<66} {'per s':>9} {'p50 ms':>9} {'p99 ms':>9}  raw beside / ratio"]

    def add(name: str, per_s: Any, p50: Any, p99: Any, note: str = "") -> None:
        def f(v: Any) -> str:
            return "-" if v is None else f"{v:,.1f}" if isinstance(v, float | int) else str(v)
        lines.append(f"{name[:66]:<66} {f(per_s):>9} {f(p50):>9} {f(p99):>9}  {note}")

    s = out["sections"]
    for r in s.get("raw", {}).get("results", []):
        add(r["name"], r["per_second"], r["p50_ms"], r["p99_ms"], "raw limit")
    for mode in ("saturated", "paced"):
        hop = s.get("hop", {}).get(mode)
        if not hop:
            continue
        raw = hop["raw"]
        label = "queued" if mode == "saturated" else f"at {s['hop']['paced_rate']:.0f}/s"
        add(f"{raw['name']}, {label}", raw["per_second"], raw["p50_ms"], raw["p99_ms"],
            f"raw limit (in flight: {raw.get('in_flight_each_round')}); "
            f"CPU {raw['cpu_ms_per_event']} ms/event")
        for key, m in hop.items():
            if key == "raw":
                continue
            add(f"{key}, {label}", m["per_second"], m["p50_ms"], m["p99_ms"],
                f"x{m['throughput_ratio']} events/s, x{m['p50_ratio']} p50, "
                f"x{m['p99_ratio']} p99, CPU {m['cpu_ms_per_event']} ms/event "
                f"(x{m['cpu_ratio']}) of the raw limit")
    for key in ("writes", "reads", "participants", "e2e", "public", "scale"):
        for r in s.get(key, {}).get("results", []):
            note = f"{r.get('failures', 0)} failed" if r.get("failures") else ""
            if r.get("cpu_ms_per_request") is not None:
                note = f"CPU {r['cpu_ms_per_request']} ms each {note}".strip()
            if r.get("note"):
                note = f"{r['note']}; {note}"
            add(r["name"], r["per_second"], r["p50_ms"], r["p99_ms"], note)
    for key, err in out.get("errors", {}).items():
        lines.append(f"! {key} failed: {err.splitlines()[-1] if err else ''}")
    if out.get("memory"):
        lines.append("")
        lines.append("resident memory (MB): " + ", ".join(
            f"{k} {v}" for k, v in sorted(out["memory"].items())))
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else (
        [10_000] if quick else [10_000, 100_000, 1_000_000])
    only = set(args.only.split(",")) if args.only else set(SECTIONS) - {"levers", "participants"}
    # `--only levers` is the hop with its levers; `--levers` adds them to what runs (the
    # hop's levers, the participants' what-if).
    asked = set(args.only.split(",")) if args.only else set()
    if args.levers:
        only.add("levers")
    broker = bench_vhost()
    out: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args), "loop": args.loop, "broker_url": broker.rsplit("@", 1)[-1],
        "machine": await machine(broker), "sections": {}, "memory": {}, "errors": {},
    }
    m = out["machine"]
    say(f"{m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB; PostgreSQL "
        f"{m['postgresql']}, RabbitMQ {m['rabbitmq']}; load {m['load_average_at_start']}")
    n = args.events or (500 if quick else 3000)
    rounds = args.rounds or (1 if quick else 3)
    jobs: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        ("raw", lambda: run_raw(broker, n)),
        ("hop", lambda: run_hop(broker, n, rounds, 100, n // 2, "levers" in only)),
        ("writes", lambda: run_writes(broker, 5 if quick else 15, 100, rounds)),
        ("reads", lambda: run_reads(broker, sizes, 4 if quick else 10, 100)),
        ("participants", lambda: run_participants(broker, sizes, 4 if quick else 10, 100,
                                                  "levers" in only)),
        ("e2e", lambda: run_e2e(broker, 10 if quick else 30, 20)),
        ("public", lambda: run_public(broker, sizes, 4 if quick else 10, 100)),
        ("scale", lambda: run_scale(broker, 1000 if quick else 3000)),
    ]
    for name, job in jobs:
        if name not in only and not (name == "hop" and "levers" in asked):
            continue
        say(f"== {name}")
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                section = await job()
                break
            except Exception:  # a shared machine: a broker restart by someone else, say
                err = traceback.format_exc()
                say(f"! {name} failed (attempt {attempt}): {err.splitlines()[-1]}")
                out["errors"][name] = err
        else:
            continue
        out["errors"].pop(name, None)
        section["seconds"] = round(time.perf_counter() - started, 1)
        out["memory"].update(section.pop("memory", {}))
        out["sections"][name] = section
        Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")  # so far
    out["machine"]["load_average_at_end"] = os.getloadavg()
    out["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    say("")
    say(table(out))
    say(f"\nwritten: {args.out}")
    return 1 if out["errors"] else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sizes", help="comma-separated row counts, e.g. 10000,100000,1000000")
    p.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--levers", action="store_true")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--events", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse()
    if args.loop == "uvloop":
        import uvloop

        sys.exit(uvloop.run(main(args)))
    sys.exit(asyncio.run(main(args)))
