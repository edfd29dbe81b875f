"""A real PostgreSQL and a real RabbitMQ: fresh databases, queue namespaces, and a tap on
`asf.events` that collects what is published."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import orjson

from asf_contracts import EXCHANGE
from asf_contracts.topology import ServiceQueues
from asf_kit.db import migrate


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    result = subprocess.run([docker, "info"], capture_output=True, check=False)
    return result.returncode == 0


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def fresh_database(
    server_url: str, prefix: str, migrations: Path | None
) -> AsyncIterator[str]:
    """A new, migrated database that is dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(server_url, name)
    try:
        if migrations is not None:
            await migrate(dsn, migrations)
        yield dsn
    finally:
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def unique_namespace() -> str:
    """A queue namespace unique to this test session."""
    return f"test-{uuid.uuid4().hex[:8]}."


async def delete_queues(broker_url: str, queues: ServiceQueues) -> None:
    """Remove a service's queues and exchanges after a test run, so nothing piles up."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        for name in (queues.main, queues.retry, queues.dead_letter):
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        for name in (queues.retry_exchange, queues.dead_letter_exchange):
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)
    finally:
        await connection.close()


@dataclass
class EventTap:
    """An exclusive queue bound to `asf.events` that collects what is published."""

    messages: list[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(m.body) for m in self.messages]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies() if b["event_type"] == event_type]

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], Any], within: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until `predicate(bodies)` is true; returns the bodies."""
        deadline = asyncio.get_running_loop().time() + within
        while not predicate(self.bodies()):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; got {len(self.messages)} events: "
                                     f"{[b['event_type'] for b in self.bodies()]}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(remaining, 0.5))
        return self.bodies()


@contextlib.asynccontextmanager
async def event_tap(broker_url: str, *routing_keys: str) -> AsyncIterator[EventTap]:
    tap = EventTap()
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in routing_keys or ("#",):
            await queue.bind(exchange, key)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            tap.messages.append(message)
            tap.arrived.set()

        await queue.consume(on_message)
        yield tap
    finally:
        await connection.close()
