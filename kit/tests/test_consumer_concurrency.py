"""Several events at once per consumer process, against the real PostgreSQL and RabbitMQ:
events of one aggregate are still applied in the order they were delivered, and a graceful
stop applies and acks what is in flight, so nothing is lost and nothing is applied twice."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import aio_pika
import asyncpg
import pytest
from pydantic import BaseModel

from asf_contracts import Envelope
from asf_contracts.topology import ServiceQueues
from asf_kit.consumer import EventConsumer, main_queue
from asf_kit.db import Conn
from asf_kit.runtime import Runtime
from asf_kit.settings import ServiceSettings
from asf_testing import delete_queues, envelope, fresh_database, unique_namespace

THINGS = """
CREATE TABLE things (
    id      uuid PRIMARY KEY,
    version integer NOT NULL,
    applied integer NOT NULL      -- how many versions were applied (the guard skipped none)
);
"""


class Counted(BaseModel):
    n: int


@dataclass
class Consuming:
    dsn: str
    broker_url: str
    queues: ServiceQueues
    concurrency: int
    pause: Callable[[], float]
    seen: dict[UUID, list[int]] = field(default_factory=lambda: defaultdict(list))
    """The versions each aggregate's handler saw, in the order it saw them."""
    handling: int = 0
    peak: int = 0
    duplicates: list[UUID] = field(default_factory=list)

    def runtime(self) -> Runtime:
        settings = ServiceSettings(app_env="development", database_url=self.dsn,
                                   broker_url=self.broker_url, db_pool_max=self.concurrency + 2,
                                   consumer_concurrency=self.concurrency)
        runtime = Runtime(settings, relay=False)
        consumer = EventConsumer(runtime, self.queues)
        inbox = consumer.once

        @contextlib.asynccontextmanager
        async def once(event: Envelope) -> AsyncIterator[Conn | None]:
            async with inbox(event) as conn:
                if conn is None:
                    self.duplicates.append(event.event_id)
                yield conn

        consumer.once = once

        @consumer.on("test.thing.counted", 1, Counted)
        async def counted(conn: Conn, event: Envelope, payload: Counted) -> None:
            self.handling += 1
            self.peak = max(self.peak, self.handling)
            try:
                self.seen[event.aggregate_id].append(event.aggregate_version)
                await asyncio.sleep(self.pause())
                await conn.execute(
                    """
                    INSERT INTO things (id, version, applied) VALUES ($1, $2, 1)
                    ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,
                                                   applied = things.applied + 1
                    WHERE things.version < EXCLUDED.version
                    """, event.aggregate_id, event.aggregate_version)
            finally:
                self.handling -= 1

        return runtime


@pytest.fixture
async def consuming(postgres_url: str, broker_url: str, tmp_path: Path
                    ) -> AsyncIterator[Callable[[int, Callable[[], float]], Consuming]]:
    (tmp_path / "001_things.sql").write_text(THINGS)
    queues = ServiceQueues(service=unique_namespace() + "kit-concurrency")
    async with fresh_database(postgres_url, "kit_concurrency", tmp_path) as dsn:
        yield lambda concurrency, pause: Consuming(dsn, broker_url, queues, concurrency, pause)
    await delete_queues(broker_url, queues)


async def publish(broker_url: str, queues: ServiceQueues, events: list[Envelope]) -> None:
    """Straight into the service's queue (declared as the consumer declares it), in this
    order, with confirms."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        q = main_queue(queues)
        await channel.declare_queue(q.name, durable=True, arguments=dict(q.arguments or {}))
        for i in range(0, len(events), 100):
            await asyncio.gather(*(channel.default_exchange.publish(
                aio_pika.Message(e.model_dump_json().encode(), message_id=str(e.event_id),
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=q.name) for e in events[i:i + 100]))
    finally:
        await connection.close()


async def waiting_for(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def queued(broker_url: str, queue: str) -> int:
    connection = await aio_pika.connect(broker_url)
    try:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


def versions_of(aggregate: UUID, count: int) -> list[Envelope]:
    return [envelope("test.thing.counted", Counted(n=v), aggregate_id=aggregate,
                     aggregate_version=v) for v in range(1, count + 1)]


async def test_events_of_one_aggregate_are_applied_in_order_while_others_run_at_once(
    consuming: Callable[[int, Callable[[], float]], Consuming],
) -> None:
    c = consuming(8, lambda: random.uniform(0, 0.004))  # jitter, not security
    # Fewer aggregates than events at once, so each has several versions in flight together.
    aggregates = [uuid.uuid4() for _ in range(3)]
    per = [versions_of(a, 25) for a in aggregates]
    # Interleaved as a busy producer would send them: version 1 of each, then version 2, ...
    events = [per[a][v] for v in range(25) for a in range(len(aggregates))]
    await publish(c.broker_url, c.queues, events)  # the queue is there before we start
    runtime = c.runtime()
    await runtime.start()
    try:
        async def all_applied() -> bool:
            async with runtime.pool.acquire() as conn:
                done = await conn.fetchval("SELECT count(*) FROM things WHERE version = 25")
            return bool(done == len(aggregates))

        await waiting_for(all_applied)
        async with runtime.pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, version, applied FROM things")
            inbox = await conn.fetchval("SELECT count(*) FROM inbox")
    finally:
        await runtime.stop()
    assert {r["id"]: (r["version"], r["applied"]) for r in rows} == {
        a: (25, 25) for a in aggregates}  # every version applied, none skipped by the guard
    assert {a: c.seen[a] for a in aggregates} == {a: list(range(1, 26)) for a in aggregates}
    assert inbox == len(events)
    assert c.duplicates == []
    assert c.peak == len(aggregates)  # one per aggregate at a time, the aggregates at once


async def test_a_graceful_stop_applies_and_acks_what_is_in_flight(
    consuming: Callable[[int, Callable[[], float]], Consuming],
) -> None:
    c = consuming(6, lambda: 0.3)
    events = [e for _ in range(60) for e in versions_of(uuid.uuid4(), 1)]
    await publish(c.broker_url, c.queues, events)
    runtime = c.runtime()
    await runtime.start()
    await waiting_for(lambda: _true(c.handling == 6), within=30)
    await runtime.stop()  # six in their handlers, more delivered and waiting for a slot
    assert c.handling == 0

    async def applied() -> int:
        async with _connection(c.dsn) as conn:
            return int(await conn.fetchval("SELECT count(*) FROM inbox"))

    first = await applied()
    assert 6 <= first < len(events)
    # What was applied is acked; the rest (never begun) is back in the queue, none lost.
    assert await queued(c.broker_url, c.queues.main) == len(events) - first

    runtime = c.runtime()  # the next process takes the rest
    await runtime.start()
    try:
        await waiting_for(lambda: _equals(applied, len(events)))
    finally:
        await runtime.stop()
    async with _connection(c.dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM things") == len(events)
    assert c.duplicates == []  # nothing applied before the stop came again
    assert sum(len(v) for v in c.seen.values()) == len(events)


async def _true(value: bool) -> bool:
    return value


async def _equals(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() == expected


@contextlib.asynccontextmanager
async def _connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
