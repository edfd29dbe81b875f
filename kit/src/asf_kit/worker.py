"""One base for the background loops of every service: wake on NOTIFY or poll, run a round,
back off on failure, stop gracefully.

A worker is a subclass with a `round()`; the base owns everything around it:

- **waking**: with a `channel`, a LISTEN connection of its own wakes the loop on every
  NOTIFY (and `wake()` does the same from inside the process); without one, or while the
  connection is down, it polls every `interval` seconds (`seconds_to_wait()` may shorten
  that, e.g. to the next due row);
- **more work**: a round that returns True runs again at once (a full batch);
- **failure**: a round that raises is logged, counted in `worker_failures_total{worker}`,
  the LISTEN connection is dropped (and re-opened before the next round) and the loop
  sleeps by `BACKOFF` (0.2 s doubling to 10 s, reset by a round that succeeds);
- **stopping**: `stop()` lets the round in progress finish (up to `grace` seconds, then
  cancels it), closes the connection and returns.

    class Sweep(Worker):
        def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
            super().__init__("follow-up-sweep", dsn=dsn, channel="follow_ups", interval=60)
            self._pool = pool

        async def round(self) -> bool:
            async with self._pool.acquire() as conn:
                done = await announce_due(conn, limit=100)
            return done == 100          # a full batch: run again without waiting

    sweep = Sweep(pool, dsn)
    await sweep.start()                 # in the lifespan
    ...
    await sweep.stop()                  # the round in progress finishes first

A worker that only listens (fans NOTIFY payloads out) overrides `notified(payload)` and
reads `listening` for readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from asf_kit.logging import get_logger

log = get_logger(__name__)

WORKER_FAILURES = Counter(
    "worker_failures_total", "Background worker rounds that failed", ["worker"]
)


@dataclass(frozen=True)
class Backoff:
    """The pause after consecutive failures: `first`, doubling, at most `cap` seconds."""

    first: float = 0.2
    cap: float = 10.0

    def after(self, failures: int) -> float:
        """The pause after `failures` consecutive failed rounds (1 or more)."""
        return float(min(self.first * 2 ** max(failures - 1, 0), self.cap))


BACKOFF = Backoff()
"""The one backoff policy of every worker."""


class Worker:
    """A background loop; subclasses implement `round()` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        dsn: str | None = None,
        channel: str | None = None,
        interval: float = 1.0,
        first_round_after: float = 0.0,
    ) -> None:
        if channel is not None and dsn is None:
            raise ValueError("a worker that listens needs the database dsn")
        self.name = name
        self.interval = interval
        self._dsn = dsn
        self._channel = channel
        self._first_round_after = first_round_after
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self.failures = 0
        """Consecutive failed rounds (0 after a round that succeeds)."""

    # --- what a subclass writes ---------------------------------------------------------------

    async def round(self) -> bool:
        """Do one round of work; True when there may be more to do at once."""
        raise NotImplementedError

    async def seconds_to_wait(self) -> float:
        """How long to wait for a NOTIFY before polling again; `interval` by default."""
        return self.interval

    def notified(self, payload: str) -> None:
        """A NOTIFY arrived on the channel; wakes the loop by default."""
        self._wake.set()

    # --- the loop -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def listening(self) -> bool:
        """The LISTEN connection is open (always False for a worker without a channel)."""
        return self._listener is not None and not self._listener.is_closed()

    def wake(self) -> None:
        """Run a round now (or right after the one in progress)."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._stopped.clear()
        self.failures = 0
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace: float = 10.0) -> None:
        """Let the round in progress finish (cancelled after `grace` seconds), then stop."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._drop_listener()

    async def _run(self) -> None:
        if self._first_round_after > 0:
            await self._idle(self._first_round_after)
        while not self._stopping:
            try:
                await self._listen()
                # Cleared before the round, so a wake-up during the round starts another one.
                self._wake.clear()
                more = await self.round()
                self.failures = 0
                if self._stopping or more or self._wake.is_set():
                    continue
                await self._idle(await self.seconds_to_wait())
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.failures += 1
                WORKER_FAILURES.labels(self.name).inc()
                pause = BACKOFF.after(self.failures)
                log.warning("worker round failed; will retry", worker=self.name, error=str(e),
                            error_type=type(e).__name__, retry_in=pause)
                await self._drop_listener()
                # Only stop() cuts a backoff pause short; a wake-up waits for the next round.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), pause)

    async def _idle(self, seconds: float) -> None:
        """Wait `seconds`, or less when woken (stop() wakes it too)."""
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(seconds, 0.0))

    async def _listen(self) -> None:
        """Open the LISTEN connection if the worker has a channel and it is not open."""
        if self._channel is None or self.listening:
            return
        await self._drop_listener()
        assert self._dsn is not None
        try:
            conn = await asyncpg.connect(self._dsn, timeout=5)
            conn.add_termination_listener(lambda _c: self._wake.set())
            await conn.add_listener(self._channel, self._on_notify)
        except (OSError, TimeoutError, asyncpg.PostgresError) as e:
            log.warning("listener unavailable; polling", worker=self.name, error=str(e))
            return
        self._listener = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self.notified(str(payload))

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()
