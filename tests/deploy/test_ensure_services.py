"""`deploy/ensure_services.py`, the setup `make run` and `make test` start with: on a machine
with nothing, one paragraph and exit 1; with a container engine, PostgreSQL and RabbitMQ as
containers (moved to free ports here, so the machine's own are never touched), reused on the
next run. The apt path is shown by test_fresh_machine.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest

from asf_testing import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "deploy" / "ensure_services.py")


def test_with_nothing_to_use_it_says_what_to_install_and_fails() -> None:
    env = {"PATH": "/nonexistent", "HOME": os.environ["HOME"],
           "ASF_POSTGRES_PORT": str(free_port()), "ASF_RABBITMQ_PORT": str(free_port())}
    result = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert "apt-get install postgresql rabbitmq-server" in result.stderr
    assert "podman or Docker" in result.stderr


@pytest.mark.timeout(600)
def test_with_a_container_engine_they_run_as_containers_and_are_reused(
        engine: Any, tmp_path: Path) -> None:
    pg, amqp = free_port(), free_port()
    prefix = f"asf-setup-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "ASF_SETUP": "containers", "ASF_POSTGRES_PORT": str(pg),
           "ASF_RABBITMQ_PORT": str(amqp), "ASF_SMTP_PORT": str(free_port()),
           "ASF_CONTAINER_PREFIX": prefix, "ASF_STACK_ENV": str(tmp_path / "stack.env")}
    names = [f"{prefix}-{kind}" for kind in ("postgres", "rabbitmq", "mail")]
    try:
        first = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True,
                               text=True, timeout=560, check=False)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"as {prefix}-postgres on 127.0.0.1:{pg}" in first.stdout
        assert f"as {prefix}-rabbitmq on 127.0.0.1:{amqp}" in first.stdout
        asyncio.run(_answers(pg, amqp))
        engine.run("stop", "-t", "5", f"{prefix}-postgres", quiet=True, timeout=60)
        again = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True,
                               text=True, timeout=300, check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"starting the postgres container {prefix}-postgres (set up before)" \
            in again.stdout
        assert "running" not in again.stdout, "nothing is set up twice"
        asyncio.run(_answers(pg, amqp))
    finally:
        for name in names:
            engine.run("rm", "-f", "-t", "5", name, check=False, quiet=True, timeout=120)
        engine.run("volume", "rm", "-f", f"{prefix}-pgdata", check=False, quiet=True)


async def _answers(pg: int, amqp: int) -> None:
    """PostgreSQL takes the `postgres` user on trust; RabbitMQ takes guest and quorum queues."""
    for _ in range(30):
        try:
            connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg}/postgres")
            break
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(1)
    else:
        raise AssertionError("PostgreSQL in its container did not take a connection")
    assert await connection.fetchval("SELECT 1") == 1
    await connection.close()
    broker = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{amqp}/")
    try:
        channel = await broker.channel()
        queue = await channel.declare_queue(f"setup-probe-{uuid.uuid4().hex[:6]}", durable=True,
                                            arguments={"x-queue-type": "quorum"})
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await broker.close()
