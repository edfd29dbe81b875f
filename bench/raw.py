"""The raw limit of this machine: plain aio-pika and asyncpg, no framework.

`raw_hop` does exactly the work of one casework hop (see `bench.hop`) and nothing more:
consume a `registry.company.deregistered.v1`, one transaction with the same SQL casework
runs (inbox row, company read model, flag the active placements, outbox row, the change
kept and NOTIFYed for `/stream`), publish `casework.placements.flagged.v1` to `asf.events`
with a publisher confirm, ack — one event at a time. It does not mark the outbox row
published afterwards (the project's relay does, in batches), so the limit errs on the fast
side.

`raw_hop_concurrent` is the same hop with `in_flight` events handled at once (prefetch
`in_flight`, a task per delivery, a pool of connections): what this machine can do with the
hop's SQL when nothing waits for one event before starting the next. Its best of 16, 32 and
64 in flight is the raw limit every hop ratio is given against (`RAW_IN_FLIGHT`).

`raw_postgres` is that transaction alone; `raw_rabbitmq` is publish-with-confirms to a
quorum queue, then consume-with-acks, alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import orjson

from asf_contracts import EXCHANGE
from bench.common import Result, company_event, encode, now

# Verbatim what casework runs: asf_kit.inbox.claim, casework.store.upsert_company,
# casework.store.flag_active_placements, asf_kit.outbox._INSERT, casework.store.add_stream_event.
INBOX = """
        INSERT INTO inbox (event_id, event_type) VALUES ($1, $2)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING true
        """
UPSERT = """
        INSERT INTO companies (id, name, municipality_code, status, training_places, version)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name, municipality_code = EXCLUDED.municipality_code,
            status = EXCLUDED.status, training_places = EXCLUDED.training_places,
            version = EXCLUDED.version, updated_at = now()
        WHERE companies.version < EXCLUDED.version
        RETURNING true
        """
FLAG = """
        WITH flagged AS (
            UPDATE placements SET flagged_at = $3, flag_reason = $2, version = version + 1
            WHERE company_id = $1 AND status = 'active' AND flagged_at IS NULL
            RETURNING id, participant_id
        )
        SELECT f.id, f.participant_id, p.municipality_code, p.assigned_to, p.stage
        FROM flagged f JOIN participants p ON p.id = f.participant_id
        ORDER BY f.id
        """
OUTBOX = """
INSERT INTO outbox (event_id, event_type, event_version, routing_key, correlation_id,
                    traceparent, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
STREAM = """
        WITH serial AS (SELECT pg_advisory_xact_lock(hashtext('casework.stream_events'), 0)),
        kept AS (
            INSERT INTO stream_events (municipality_code, participant_id, body)
            SELECT $2, $3, $4 FROM serial RETURNING id
        )
        SELECT id FROM kept, pg_notify($1, ($4::jsonb || jsonb_build_object('id', id))::text)
        """
FLAGGED = "casework.placements.flagged"
RAW_IN_FLIGHT = (16, 32, 64)
"""The in-flight counts of the concurrent raw hop; the raw limit is the best of them."""


async def _apply(conn: asyncpg.Connection, body: bytes) -> tuple[bytes, dict[str, str]] | None:
    """The transaction of one event; the outgoing event (body, ids) when one is due."""
    event = orjson.loads(body)
    p = event["payload"]
    cid = uuid.UUID(p["id"])
    out: tuple[bytes, dict[str, str]] | None = None
    async with conn.transaction():
        if not await conn.fetchval(INBOX, uuid.UUID(event["event_id"]), event["event_type"]):
            return None
        applied = await conn.fetchval(UPSERT, cid, p["name"], p["municipality_code"],
                                      p["status"], p["training_places"],
                                      event["aggregate_version"])
        if not applied or p["status"] != "deregistered":
            return None
        reason = p.get("deregistration_reason") or "deregistered"
        flagged = await conn.fetch(FLAG, cid, reason, datetime.now(UTC))
        if not flagged:
            return None
        out_id = str(uuid.uuid4())
        out_body = orjson.dumps({
            "event_id": out_id, "event_type": FLAGGED, "event_version": 1,
            "occurred_at": datetime.now(UTC).isoformat(), "producer": "casework",
            "correlation_id": event["correlation_id"], "causation_id": event["event_id"],
            "aggregate_id": p["id"], "aggregate_version": event["aggregate_version"],
            "payload": {
                "company_id": p["id"], "company_name": p["name"], "reason": reason,
                "placements": [{"placement_id": str(r["id"]),
                                "participant_id": str(r["participant_id"]),
                                "municipality_code": r["municipality_code"],
                                "assigned_to": r["assigned_to"]} for r in flagged],
                "case_workers": sorted({r["assigned_to"] for r in flagged}),
            },
        })
        await conn.execute(OUTBOX, uuid.UUID(out_id), FLAGGED, 1, FLAGGED + ".v1",
                           event["correlation_id"], None, out_body)
        for r in flagged:
            await conn.fetchval(STREAM, "casework_changes", r["municipality_code"],
                                r["participant_id"], orjson.dumps({
                                    "participant_id": str(r["participant_id"]),
                                    "municipality_code": r["municipality_code"],
                                    "stage": r["stage"], "event": FLAGGED}).decode())
        out = (out_body, {"event_id": out_id, "correlation_id": event["correlation_id"]})
    return out


@dataclass
class _HopQueues:
    """One raw hop's broker side: the input queue (filled beforehand or at a rate), the
    exchange it publishes to and the sink that counts what arrives."""

    exchange: aio_pika.abc.AbstractExchange
    sink: Any
    queue: aio_pika.abc.AbstractQueue
    feeder: asyncio.Future[Any] | None


async def _open_hop(connection: aio_pika.abc.AbstractConnection, companies: list[uuid.UUID],
                    rate: float | None, prefetch: int, prefix: str) -> _HopQueues:
    from bench.hop import Sink, _prefill, deregistered, pace

    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                              durable=True)
    sink = Sink(await connection.channel(), len(companies))
    await sink.start()
    queue = await channel.declare_queue(f"{prefix}.{uuid.uuid4().hex[:6]}", durable=True,
                                        arguments={"x-queue-type": "quorum"})
    bodies = [deregistered(c, i) for i, c in enumerate(companies)]
    feeder = None
    if rate is None:
        await _prefill(channel, queue.name, bodies)
    else:
        feeder = asyncio.ensure_future(
            pace(await connection.channel(publisher_confirms=True), queue.name, bodies, rate))
    return _HopQueues(exchange, sink, queue, feeder)


