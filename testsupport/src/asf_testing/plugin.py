"""The pytest plugin every test in the repository runs with (the root `conftest.py` loads
it): the tests run in development (`APP_ENV`), against a real PostgreSQL and a real
RabbitMQ — the ones on this machine (`TEST_DATABASE_URL`, `TEST_BROKER_URL`, defaulting to
127.0.0.1) or, where those are not reachable and Docker is, or with `TEST_USE_CONTAINERS=1`
(`make test-containers`), started with testcontainers from `TEST_POSTGRES_IMAGE` and
`TEST_RABBITMQ_IMAGE`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asf_testing import numbers
from asf_testing.infra import docker_available, reachable

# Every settings object the tests build and every service process they start is in
# development (SPEC 2); a test of production sets `app_env="production"` itself.
os.environ["APP_ENV"] = "development"


def _in_containers(url: str, default_port: int) -> bool:
    """Start the server with testcontainers: asked for, or nothing else there."""
    if os.environ.get("TEST_USE_CONTAINERS") == "1":
        return True
    return not reachable(url, default_port) and docker_available()


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


@pytest.fixture
def identity_number() -> Callable[..., str]:
    """`identity_number(dash=True, century=True, coordination=False)`: a fresh valid one."""
    return numbers.identity_number


@pytest.fixture
def org_number() -> Callable[..., str]:
    """`org_number(group="7", dash=True)`: a fresh valid organisationsnummer."""
    return numbers.org_number
