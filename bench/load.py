"""An open-model HTTP load generator: requests start at a fixed rate whether or not earlier
ones have finished, so a slow server shows up as latency, not as a lower offered rate.

The load must not stall on its own: before each run it collects and freezes its heap
(`steady_heap`), as a served process does. Without it, a full collection of the bench
process (over 100 ms with the latencies and results it holds) held the load's loop, the
requests due meanwhile went out at once, and the server's queue for them was the worst of
the reads' p99 (`bench/stalls.py`, bench/README.md)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import httpx

from bench.common import Result, now

RequestFactory = Callable[[int], tuple[str, str, dict[str, Any]]]


def steady_heap() -> None:
    """Collect, then freeze what is left, so the collector's full passes during the run
    walk only what the run makes."""
    gc.collect()
    gc.freeze()


async def at_rate(client: httpx.AsyncClient, name: str, make: RequestFactory, rate: float,
                  seconds: float, expect: int = 200) -> Result:
    """Send `rate` requests per second for `seconds`; latencies of the successful ones."""
    steady_heap()
    latencies: list[float] = []
    failures = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        nonlocal failures
        method, url, kwargs = make(i)
        t0 = now()
        try:
            r = await client.request(method, url, **kwargs)
            ok = r.status_code == expect
        except httpx.HTTPError:
            ok = False
        if ok:
            latencies.append(now() - t0)
        else:
            failures += 1

    total = int(rate * seconds)
    started = now()
    for i in range(total):
        delay = started + i / rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    result = Result(name, len(latencies), now() - started, latencies)
    result.failures = failures  # type: ignore[attr-defined]
    return result


async def saturate(client: httpx.AsyncClient, name: str, make: RequestFactory, seconds: float,
                   concurrency: int = 16, expect: int = 200) -> Result:
    """As many requests as the server takes with `concurrency` in flight (closed model)."""
    steady_heap()
    latencies: list[float] = []
    counter = 0
    deadline = now() + seconds

    async def worker() -> None:
        nonlocal counter
        while now() < deadline:
            counter += 1
            method, url, kwargs = make(counter)
            t0 = now()
            r = await client.request(method, url, **kwargs)
            if r.status_code == expect:
                latencies.append(now() - t0)

    started = now()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, len(latencies), now() - started, latencies)
