"""What the machine was doing when `GET /participants` was slow: casework as a process on the
kept 10 k database, the first page at 100/s for `--seconds`, and beside it a sampler that
reads every 0.1 s the CPU of each process (by name) and the machine's idle and steal time
(`/proc`). Each burst of slow requests (server-side duration over `--slow` ms, from
casework's request log) is printed with the samples around it; written to
`bench/stalls-participants.txt`.

    uv run python bench/stalls.py [--seconds 75] [--slow 40]

Needs the kept database `bench_keep_participants_10000` (made by `bench/run.py --only
participants` on its first run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from bench.common import AMQP, PG  # noqa: E402

OUT = ROOT / "bench" / "stalls-participants.txt"
TICK = 0.1


@dataclass
class Sample:
    at: float
    idle: float
    steal: float
    busiest: list[tuple[str, float]]
    """The processes (by name) with the most CPU in the tick, in % of one core."""


def _proc_times() -> dict[str, tuple[str, int]]:
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[pid] = (name, int(fields[11]) + int(fields[12]))
    return out


def _cpu_times() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


async def sample(until: float, into: list[Sample], names: dict[str, str]) -> None:
    """Every `TICK` until `until`; `names` names some processes by pid (casework, the
    load), the others go by their command name."""
    hz = os.sysconf("SC_CLK_TCK")
    before, cpu_before = _proc_times(), _cpu_times()
    while time.time() < until:
        await asyncio.sleep(TICK)
        now, cpu_now = _proc_times(), _cpu_times()
        delta = [b - a for a, b in zip(cpu_before, cpu_now, strict=False)]
        total = sum(delta) or 1
        by_name: dict[str, int] = {}
        for pid, (name, ticks) in now.items():
            if pid in before and before[pid][0] == name:
                name = names.get(pid, name)
                by_name[name] = by_name.get(name, 0) + ticks - before[pid][1]
        busiest = sorted(by_name.items(), key=lambda kv: -kv[1])[:4]
        into.append(Sample(time.time(), delta[3] / total * 100, delta[7] / total * 100,
                           [(n, t / hz / TICK * 100) for n, t in busiest if t]))
        before, cpu_before = now, cpu_now


def _requests(log: Path) -> list[tuple[float, float]]:
    """(start, duration ms) of each request casework logged."""
    out = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            d = json.loads(line)
            if d.get("event") == "request":
                end = datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")).timestamp()
                out.append((end - d["duration_ms"] / 1000, d["duration_ms"]))
    return out


class GcPauses:
    """This process's garbage-collector pauses over 5 ms: (when it ended, ms)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif (ms := (time.perf_counter() - self._started) * 1000) > 5:
            self.pauses.append((time.time(), ms))


async def main(seconds: float, slow_ms: float) -> None:
    import gc

    import httpx

    from asf_testing import auth, service_process
    from bench.casework_http import HOME, casework_env
    from bench.load import at_rate, steady_heap

    dsn = PG.rsplit("/", 1)[0] + "/bench_keep_participants_10000"
    log = ROOT / "var" / "bench" / "stalls-casework.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    samples: list[Sample] = []
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    async with service_process("casework.cli", casework_env(dsn, AMQP), log) as p:
        headers = auth("case_worker", sub="bench-cw", municipality_code=HOME)
        async with httpx.AsyncClient(base_url=p.base_url, headers=headers, timeout=30) as c:
            for _ in range(50):
                await c.get("/participants")
            steady_heap()  # as `at_rate` does, before the clock starts
            started = time.time()
            names = {str(p.process.pid): "casework", str(os.getpid()): "the load (bench)"}
            sampler = asyncio.create_task(sample(started + seconds + 1, samples, names))
            r = await at_rate(c, "GET /participants first page", lambda i: (
                "GET", "/participants", {}), 100, seconds)
            await sampler
    gc.callbacks.remove(gc_pauses)
    requests = [q for q in _requests(log) if q[0] >= started]
    slow = sorted(t for t, ms in requests if ms > slow_ms)
    bursts: list[list[float]] = []
    for t in slow:
        if bursts and t - bursts[-1][-1] < 0.5:
            bursts[-1].append(t)
        else:
            bursts.append([t])
    lines = [
        f"GET /participants, first page, 10 k rows, 100/s for {seconds:.0f} s: p50 "
        f"{r.pct(50):.1f} ms, p99 {r.pct(99):.1f} ms (client side); server side, "
        f"{len(slow)} of {len(requests)} requests over {slow_ms:.0f} ms, in {len(bursts)} "
        f"bursts; the load's own GC paused it "
        f"{sum(at >= started for at, _ in gc_pauses.pauses)} times over 5 ms. "
        f"Each burst with the machine's samples ({TICK:.1f} s each: idle and steal in % of "
        "the machine, the busiest processes in % of one core) from 0.3 s before:",
    ]
    for burst in bursts:
        worst = max(ms for t, ms in requests if burst[0] <= t <= burst[-1])
        lines.append(f"\n+{burst[0] - started:5.1f} s: {len(burst)} slow requests in "
                     f"{(burst[-1] - burst[0]) * 1000:.0f} ms, the worst {worst:.0f} ms")
        for at, ms in gc_pauses.pauses:
            if max(started, burst[0] - 0.5) <= at <= burst[-1] + 0.2:
                lines.append(f"  +{at - started:5.1f} s the load's own garbage collector held "
                             f"its loop {ms:.0f} ms")
        for s in samples:
            if burst[0] - 0.3 <= s.at <= burst[-1] + 0.2:
                busiest = ", ".join(f"{n} {pct:.0f}" for n, pct in s.busiest)
                lines.append(f"  +{s.at - started:5.1f} s idle {s.idle:3.0f} steal "
                             f"{s.steal:3.0f}  {busiest}")
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=75)
    parser.add_argument("--slow", type=float, default=40)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args.seconds, args.slow))
