"""Scaling out: 1, 2 and 3 casework processes consuming the same queue at saturation.

Each process is casework as it runs in production (`python -m casework.cli serve`, its own
event loop, `CONSUMER_CONCURRENCY` events at once, its relay), all on one database and one
queue namespace, so they are competing consumers of one quorum queue. The hop is the one of
`bench.hop` (a deregistration that flags a placement and publishes
`casework.placements.flagged.v1`); the input is published as fast as the broker confirms
once every process is consuming, and the clock runs from the first publish to the N-th
outgoing event in the sink. Beside each figure: the CPU the casework processes, PostgreSQL
and RabbitMQ took per event (from /proc), so the curve says where it stops.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aio_pika

from asf_contracts.topology import ServiceQueues
from asf_kit.consumer import main_queue
from bench.common import Result, scratch_database
from bench.hop import Sink, _prefill, deregistered, prepare_casework_db

CLK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def _pids_named(*names: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


async def scale_out(broker_url: str, n: int, processes: tuple[int, ...], log_dir: Path,
                    say: Callable[[str], None] = print) -> list[Result]:
    from asf_testing import service_process
    from bench.casework_http import casework_env

    results = []
    async with scratch_database("scale") as dsn:
        companies = await prepare_casework_db(dsn, n * len(processes))
        for k, count in enumerate(processes):
            chunk = companies[k * n:(k + 1) * n]
            env = {**casework_env(dsn, broker_url), "LOG_LEVEL": "WARNING"}
            queues = ServiceQueues(service=env["QUEUE_NAMESPACE"] + "casework")
            connection = await aio_pika.connect(broker_url)
            try:
                channel = await connection.channel(publisher_confirms=True)
                sink = Sink(channel, len(chunk))
                await sink.start()
                async with AsyncExitStack() as stack:
                    procs = [await stack.enter_async_context(service_process(
                        "casework.cli", env, log_dir / f"casework-scale-{count}-{i}.log"))
                        for i in range(count)]
                    pids = [p.process.pid for p in procs]
                    others = {"postgres": _pids_named("postgres"),
                              "rabbitmq": _pids_named("beam.smp")}
                    q = main_queue(queues)
                    await asyncio.sleep(1.0)  # every process has its consumer up
                    before = {"casework": _cpu_of(pids),
                              **{k2: _cpu_of(v) for k2, v in others.items()}}
                    started_ns = time.time_ns()
                    await _prefill(channel, q.name, [deregistered(c, i)
                                                     for i, c in enumerate(chunk)])
                    await asyncio.wait_for(sink.done.wait(), 600)
                    after = {"casework": _cpu_of(pids),
                             **{k2: _cpu_of(v) for k2, v in others.items()}}
                await sink.stop()
            finally:
                await connection.close()
            elapsed = (sink.last_ns - started_ns) / 1e9
            res = Result(f"casework hop, {count} process{'es' if count > 1 else ''} on one "
                         "queue, queued", len(chunk), elapsed, [])
            cpu: dict[str, Any] = {k2: round((after[k2] - before[k2]) * 1000 / len(chunk), 3)
                                   for k2 in after}
            res.cpu_ms_per_event = cpu  # type: ignore[attr-defined]
            res.processes = count  # type: ignore[attr-defined]
            say(f"  {res.name}: {res.rate:,.0f}/s; CPU ms/event {cpu}; "
                f"load {os.getloadavg()[0]:.1f}")
            results.append(res)
    return results
