"""The pytest plugin every test in the repository runs with (the root `conftest.py` loads
it): the tests run in development (`APP_ENV`), against a real PostgreSQL and a real
RabbitMQ — the ones on this machine (`TEST_DATABASE_URL`, `TEST_BROKER_URL`, defaulting to
127.0.0.1) or, where those are not reachable and Docker is, started with testcontainers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from asf_testing import numbers
from asf_testing.infra import docker_available, reachable

# Every settings object the tests build and every service process they start is in
# development (SPEC 2); a test of production sets `app_env="production"` itself.
os.environ["APP_ENV"] = "development"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server URL (any database); tests create their own databases on it."""
    url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if reachable(url, 5432) or not docker_available():
        yield url
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as pg:
        yield pg.get_connection_url()


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    url = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if reachable(url, 5672) or not docker_available():
        yield url
        return
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management-alpine") as rmq:
        params = rmq.get_connection_params()
        yield f"amqp://guest:guest@{params.host}:{params.port}/"


@pytest.fixture
def identity_number() -> Callable[..., str]:
    """`identity_number(dash=True, century=True, coordination=False)`: a fresh valid one."""
    return numbers.identity_number


@pytest.fixture
def org_number() -> Callable[..., str]:
    """`org_number(group="7", dash=True)`: a fresh valid organisationsnummer."""
    return numbers.org_number
