"""The transactional outbox and its relay.

A service writes its events with `add_events` on the connection of the transaction that
makes the change (`asf_kit.uow.unit_of_work` does it), so the change and its events commit
or roll back together. The relay claims unpublished rows (`FOR UPDATE SKIP LOCKED`, so
replicas share the work), publishes them with publisher confirms, and marks them published
in the same transaction. A crash after the publish and before the commit republishes the
batch: delivery is at least once, and consumers deduplicate by `event_id` (see `inbox`).

The quick way out: a transaction that owns its commit (`uow.unit_of_work`, the consumer's
`inbox.once_in`) collects its events (`collecting`) and, right after the commit, hands them
to the relay of its own pool in memory (`hand_over`), which publishes them at once — no
NOTIFY, no second transaction before the publish — and marks them published afterwards, many
in one `UPDATE`. Such rows are written with a lease (`LEASE_SECONDS`): until it runs out the
polling relay of every replica leaves them alone, so an event is not published twice; when
the process dies between commit and publish, or the broker refuses, the lease runs out and
the poll publishes the row. A row written long before its commit is not handed over
(`HAND_OVER_WITHIN`): its publish could outlast the lease. The outbox table stays the
record of what must go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
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
from asf_kit.worker import BACKOFF, Worker

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
_INSERT_LEASED = """
INSERT INTO outbox (event_id, event_type, event_version, routing_key, correlation_id,
                    traceparent, body, lease_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp() + make_interval(secs => $8))
"""
_COLUMNS = ("event_id", "event_type", "event_version", "routing_key", "correlation_id",
            "traceparent", "body")

LEASE_SECONDS = 30.0
"""How long the polling relay leaves a handed-over row to the process that wrote it (from
its INSERT). Only a crash between commit and publish waits this long."""
HAND_OVER_WITHIN = 10.0
"""A handed-over row is published at once only if it was written less than this long ago;
an older one (a long transaction, a queue for the stream's lock) is left to the poll, so the
publish (at most `PUBLISH_TIMEOUT`) and its mark end well before the lease does and no
replica's poll publishes it a second time."""
PUBLISH_TIMEOUT = 10.0

_relays: dict[int, OutboxRelay] = {}
"""The running relay of each pool in this process (by the pool's id; a pool takes no weak
references). Several services may run in one process (tests), each with its own pool."""


@dataclass
class Collected:
    """The events of one transaction, to be handed to `relay` once it has committed."""

    relay: OutboxRelay
    rows: list[dict[str, Any]] = field(default_factory=list)


_collecting: ContextVar[Collected | None] = ContextVar("outbox_collecting", default=None)


@contextlib.contextmanager
def collecting(pool: Any) -> Iterator[Collected | None]:
    """Around a transaction on `pool`: the events `add_events` writes in it are collected
    (and leased) when a relay of that pool runs in this process; `hand_over` them after the
    commit. None (events left to the polling relay) when there is no such relay."""
    relay = _relays.get(id(pool))
    if relay is not None and relay._pool is not pool:
        relay = None
    collected = Collected(relay) if relay is not None and relay.running else None
    token = _collecting.set(collected)
    try:
        yield collected
    finally:
        _collecting.reset(token)


def hand_over(collected: Collected | None) -> None:
    """After the commit: the collected events to the relay, to be published now."""
    if collected is not None and collected.rows:
        collected.relay.hand_over(collected.rows)


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
    """Write events in the caller's transaction (one round trip for one event); inside
    `collecting`, leased and collected for the hand-over after the commit."""
    if not events:
        return
    collected = _collecting.get()
    rows = [_row(e) for e in events]
    if collected is None:
        if len(rows) == 1:
            await conn.execute(_INSERT, *rows[0])
        else:
            await conn.executemany(_INSERT, rows)
        return
    if len(rows) == 1:
        await conn.execute(_INSERT_LEASED, *rows[0], LEASE_SECONDS)
    else:
        await conn.executemany(_INSERT_LEASED, [(*r, LEASE_SECONDS) for r in rows])
    written = time.monotonic()
    collected.rows.extend({**dict(zip(_COLUMNS, r, strict=True)), "written": written}
                          for r in rows)


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
        self._in_hand: set[asyncio.Task[None]] = set()
        self._to_mark: list[UUID] = []
        self._marking: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        _relays[id(self._pool)] = self

    async def stop(self, grace: float = 10.0, *, flush: bool = True) -> None:
        """Stop the loop; with `flush`, publish what is left first (graceful shutdown): the
        events handed over are published and marked before the poll's last rounds."""
        if _relays.get(id(self._pool)) is self:
            del _relays[id(self._pool)]
        await super().stop(grace)
        if self._in_hand:
            await asyncio.wait(set(self._in_hand), timeout=grace)
        if self._marking is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._marking), grace)
        if flush:
            with contextlib.suppress(Exception):
                while await self.publish_batch():
                    pass

    # --- the quick way: rows handed over in memory right after their commit ---------------

    def hand_over(self, rows: list[dict[str, Any]]) -> None:
        """Publish committed, leased rows now (see the module docstring)."""
        task = asyncio.get_running_loop().create_task(self._publish_handed(rows))
        self._in_hand.add(task)
        task.add_done_callback(self._in_hand.discard)

    async def _publish_handed(self, rows: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        late = [r for r in rows if now - r["written"] >= HAND_OVER_WITHIN]
        if late:
            log.info("events left to the poll: written too long before their commit",
                     count=len(late))
            rows = [r for r in rows if now - r["written"] < HAND_OVER_WITHIN]
            if not rows:
                return
        outcomes: list[BaseException | None]
        if len(rows) == 1:  # the common case: no task of gather's own
            try:
                await self._publish(rows[0])
                outcomes = [None]
            except Exception as e:
                outcomes = [e]
        else:
            outcomes = await asyncio.gather(*(self._publish(r) for r in rows),
                                            return_exceptions=True)
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("event not published at once; the poll publishes it when its "
                            "lease runs out", event_id=str(row["event_id"]),
                            error=str(outcome), error_type=type(outcome).__name__)
                continue
            EVENTS_PUBLISHED.labels(row["event_type"]).inc()
            self._to_mark.append(row["event_id"])
        if self._to_mark and (self._marking is None or self._marking.done()):
            self._marking = asyncio.get_running_loop().create_task(self._mark())

    async def _mark(self) -> None:
        """Mark what was published, many rows in one `UPDATE`, a few ms after the first (the
        events are out already: this only keeps the poll off them). A failure is retried;
        the rows' leases keep the poll away meanwhile."""
        failures = 0
        while self._to_mark:
            await asyncio.sleep(0.05 if not failures else BACKOFF.after(failures))
            ids, self._to_mark = self._to_mark, []
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute(
                        "UPDATE outbox SET published_at = now() WHERE event_id = ANY($1::uuid[])",
                        ids)
                failures = 0
            except Exception as e:
                failures += 1
                self._to_mark[:0] = ids
                log.warning("could not mark published events; will retry", count=len(ids),
                            error=str(e), error_type=type(e).__name__)
                if failures >= 5:
                    return  # the poll republishes them when their leases run out

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
                FROM outbox
                WHERE published_at IS NULL AND (lease_until IS NULL OR lease_until < now())
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

    async def _publish(self, row: Mapping[str, Any] | asyncpg.Record) -> None:
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

    async def _send(self, row: Mapping[str, Any] | asyncpg.Record,
                    headers: dict[str, Any]) -> None:
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
            timeout=PUBLISH_TIMEOUT,
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
