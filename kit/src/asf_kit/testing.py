"""Test fixtures every service's tests share: a real PostgreSQL and a real RabbitMQ.

By default they are the ones on this machine (`TEST_DATABASE_URL`, `TEST_BROKER_URL`,
defaulting to 127.0.0.1). When those are not reachable and Docker is, or when
`TEST_USE_CONTAINERS=1` (`make test-containers`), the same fixtures start them with
testcontainers, from `TEST_POSTGRES_IMAGE` and `TEST_RABBITMQ_IMAGE`. Loaded by the root
`conftest.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import orjson
import pytest

from asf_contracts import EXCHANGE
from asf_contracts.topology import ServiceQueues
from asf_kit.auth import mint_token
from asf_kit.db import migrate

JWT_TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"  # noqa: S105


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    docker = shutil.which("docker") or "docker"
    result = subprocess.run([docker, "info"], capture_output=True, check=False)  # noqa: S603
    return result.returncode == 0


def _in_containers(url: str, default_port: int) -> bool:
    """Start the server with testcontainers: asked for, or nothing else there."""
    if os.environ.get("TEST_USE_CONTAINERS") == "1":
        return True
    return not _reachable(url, default_port) and _docker_available()


def _host(container: Any) -> str:
    """Where a container's published ports are (IPv4 for a local engine: ports are published
    on 0.0.0.0, and `localhost` may resolve to ::1 first)."""
    host: str = container.get_container_host_ip()
    return "127.0.0.1" if host == "localhost" else host


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server URL (any database); tests create their own databases on it."""
    url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if not _in_containers(url, 5432):
        yield url
        return
    from testcontainers.community.postgres import PostgresContainer

    image = os.environ.get("TEST_POSTGRES_IMAGE", "postgres:16-alpine")
    with PostgresContainer(image, driver=None) as pg:
        yield pg.get_connection_url(host=_host(pg))


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    url = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not _in_containers(url, 5672):
        yield url
        return
    from testcontainers.community.rabbitmq import RabbitMqContainer

    image = os.environ.get("TEST_RABBITMQ_IMAGE", "rabbitmq:3.13-management-alpine")
    with RabbitMqContainer(image) as rmq:
        yield f"amqp://guest:guest@{_host(rmq)}:{rmq.get_exposed_port(rmq.port)}/"


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


def token(roles: list[str] | str, sub: str = "user-1", **claims: Any) -> str:
    """A valid test token; `claims` may set municipality_code, company_id, name."""
    return mint_token(JWT_TEST_SECRET, sub, [roles] if isinstance(roles, str) else roles,
                      **claims)


def auth(roles: list[str] | str, sub: str = "user-1", **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(roles, sub, **claims)}"}


@dataclass
class EventTap:
    """An exclusive queue bound to `asf.events` that collects what is published."""

    messages: list[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(m.body) for m in self.messages]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies() if b["event_type"] == event_type]

    async def wait_for(self, predicate: Any, within: float = 10.0) -> list[dict[str, Any]]:
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


def unique_namespace() -> str:
    """A queue namespace unique to this test session."""
    return f"test-{uuid.uuid4().hex[:8]}."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """A service running as its own process, as it runs in production."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def wait_ready(base_url: str, within: float = 30.0) -> None:
    import httpx

    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base_url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base_url} did not become ready")


@contextlib.asynccontextmanager
async def service_process(
    module: str, env: dict[str, str], log_path: Path, *, ready: bool = True
) -> AsyncIterator[ServiceProcess]:
    """Start `python -m <module> serve` with `env` on a free port; SIGTERM it afterwards."""
    import sys

    port = free_port()
    full_env = {**os.environ, "JWT_SECRET": JWT_TEST_SECRET, "LOG_FORMAT": "json",
                "HOST": "127.0.0.1", "PORT": str(port), **env}
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603, ASYNC220
            [sys.executable, "-m", module, "serve"], env=full_env, stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc = ServiceProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        if ready:
            await wait_ready(proc.base_url)
        yield proc
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()


# --- access matrices ------------------------------------------------------------------------

ANONYMOUS = "anonymous"
VARIANTS = (ANONYMOUS, "case_worker", "case_worker_other", "registry_officer", "company_rep",
            "company_rep_other", "analyst", "auditor")
"""Who calls: each role, and for scoped roles their own vs another municipality or company."""


def allow(status: int, *variants: str, others: int = 403) -> dict[str, int]:
    """The expected answer per caller: `status` for `variants`, `others` for the rest of the
    signed-in callers, 401 without a token."""
    unknown = set(variants) - set(VARIANTS)
    assert not unknown, unknown
    return {v: 401 if v == ANONYMOUS else status if v in variants else others for v in VARIANTS}


def public(status: int = 200) -> dict[str, int]:
    return dict.fromkeys(VARIANTS, status)


def everyone(status: int) -> dict[str, int]:
    return allow(status, *[v for v in VARIANTS if v != ANONYMOUS])


def api_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, from its routing table."""
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # FastAPI keeps included routers as their own node
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute | Route) and route.methods:
                for method in route.methods - {"HEAD", "OPTIONS"}:
                    found.add((method, prefix + route.path))

    walk(app.routes, "")
    return found


# --- logs -----------------------------------------------------------------------------------


class LogLines(logging.Handler):
    """Every log line, rendered as production renders it (JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs(service: str = "test") -> Iterator[list[str]]:
    """Logging configured as in production (JSON, DEBUG), each line also kept here."""
    import structlog

    from asf_kit.logging import configure

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure(service, "test", "DEBUG", "json")
    collector = LogLines()
    collector.setFormatter(root.handlers[0].formatter)
    root.addHandler(collector)
    try:
        yield collector.lines
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()
