"""The transactional outbox and its relay.

A service writes its events with `add_events` on the connection of the transaction that
makes the change (`asf_kit.uow.unit_of_work` does it), so the change and its events commit
or roll back together. The relay claims unpublished rows (`FOR UPDATE SKIP LOCKED`, so
replicas share the work), publishes them with publisher confirms, and marks them published
in the same transaction. A crash after the publish and before the commit republishes the
batch: delivery is at least once, and consumers deduplicate by `event_id` (see `inbox`).
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
from asf_kit.worker import Worker

log = get_logger(__name__)

EVENTS_PUBLISHED = Counter(
    "outbox_events_published_total", "Events the relay published", ["event_type"]
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Events written but not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds", "Age of the oldest unpublished event, 0 when none"
)

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


class OutboxRelay(Worker):
    """Publishes outbox rows to `asf.events` with publisher confirms.

    Woken by NOTIFY `outbox` (sent by the outbox table's trigger on insert), polling every
    `poll_interval` as a fallback; a kit `Worker`, so it backs off, counts failures and stops
    like every other loop.
    """

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
        super().__init__("outbox-relay", dsn=dsn, channel="outbox", interval=poll_interval)
        self._pool = pool
        self._broker = broker
        self._batch_size = batch_size
        self._retention_days = retention_days
        self._last_purge = 0.0
        self._last_observed = 0.0

    async def stop(self, grace: float = 10.0, *, flush: bool = True) -> None:
        """Stop the loop; with `flush`, publish what is left first (graceful shutdown)."""
        await super().stop(grace)
        if flush:
            with contextlib.suppress(Exception):
                while await self.publish_batch():
                    pass

    async def round(self) -> bool:
        published = await self.publish_batch()
        await self._observe()
        return published >= self._batch_size

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
