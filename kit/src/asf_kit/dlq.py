"""The dead-letter queue seen from outside: list, show and redrive parked messages.

Listing takes each message without acknowledging it and puts it back afterwards, so the
queue is unchanged. Redriving publishes a message back to the service's main queue
(through the default exchange, so only this service sees it again) and only then
acknowledges it in the dead-letter queue: a crash in between duplicates, never loses,
and the inbox absorbs the duplicate.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from asf_contracts.topology import ServiceQueues


@dataclass(frozen=True)
class Parked:
    message_id: str | None
    routing_key: str
    reason: str
    parked_at: str
    body: bytes
    headers: dict[str, Any]


def _parked(m: AbstractIncomingMessage) -> Parked:
    headers = dict(m.headers or {})
    return Parked(
        message_id=m.message_id,
        routing_key=str(headers.get("x-original-routing-key") or m.routing_key or ""),
        reason=str(headers.get("x-park-reason", "")),
        parked_at=str(headers.get("x-parked-at", "")),
        body=m.body,
        headers=headers,
    )


@contextlib.asynccontextmanager
async def _dlq(broker_url: str, queues: ServiceQueues) -> AsyncIterator[
        tuple[aio_pika.abc.AbstractChannel, AbstractQueue]]:
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(queues.dead_letter, ensure=True)
        yield channel, queue
    finally:
        await connection.close()


async def _take_all(queue: AbstractQueue, limit: int) -> list[AbstractIncomingMessage]:
    taken: list[AbstractIncomingMessage] = []
    while len(taken) < limit:
        m = await queue.get(no_ack=False, fail=False)
        if m is None:
            break
        taken.append(m)
    return taken


async def list_parked(broker_url: str, queues: ServiceQueues, limit: int = 1000) -> list[Parked]:
    async with _dlq(broker_url, queues) as (_, queue):
        taken = await _take_all(queue, limit)
        result = [_parked(m) for m in taken]
        for m in taken:
            await m.nack(requeue=True)
        return result


async def redrive(
    broker_url: str, queues: ServiceQueues, message_id: str | None = None, limit: int = 1000
) -> int:
    """Send parked messages (all, or the one with `message_id`) back to the main queue."""
    async with _dlq(broker_url, queues) as (channel, queue):
        taken = await _take_all(queue, limit)
        sent = 0
        for m in taken:
            if message_id is not None and m.message_id != message_id:
                await m.nack(requeue=True)
                continue
            headers = {k: v for k, v in (m.headers or {}).items()
                       if not k.startswith("x-park") and k != "x-death"}
            headers["x-redriven-from"] = queues.dead_letter
            await channel.default_exchange.publish(
                aio_pika.Message(
                    m.body, headers=headers, message_id=m.message_id,
                    correlation_id=m.correlation_id, content_type=m.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queues.main,
            )
            await m.ack()
            sent += 1
        return sent
