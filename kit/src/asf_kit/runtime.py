"""What a running service holds: its database pool, its broker connection and its outbox relay.

Started and stopped by the service's lifespan; read by routes and handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from faststream.rabbit import RabbitBroker

from asf_kit import observe
from asf_kit.db import create_pool
from asf_kit.logging import get_logger
from asf_kit.outbox import EXCHANGE_DECL, OutboxRelay
from asf_kit.settings import ServiceSettings

log = get_logger(__name__)

FREEZE_HEAP_AFTER_START = False
"""Set by `serve` (a served process, not the tests' in-process apps): once started, collect
and freeze what the start built (`gc.freeze`), so the collector's rare full passes skip the
modules, the app and its models. In the bench such a pass held the event loop for 60–80 ms,
the worst latencies of the hop at a steady rate (`bench/README.md`, lever `heap frozen after
start`)."""


class Runtime:
    def __init__(self, settings: ServiceSettings, *, relay: bool = True) -> None:
        self.settings = settings
        self.with_relay = relay
        # No FastStream dependency injection: the kit's consumer takes the message as it is,
        # and injecting it cost a worker-thread hop and argument validation per message.
        self.broker = RabbitBroker(settings.broker_url, logger=None, apply_types=False)
        self._pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None
        self.consumers_started = False
        self.background: list[asyncio.Task[None]] = []
        self.extra_checks: dict[str, Callable[[], Awaitable[bool]]] = {}
        self.consumers: list[Any] = []
        """The EventConsumers attached to this runtime (their queues and bindings)."""
        self.on_connect: list[Callable[[], Awaitable[None]]] = []
        """Run after the broker connects and before consumers start (declare queues here)."""
        self.observers: list[Callable[[], Awaitable[None]]] = []
        """A service's own state gauges, refreshed at each scrape (with the database up)."""

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the service has not started")
        return self._pool

    async def start(self) -> None:
        s = self.settings
        self._pool = await create_pool(s.database_url, s.db_pool_min, s.db_pool_max)
        await self.broker.connect()
        await self.broker.declare_exchange(EXCHANGE_DECL)
        for hook in self.on_connect:
            await hook()
        await self.broker.start()
        self.consumers_started = True
        if self.with_relay:
            self.relay = OutboxRelay(
                self._pool, self.broker, s.database_url, batch_size=s.relay_batch_size,
                poll_interval=s.relay_poll_interval, retention_days=s.outbox_retention_days,
            )
            await self.relay.start()
        if FREEZE_HEAP_AFTER_START:
            gc.collect()
            gc.freeze()

    async def stop(self) -> None:
        """Graceful: stop consuming, let in-flight work finish, flush the relay, close."""
        with contextlib.suppress(Exception):
            for sub in self.broker.subscribers:
                await sub.stop()
        self.consumers_started = False
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.background.clear()
        if self.relay is not None:
            await self.relay.stop(flush=True)
            self.relay = None
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            checks["database"] = True
        except Exception:
            checks["database"] = False
        try:
            checks["broker"] = bool(await self.broker.ping(timeout=2))
        except Exception:
            checks["broker"] = False
        checks["consumers"] = self.consumers_started
        if self.with_relay:
            checks["outbox_relay"] = self.relay is not None and self.relay.running
        for name, check in self.extra_checks.items():
            try:
                checks[name] = await check()
            except Exception:
                checks[name] = False
        return checks

    async def observe(self) -> None:
        """Refresh the gauges that describe state (readiness, outbox, queues) for a scrape."""
        checks = await self.readiness()
        observe.record_readiness(checks)
        if self.with_relay and checks.get("database"):
            await observe.bounded("outbox", observe.observe_outbox(self.pool))
        if checks.get("database"):
            for observer in self.observers:
                await observe.bounded("service", observer())
        connection = getattr(self.broker, "_connection", None)
        if connection is not None and checks.get("broker"):
            for consumer in self.consumers:
                await observe.bounded("queues", observe.observe_queues(connection,
                                                                        consumer.queues))
