"""Consuming events: one quorum queue per service, inbox deduplication, delayed
retries and a dead-letter queue for what cannot be handled.

The way a message goes:

    asf.events ──binding──▶ <svc>.events ──handler ok──▶ ack
                                │ handler raised (try n < MAX_DELIVERIES)
                                ▼ reject
                         <svc>.retry ──▶ <svc>.events.retry (TTL) ──▶ back to <svc>.events
    poison (bad JSON, unknown version, invalid payload) or try n = MAX_DELIVERIES
                                ▼ published with the reason, then acked
                         <svc>.dlx ──▶ <svc>.events.dlq  (list / show / redrive by CLI)

Several events at once (`CONSUMER_CONCURRENCY`, per process): the channel's prefetch keeps
twice that many delivered and unacked, and at most `concurrency` are in their handlers at a
time. Events of one aggregate (`aggregate_id`) take turns in the order they were delivered
(`InTurn`), so a process applies them in order; the `aggregate_version` guards of the read
models stay the safety net for what no process can order — events spread over replicas, an
event back from the retry queue after later ones were applied. The consumer acks, rejects
or parks each message itself (FastStream's `AckPolicy.MANUAL`) before its handler task ends,
rejecting to the retry queue whatever escapes (a park whose publish failed),
and FastStream's subscriber stop (the runtime's graceful stop) cancels the subscription and
waits — up to the broker's `graceful_timeout`, 15 s — for every message it has taken in: so a
graceful stop applies and acks what is in flight, and what was delivered but not begun goes
back to the queue when the channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitExchange,
    RabbitMessage,
    RabbitQueue,
)
from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, ValidationError

from asf_contracts import Envelope
from asf_contracts.topology import MAX_DELIVERIES, RETRY_DELAY_MS, ServiceQueues
from asf_kit import context, inbox, telemetry
from asf_kit.db import Conn
from asf_kit.logging import bound_contextvars, get_logger
from asf_kit.outbox import EXCHANGE_DECL
from asf_kit.runtime import Runtime

log = get_logger(__name__)

MESSAGES_CONSUMED = Counter(
    "messages_consumed_total", "Messages consumed", ["event_type", "outcome"]
)
MESSAGE_SECONDS = Histogram(
    "message_handling_seconds", "Time to handle one message", ["event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)

LAST_CONSUMED = Gauge(
    "messages_last_consumed_timestamp_seconds",
    "When this process last took a message from its queue (or started consuming)",
)
EVENT_AGE = Histogram(
    "messages_event_age_seconds", "From an event's occurred_at to its effect applied here",
    ["event_type"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)

P = TypeVar("P", bound=BaseModel)
Handler = Callable[[Conn, Envelope, Any], Awaitable[None]]


def main_queue(q: ServiceQueues) -> RabbitQueue:
    return RabbitQueue(
        q.main, queue_type=QueueType.QUORUM, durable=True,
        arguments={
            "x-dead-letter-exchange": q.retry_exchange,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def retry_queue(q: ServiceQueues) -> RabbitQueue:
    return RabbitQueue(
        q.retry, queue_type=QueueType.QUORUM, durable=True,
        arguments={
            "x-message-ttl": RETRY_DELAY_MS,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": q.main,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_letter_queue(q: ServiceQueues) -> RabbitQueue:
    return RabbitQueue(q.dead_letter, queue_type=QueueType.QUORUM, durable=True)


def retry_exchange(q: ServiceQueues) -> RabbitExchange:
    return RabbitExchange(q.retry_exchange, type=ExchangeType.FANOUT, durable=True)


def dead_letter_exchange(q: ServiceQueues) -> RabbitExchange:
    return RabbitExchange(q.dead_letter_exchange, type=ExchangeType.FANOUT, durable=True)


def _previous_failures(headers: dict[str, Any], queue: str) -> int:
    deaths = headers.get("x-death") or []
    return sum(
        int(d.get("count", 0)) for d in deaths
        if d.get("queue") == queue and d.get("reason") == "rejected"
    )


class InTurn:
    """Per-key turns in arrival order: `async with turns.of(key)` waits until every earlier
    holder of that key is done. asyncio's lock hands itself to its waiters first in, first
    out, and a key's lock is dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def of(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


