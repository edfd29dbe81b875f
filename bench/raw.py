"""The raw limit of this machine: plain aio-pika and asyncpg, no framework.

`raw_hop` does exactly one hop's work per event — consume it, one transaction with the
inbox row, the state change and the outbox row, publish the next event with a publisher
confirm, ack — one event at a time, like a FastStream subscriber. `raw_postgres` is the
transaction alone; `raw_rabbitmq` is publish-with-confirms then consume-with-acks alone.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import asyncpg
import orjson

from bench.common import AMQP, Result, company_event, encode, now, scratch_database

SCHEMA = """
CREATE TABLE inbox (event_id uuid PRIMARY KEY, event_type text NOT NULL,
                    received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE companies (id uuid PRIMARY KEY, name text NOT NULL, status text NOT NULL,
                        municipality_code text NOT NULL, training_places integer NOT NULL,
                        version integer NOT NULL);
CREATE TABLE outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE,
                     routing_key text NOT NULL, body bytea NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
"""

TX_SQL = (
    "INSERT INTO inbox (event_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    """INSERT INTO companies (id, name, status, municipality_code, training_places, version)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status,
           municipality_code = EXCLUDED.municipality_code,
           training_places = EXCLUDED.training_places, version = EXCLUDED.version
       WHERE companies.version < EXCLUDED.version""",
    "INSERT INTO outbox (event_id, routing_key, body) VALUES ($1, $2, $3)",
)


async def _apply(conn: asyncpg.Connection, event: dict, out_body: bytes, out_id: uuid.UUID) -> None:
    p = event["payload"]
    async with conn.transaction():
        await conn.execute(TX_SQL[0], uuid.UUID(event["event_id"]), event["event_type"])
        await conn.execute(TX_SQL[1], uuid.UUID(p["id"]), p["name"], p["status"],
                           p["municipality_code"], p["training_places"],
                           event["aggregate_version"])
        await conn.execute(TX_SQL[2], out_id, "bench.next.v1", out_body)


async def raw_hop(n: int) -> Result:
    async with scratch_database("rawhop") as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(SCHEMA)
        connection = await aio_pika.connect(AMQP)
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=32)
        exchange = await channel.declare_exchange(f"bench.raw.{uuid.uuid4().hex[:6]}",
                                                  aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queue = await channel.declare_queue(
            f"bench.raw.in.{uuid.uuid4().hex[:6]}", durable=True,
            arguments={"x-queue-type": "quorum"})
        for i in range(n):
            await channel.default_exchange.publish(
                aio_pika.Message(encode(company_event(i)), delivery_mode=2), routing_key=queue.name)
        latencies: list[float] = []
        done = asyncio.Event()
        started = now()
        async with queue.iterator() as it:
            async for message in it:
                t0 = now()
                event = orjson.loads(message.body)
                out_id = uuid.uuid4()
                out = orjson.dumps({**event, "event_id": str(out_id), "event_type": "bench.next"})
                await _apply(conn, event, out, out_id)
                reply = aio_pika.Message(out, message_id=str(out_id), delivery_mode=2)
                await exchange.publish(reply, routing_key="bench.next.v1")
                await message.ack()
                latencies.append(now() - t0)
                if len(latencies) >= n:
                    done.set()
                    break
        elapsed = now() - started
        await queue.delete(if_unused=False, if_empty=False)
        await connection.close()
        await conn.close()
        return Result("raw hop (aio-pika + asyncpg)", n, elapsed, latencies)


async def raw_postgres(n: int) -> Result:
    async with scratch_database("rawpg") as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(SCHEMA)
        events = [company_event(i) for i in range(n)]
        latencies = []
        started = now()
        for event in events:
            t0 = now()
            out_id = uuid.uuid4()
            await _apply(conn, event, b"{}", out_id)
            latencies.append(now() - t0)
        elapsed = now() - started
        await conn.close()
        return Result("raw PostgreSQL transaction (inbox + state + outbox)", n, elapsed, latencies)


async def raw_rabbitmq(n: int) -> tuple[Result, Result]:
    connection = await aio_pika.connect(AMQP)
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
    publish = Result("raw RabbitMQ publish with confirm (one at a time)", n, now() - started,
                     latencies)
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
    consume = Result("raw RabbitMQ consume with ack", n, now() - started, latencies)
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return publish, consume