async def _publish_flagged(exchange: aio_pika.abc.AbstractExchange,
                           out: tuple[bytes, dict[str, str]] | None) -> None:
    """Publish what `_apply` produced (with the channel's confirm), as casework's relay."""
    if out is None:
        return
    body, ids = out
    await exchange.publish(aio_pika.Message(
        body, message_id=ids["event_id"], correlation_id=ids["correlation_id"],
        headers={"event_type": FLAGGED, "event_version": 1},
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=FLAGGED + ".v1")


async def raw_hop(dsn: str, broker_url: str, companies: list[uuid.UUID],
                  rate: float | None = None) -> Result:
    """Consume one deregistration per company, as casework would, and publish: queued
    beforehand, or published at `rate` per second while it runs."""
    conn = await asyncpg.connect(dsn)
    connection = await aio_pika.connect(broker_url)
    try:
        hop = await _open_hop(connection, companies, rate, 32, "bench.raw.in")
        exchange, sink, queue, feeder = hop.exchange, hop.sink, hop.queue, hop.feeder
        latencies: list[float] = []
        first_ns = 0
        first_cpu = 0.0
        async with queue.iterator() as it:
            async for message in it:
                if not first_ns:
                    first_ns = time.time_ns()
                    first_cpu = time.process_time()
                t0 = now()
                await _publish_flagged(exchange, await _apply(conn, message.body))
                await message.ack()
                latencies.append(now() - t0)
                if len(latencies) >= len(companies):
                    break
        await asyncio.wait_for(sink.done.wait(), 60)
        cpu = time.process_time() - first_cpu
        if feeder is not None:
            await feeder
        elapsed = (sink.last_ns - first_ns) / 1e9
        await sink.stop()
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
        await conn.close()
    result = Result("raw hop (aio-pika + asyncpg)", len(companies), elapsed, latencies)
    result.cpu_ms = round(cpu / len(companies) * 1000, 3)  # type: ignore[attr-defined]
    return result


async def raw_hop_concurrent(dsn: str, broker_url: str, companies: list[uuid.UUID],
                             rate: float | None = None, in_flight: int = 32) -> Result:
    """The hop with `in_flight` events handled at once: a task per delivery (prefetch
    `in_flight`), each taking a pooled connection for its transaction, publishing with a
    confirm after the commit and acking after the confirm."""
    pool = await asyncpg.create_pool(dsn, min_size=min(in_flight, 16),
                                     max_size=min(in_flight, 32))
    assert pool is not None
    connection = await aio_pika.connect(broker_url)
    try:
        hop = await _open_hop(connection, companies, rate, in_flight, "bench.rawc.in")
        exchange, sink, queue, feeder = hop.exchange, hop.sink, hop.queue, hop.feeder
        latencies: list[float] = []
        clock = {"first_ns": 0, "first_cpu": 0.0}
        handled = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            if not clock["first_ns"]:
                clock["first_ns"] = time.time_ns()
                clock["first_cpu"] = time.process_time()
            t0 = now()
            async with pool.acquire() as conn:
                out = await _apply(conn, message.body)
            await _publish_flagged(exchange, out)
            await message.ack()
            latencies.append(now() - t0)
            if len(latencies) >= len(companies):
                handled.set()

        tag = await queue.consume(on_message)
        await asyncio.wait_for(handled.wait(), 300)
        await asyncio.wait_for(sink.done.wait(), 60)
        cpu = time.process_time() - float(clock["first_cpu"])
        await queue.cancel(tag)
        if feeder is not None:
            await feeder
        elapsed = (sink.last_ns - int(clock["first_ns"])) / 1e9
        await sink.stop()
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
        await pool.close()
    result = Result(f"raw hop, {in_flight} in flight", len(companies), elapsed, latencies)
    result.cpu_ms = round(cpu / len(companies) * 1000, 3)  # type: ignore[attr-defined]
    return result


async def raw_postgres(dsn: str, companies: list[uuid.UUID]) -> Result:
    """The hop's transaction alone, one after the other on one connection."""
    from bench.hop import deregistered

    conn = await asyncpg.connect(dsn)
    try:
        bodies = [deregistered(c, i) for i, c in enumerate(companies)]
        latencies = []
        started = now()
        for body in bodies:
            t0 = now()
            await _apply(conn, body)
            latencies.append(now() - t0)
        elapsed = now() - started
    finally:
        await conn.close()
    return Result("raw PostgreSQL: the hop's transaction alone", len(bodies), elapsed, latencies)


async def raw_rabbitmq(broker_url: str, n: int) -> tuple[Result, Result]:
    connection = await aio_pika.connect(broker_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=32)
    queue = await channel.declare_queue(f"bench.rawmq.{uuid.uuid4().hex[:6]}", durable=True,
                                        arguments={"x-queue-type": "quorum"})
    body = encode(company_event(0))
    latencies: list[float] = []
    started = now()
    for _ in range(n):
        t0 = now()
        await channel.default_exchange.publish(aio_pika.Message(body, delivery_mode=2),
                                               routing_key=queue.name)
        latencies.append(now() - t0)
    publish = Result("raw RabbitMQ: publish with confirm to a quorum queue, one at a time", n,
                     now() - started, latencies)
    latencies = []
    started = now()
    count = 0
    async with queue.iterator() as it:
        async for message in it:
            t0 = now()
            await message.ack()
            latencies.append(now() - t0)
            count += 1
            if count >= n:
                break
    consume = Result("raw RabbitMQ: consume with ack (prefetch 32)", n, now() - started,
                     latencies)
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return publish, consume
