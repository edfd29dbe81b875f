"""Metrics read when Prometheus scrapes: readiness, the outbox backlog, the consumers' queues.

State is read at scrape time rather than refreshed by a background loop, so a loop that is
stuck (a relay failing every round, a consumer that stopped) cannot freeze its own gauges
at a healthy value. Each read is bounded: `/metrics` answers even when PostgreSQL or
RabbitMQ does not.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from prometheus_client import Gauge

from asf_contracts.topology import ServiceQueues
from asf_kit.logging import get_logger
from asf_kit.outbox import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE

log = get_logger(__name__)

READINESS = Gauge("readiness_check", "1 when the readiness check passes, else 0", ["check"])
QUEUE_MESSAGES = Gauge(
    "broker_queue_messages", "Messages ready in one of this service's queues", ["queue", "kind"]
)
QUEUE_CONSUMERS = Gauge(
    "broker_queue_consumers", "Consumers attached to one of this service's queues",
    ["queue", "kind"],
)
TIMEOUT = 3.0


def record_readiness(checks: dict[str, bool]) -> None:
    for name, ok in checks.items():
        READINESS.labels(name).set(1 if ok else 0)


async def observe_outbox(pool: asyncpg.Pool) -> None:
    """The unpublished events and the age of the oldest, straight from the outbox table."""
    async with pool.acquire(timeout=TIMEOUT) as conn:
        row = await conn.fetchrow(
            """
            SELECT count(*) AS backlog,
                   coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
            FROM outbox WHERE published_at IS NULL
            """,
            timeout=TIMEOUT,
        )
    assert row is not None
    OUTBOX_BACKLOG.set(row["backlog"])
    OUTBOX_OLDEST_AGE.set(float(row["age"]))


async def observe_queues(connection: Any, queues: ServiceQueues) -> None:
    """Messages waiting and consumers attached, per queue (main, retry, dead letter).

    Passive declares on a channel of their own: a missing queue closes that channel only,
    never the one the service publishes and consumes on.
    """
    channel = await connection.channel()
    try:
        for kind, name in (("main", queues.main), ("retry", queues.retry),
                           ("dead_letter", queues.dead_letter)):
            underlay = await channel.get_underlay_channel()
            ok = await underlay.queue_declare(name, passive=True, timeout=TIMEOUT)
            QUEUE_MESSAGES.labels(name, kind).set(ok.message_count or 0)
            QUEUE_CONSUMERS.labels(name, kind).set(ok.consumer_count or 0)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def bounded(name: str, read: Any) -> None:
    """Run one read with a deadline; a failure leaves the gauge as it was and is logged."""
    try:
        await asyncio.wait_for(read, TIMEOUT * 2)
    except Exception as e:
        log.warning("metric not read", metric=name, error=str(e), error_type=type(e).__name__)
