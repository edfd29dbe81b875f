"""The fast layer's guards (asf_testing.plugin), each tried in a pytest run of its own: a test
marked fast cannot reach PostgreSQL, RabbitMQ or the network, whether it asks for a server's
fixture, gets one through another fixture, or opens a connection itself."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.fast

CONFTEST = '''
import pytest

SET_UP = []

@pytest.fixture(scope="session")
def postgres_url():
    SET_UP.append("postgres_url")
    yield "postgresql://nowhere/x"

@pytest.fixture
def pool(broker_url):
    return broker_url

@pytest.fixture(scope="session", autouse=True)
def nothing_set_up():
    yield
    assert SET_UP == [], SET_UP
'''


def run(pytester: pytest.Pytester, tests: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(tests)
    return pytester.runpytest_inprocess("-p", "asf_testing.plugin", "-m", "fast", "-q")


def test_a_fast_test_that_asks_for_a_server_fails_before_its_fixture_runs(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, '''
import pytest

@pytest.mark.fast
def test_direct(postgres_url):
    pass

@pytest.mark.fast
def test_through_a_fixture(pool):
    pass

def test_not_fast_is_not_selected(postgres_url):
    pass
''')
    result.assert_outcomes(errors=2, deselected=1)
    result.stdout.fnmatch_lines([
        "*test_direct is marked fast but uses postgres_url*",
        "*test_through_a_fixture is marked fast but uses broker_url*",
    ])


def test_a_fast_test_that_opens_a_connection_fails(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
import asyncio
import socket
import pytest

pytestmark = pytest.mark.fast

def test_tcp():
    socket.create_connection(("127.0.0.1", 5432), timeout=1)

async def test_asyncio():
    await asyncio.open_connection("127.0.0.1", 5672)

def test_without_network():
    assert sum(range(4)) == 6
''')
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines([
        "*NetworkInFastTest: *test_tcp is marked fast but connects to ('127.0.0.1', 5432)*",
        "*NetworkInFastTest: *test_asyncio is marked fast but connects to ('127.0.0.1', 5672)*",
    ])