async def _the_message(msg: RabbitMessage) -> RabbitMessage:
    """The decoder: the handler gets the message itself and parses the body on its own (the
    runtime's broker runs without FastStream's dependency injection, see `Runtime`)."""
    return msg


class EventConsumer:
    """The events one service consumes, each with the handler that applies it."""

    def __init__(self, runtime: Runtime, queues: ServiceQueues,
                 concurrency: int | None = None) -> None:
        self.runtime = runtime
        self.queues = queues
        wanted = concurrency or runtime.settings.consumer_concurrency
        # Each handler holds a pooled connection: leave two for requests, readiness and the
        # relay, or they would queue behind a backlog of events.
        self.concurrency = max(1, min(wanted, runtime.settings.db_pool_max - 2))
        """Events in their handlers at once in this process (`CONSUMER_CONCURRENCY`, at most
        `DB_POOL_MAX` - 2)."""
        if self.concurrency < wanted:
            log.warning("consumer concurrency capped by the database pool",
                        wanted=wanted, concurrency=self.concurrency)
        self.prefetch = max(32, 2 * self.concurrency)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._turns = InTurn()
        self.once: inbox.Once = inbox.once_in(lambda: runtime.pool)
        """Where each effect runs, with its event claimed in the inbox (see `inbox.Once`)."""
        self.handlers: dict[tuple[str, int], tuple[type[BaseModel], Handler]] = {}
        runtime.on_connect.append(self.declare)
        runtime.consumers.append(self)
        self._subscribe()

    def on(
        self, event_type: str, version: int, payload: type[P]
    ) -> Callable[[Callable[[Conn, Envelope, P], Awaitable[None]]], Handler]:
        """Register the handler of one event type and major version."""

        def decorate(fn: Callable[[Conn, Envelope, P], Awaitable[None]]) -> Handler:
            self.handlers[(event_type, version)] = (payload, fn)
            return fn

        return decorate

    @property
    def routing_keys(self) -> list[str]:
        return sorted({f"{t}.v{v}" for t, v in self.handlers})

    async def declare(self) -> None:
        """Declare the queues and bindings; safe to repeat."""
        broker = self.runtime.broker
        exchange = await broker.declare_exchange(EXCHANGE_DECL)
        retry_ex = await broker.declare_exchange(retry_exchange(self.queues))
        dlx = await broker.declare_exchange(dead_letter_exchange(self.queues))
        main = await broker.declare_queue(main_queue(self.queues))
        retry = await broker.declare_queue(retry_queue(self.queues))
        dlq = await broker.declare_queue(dead_letter_queue(self.queues))
        await retry.bind(retry_ex, routing_key="#")
        await dlq.bind(dlx, routing_key="#")
        for key in self.routing_keys:
            await main.bind(exchange, routing_key=key)
        LAST_CONSUMED.set_to_current_time()

    def _subscribe(self) -> None:
        """Attach the FastStream subscriber; the queue itself is declared at connect."""
        self.runtime.broker.subscriber(
            RabbitQueue(self.queues.main, queue_type=QueueType.QUORUM, declare=False),
            channel=Channel(prefetch_count=self.prefetch),
            decoder=_the_message,
            no_reply=True,
            ack_policy=AckPolicy.MANUAL,  # settled in `_on_message`, whatever happens
            title=self.queues.main,
        )(self._on_message)

    async def _on_message(self, msg: RabbitMessage) -> None:
        try:
            await self._settle(msg)
        except Exception as e:
            # What escaped (a park whose publish failed, say) would leave the message unacked
            # on a live channel, holding a prefetch slot: back through the retry queue. A
            # message settled already is not settled again (FastStream checks).
            log.error("message not settled; rejected to the retry queue", error=str(e),
                      error_type=type(e).__name__)
            with contextlib.suppress(Exception):
                await msg.reject(requeue=False)

    async def _settle(self, msg: RabbitMessage) -> None:
        # Nothing here awaits before the event's turn is taken (`InTurn.of`): deliveries start
        # their tasks in delivery order, so they queue for their aggregate's turn in that order.
        started = time.perf_counter()
        LAST_CONSUMED.set_to_current_time()
        body = bytes(msg.body)
        headers = dict(msg.raw_message.headers or {})
        try:
            event = Envelope.model_validate_json(body)
        except ValidationError as e:
            await self.park(msg, f"malformed envelope: {_first_error(e)}")
            MESSAGES_CONSUMED.labels("unknown", "parked").inc()
            return
        async with self._turns.of(event.aggregate_id), self._slots:
            await self._apply(msg, event, headers, started)

    async def _apply(self, msg: RabbitMessage, event: Envelope, headers: dict[str, Any],
                     started: float) -> None:
        entry = self.handlers.get((event.event_type, event.event_version))
        if entry is None:
            await self.park(
                msg, f"no handler for {event.event_type} version {event.event_version}"
            )
            MESSAGES_CONSUMED.labels(event.event_type, "parked").inc()
            return
        model, handler = entry
        try:
            payload = model.model_validate(event.payload)
        except ValidationError as e:
            await self.park(msg, f"payload does not match its schema: {_first_error(e)}")
            MESSAGES_CONSUMED.labels(event.event_type, "parked").inc()
            return

        context.correlation_id.set(event.correlation_id)
        context.causation_id.set(str(event.event_id))
        traceparent = headers.get("traceparent")
        with (
            bound_contextvars(event_id=str(event.event_id), event_type=event.event_type,
                              correlation_id=event.correlation_id),
            telemetry.span(f"consume {event.event_type}", kind=telemetry.SpanKind.CONSUMER,
                           traceparent=traceparent if isinstance(traceparent, str) else None,
                           attributes={"messaging.system": "rabbitmq",
                                       "messaging.message.id": str(event.event_id),
                                       "messaging.destination.name": self.queues.main}),
        ):
            try:
                async with self.once(event) as conn:
                    first = conn is not None
                    if conn is not None:
                        await handler(conn, event, payload)
            except Exception as e:
                tries = _previous_failures(headers, self.queues.main) + 1
                if tries >= MAX_DELIVERIES:
                    log.error("event failed for good; parked", tries=tries, error=str(e),
                              error_type=type(e).__name__)
                    await self.park(msg, f"failed {tries} times: {type(e).__name__}: {e}")
                    MESSAGES_CONSUMED.labels(event.event_type, "parked").inc()
                    return
                log.warning("event failed; will retry", tries=tries, error=str(e),
                            error_type=type(e).__name__)
                MESSAGES_CONSUMED.labels(event.event_type, "retried").inc()
                await msg.reject(requeue=False)  # dead-lettered to the retry queue
                return
            await msg.ack()
            MESSAGES_CONSUMED.labels(event.event_type, "applied" if first else "duplicate").inc()
            MESSAGE_SECONDS.labels(event.event_type).observe(time.perf_counter() - started)
            if first:
                EVENT_AGE.labels(event.event_type).observe(
                    (datetime.now(UTC) - event.occurred_at).total_seconds())

    async def park(self, msg: RabbitMessage, reason: str) -> None:
        """Put a message in the dead-letter queue with the reason, then ack it."""
        raw = msg.raw_message
        headers = {k: v for k, v in (raw.headers or {}).items() if k != "x-death"}
        headers.update({
            "x-park-reason": reason[:1000],
            "x-parked-at": datetime.now(UTC).isoformat(),
            "x-original-routing-key": raw.routing_key or "",
            "x-parked-by": self.queues.service,
        })
        log.warning("message parked in dead-letter queue", reason=reason[:300],
                    message_id=raw.message_id)
        await self.runtime.broker.publish(
            bytes(raw.body),
            exchange=dead_letter_exchange(self.queues),
            routing_key=raw.routing_key or "",
            message_id=raw.message_id,
            correlation_id=raw.correlation_id,
            headers=headers,
            content_type=raw.content_type,
            persist=True,
            mandatory=False,
            timeout=10,  # a blocked broker: fail (the message is retried), never hang
        )
        await msg.ack()


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))
