"""The transactional outbox and its relay.

A service writes each event with `add_event` on the connection of the
transaction that makes the change, so the change and its event commit or roll
back together. The relay claims unpublished rows (`FOR UPDATE SKIP LOCKED`, so
replicas share the work), publishes them with publisher confirms, and marks
them published in the same transaction. A crash after the publish and before
the commit republishes the batch: delivery is at least once, and consumers
deduplicate by `event_id` (see `inbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from asf_contracts import EXCHANGE, Envelope
from asf_kit import context, telemetry
from asf_kit.db import Conn
from asf_kit.logging import get_logger

log = get_logger(__name__)

EVENTS_PUBLISHED = Counter(
    "outbox_events_published_total", "Events the relay published", ["event_type"]
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Events written but not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds", "Age of the oldest unpublished event, 0 when none"
)
RELAY_FAILURES = Counter("outbox_relay_failures_total", "Relay rounds that failed")

EXCHANGE_DECL = RabbitExchange(EXCHANGE, type=ExchangeType.TOPIC, durable=True)

_INSERT = """
INSERT INTO outbox (event_id, event_type, event_version, routing_key, correlation_id,
                    traceparent, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


def new_event(
    *,
    producer: str,
    event_type: str,
    event_version: int,
    aggregate_id: UUID,
    aggregate_version: int,
    payload: BaseModel | dict[str, Any],
) -> Envelope:
    """An envelope with the correlation and causation ids of the current request or event."""
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    return Envelope(
        event_type=event_type,
        event_version=event_version,
        producer=producer,
        correlation_id=context.correlation_id.get(),
        causation_id=context.causation_id.get(),
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        payload=body,
    )


def _row(env: Envelope) -> tuple[Any, ...]:
    return (
        env.event_id, env.event_type, env.event_version, env.routing_key, env.correlation_id,
        telemetry.current_traceparent(), orjson.dumps(env.model_dump(mode="json")),
    )


async def add_events(conn: Conn, events: list[Envelope]) -> None:
    """Write events in the caller's transaction (one round trip for one event)."""
    if len(events) == 1:
        await conn.execute(_INSERT, *_row(events[0]))
    elif events:
        await conn.executemany(_INSERT, [_row(e) for e in events])


async def add_event(conn: Conn, event: Envelope) -> None:
    await add_events(conn, [event])


class OutboxRelay:
    """Publishes outbox rows to `asf.events` with publisher confirms."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: RabbitBroker,
        dsn: str,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        retention_days: int = 7,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._dsn = dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention_days = retention_days
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._last_purge = 0.0
        self._last_observed = 0.0
        self.healthy = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, flush: bool = True, grace: float = 10.0) -> None:
        """Stop the loop; with `flush`, publish what is left first (graceful shutdown)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, grace)
            self._task = None
        if flush:
            with contextlib.suppress(Exception):
                while await self.publish_batch():
                    pass
        await self._close_listener()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener("outbox", lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError) as e:
            self._listener = None
            log.warning("outbox listener unavailable; polling", error=str(e))

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self._listen()
                # Cleared before claiming, so a wake-up during the round starts another one.
                self._wake.clear()
                published = await self.publish_batch()
                self.healthy = True
                backoff = 0.2
                await self._observe()
                if published >= self._batch_size or self._wake.is_set():
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.healthy = False
                RELAY_FAILURES.inc()
                log.warning("outbox relay round failed; will retry", error=str(e),
                            error_type=type(e).__name__, retry_in=backoff)
                await self._close_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT id, event_id, event_type, event_version, routing_key, correlation_id,
                       traceparent, body
                FROM outbox WHERE published_at IS NULL
                ORDER BY id LIMIT $1
                FOR UPDATE SKIP LOCKED
                """,
                self._batch_size,
            )
            if not rows:
                return 0
            await asyncio.gather(*(self._publish(r) for r in rows))
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        for r in rows:
            EVENTS_PUBLISHED.labels(r["event_type"]).inc()
        return len(rows)

    async def _publish(self, row: asyncpg.Record) -> None:
        headers: dict[str, Any] = {
            "event_type": row["event_type"],
            "event_version": row["event_version"],
        }
        with telemetry.span(
            f"publish {row['routing_key']}", traceparent=row["traceparent"],
            kind=telemetry.SpanKind.PRODUCER,
            attributes={"messaging.system": "rabbitmq",
                        "messaging.message.id": str(row["event_id"])},
        ):
            traceparent = telemetry.current_traceparent()
            if row["traceparent"] and traceparent:
                headers["traceparent"] = traceparent
            await self._send(row, headers)

    async def _send(self, row: asyncpg.Record, headers: dict[str, Any]) -> None:
        await self._broker.publish(
            bytes(row["body"]),
            exchange=EXCHANGE_DECL,
            routing_key=row["routing_key"],
            message_id=str(row["event_id"]),
            correlation_id=row["correlation_id"] or str(row["event_id"]),
            headers=headers,
            content_type="application/json",
            persist=True,
            mandatory=False,
            timeout=10,
        )

    async def _observe(self) -> None:
        """Refresh the backlog gauges, at most once a second (not once per round)."""
        now = time.monotonic()
        if now - self._last_observed < 1.0:
            return
        self._last_observed = now
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """
                SELECT count(*) AS backlog,
                       coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
                FROM outbox WHERE published_at IS NULL
                """
            )
            assert row is not None
            OUTBOX_BACKLOG.set(row["backlog"])
            OUTBOX_OLDEST_AGE.set(float(row["age"]))
            if now - self._last_purge > 3600:
                self._last_purge = now
                await conn.execute(
                    "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)",
                    self._retention_days,
                )
