"""The pytest plugin every test in the repository runs with (the root `conftest.py` loads
it): the tests run in development (`APP_ENV`), against a real PostgreSQL and a real
RabbitMQ — the ones on this machine (`TEST_DATABASE_URL`, `TEST_BROKER_URL`, defaulting to
127.0.0.1) or, where those are not reachable and Docker is, or with `TEST_USE_CONTAINERS=1`
(`make test-containers`), started with testcontainers from `TEST_POSTGRES_IMAGE` and
`TEST_RABBITMQ_IMAGE`."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

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


# --- the fast layer (`pytest -m fast`, `make test-fast`; see `asf_testing.fast`) -------------

FAST = "fast"
SERVERS = ("postgres_url", "broker_url")
"""The fixtures that reach a real server; a fast test may use neither."""


class NetworkInFastTest(RuntimeError):
    """A fast test tried to open a network connection."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{FAST}: the fast layer (`make test-fast`): rules and routing without "
        "PostgreSQL, RabbitMQ or any network; such a test may not use postgres_url or broker_url",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture is set up: a fast test that would reach a server fails."""
    if item.get_closest_marker(FAST) is None:
        return
    servers = [name for name in SERVERS if name in getattr(item, "fixturenames", ())]
    if servers:
        pytest.fail(
            f"{item.nodeid} is marked fast but uses {' and '.join(servers)} (itself or through "
            "a fixture): a fast test runs without servers. Drop the mark, or the fixture.",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[
        None, object, object]:
    if item.get_closest_marker(FAST) is None:
        return (yield)
    with no_network(item.nodeid):
        return (yield)


@contextmanager
def no_network(who: str) -> Generator[None, None, None]:
    """Opening a connection (TCP or a Unix socket) raises `NetworkInFastTest` meanwhile."""

    def refuse(sock: socket.socket, address: Any) -> Any:
        raise NetworkInFastTest(
            f"{who} is marked fast but connects to {address!r}: a fast test runs without "
            "PostgreSQL, RabbitMQ or any network. Drop the mark, or the connection.")

    with mock.patch.object(socket.socket, "connect", refuse), \
            mock.patch.object(socket.socket, "connect_ex", refuse):
        yield
