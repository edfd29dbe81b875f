"""The fixtures' testcontainers path, exercised: with `TEST_USE_CONTAINERS=1` the tests ignore
this machine's PostgreSQL and RabbitMQ and start their own in containers (upstream images, or
the ones `deploy/containers.py` makes from Debian's packages where none can be pulled)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]


async def test_the_fixtures_start_their_own_servers_when_asked(postgres_url: str,
                                                                broker_url: str) -> None:
    if os.environ.get("TEST_USE_CONTAINERS") != "1":
        pytest.skip("TEST_USE_CONTAINERS is not 1: the machine's servers are used "
                    "(test_the_suite_runs_in_containers runs this test with it)")
    for url, machine_port in ((postgres_url, 5432), (broker_url, 5672)):
        assert urlsplit(url).port not in (None, machine_port), url
    connection = await asyncpg.connect(postgres_url)
    try:
        assert await connection.fetchval("SELECT current_user") == "test"
    finally:
        await connection.close()
    broker = await aio_pika.connect(broker_url)
    try:
        channel = await broker.channel()
        queue = await channel.declare_queue(exclusive=False, auto_delete=True, arguments={})
        assert queue.name
    finally:
        await broker.close()


@pytest.mark.timeout(600)
def test_the_suite_runs_in_containers(engine: Any, containers: Any, figure: Any) -> None:
    """A slice of the suite (the registry's rules and API, and the check above) with
    `make test-containers`' environment."""
    env = {**os.environ, **containers.test_env(engine)}
    for name in ("TEST_DATABASE_URL", "TEST_BROKER_URL"):
        env.pop(name, None)
    tests = ["services/registry/tests/test_companies.py",
             "tests/deploy/test_testcontainers.py::"
             "test_the_fixtures_start_their_own_servers_when_asked"]
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p",
                                 "no:cacheprovider", "-rs", *tests], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=580, check=False)
    finally:
        containers.stop_docker_api()
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "skipped" not in summary, summary
    figure(f"testcontainers ({env['TEST_POSTGRES_IMAGE']}, {env['TEST_RABBITMQ_IMAGE']}): "
           f"{summary}")
