"""The outbox's quick way out, against the real PostgreSQL and RabbitMQ: events committed by a
unit of work are handed to the relay in memory and published at once (no NOTIFY, no poll);
the outbox stays the safety net when the hand-over never happens (the process died between
commit and publish); rows written outside a unit of work still wake the relay by NOTIFY."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asf_contracts import Envelope
from asf_kit import outbox
from asf_kit.outbox import add_events, new_event
from asf_kit.runtime import Runtime
from asf_kit.settings import ServiceSettings
from asf_kit.uow import unit_of_work
from asf_testing import EventTap, event_tap, fresh_database

POLL = 60.0  # the relay's poll: far longer than any wait below, so it never explains an event


@pytest.fixture
async def runtime(postgres_url: str, broker_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with fresh_database(postgres_url, "kit_hand_over", tmp_path) as dsn:
        runtime = Runtime(ServiceSettings(app_env="development", database_url=dsn,
                                          broker_url=broker_url, relay_poll_interval=POLL))
        await runtime.start()
        try:
            yield runtime
        finally:
            await runtime.stop()


@pytest.fixture
async def tap(broker_url: str) -> AsyncIterator[tuple[str, EventTap]]:
    event_type = f"kittest.thing.{uuid.uuid4().hex[:8]}"
    async with event_tap(broker_url, f"{event_type}.v1") as tap:
        yield event_type, tap


def thing(event_type: str) -> Envelope:
    return new_event(producer="kit-test", event_type=event_type, event_version=1,
                     aggregate_id=uuid.uuid4(), aggregate_version=1, payload={"n": 1})


async def state_of(runtime: Runtime, event_id: uuid.UUID) -> tuple[bool, bool]:
    """(published, leased) of an outbox row."""
    row = await runtime.pool.fetchrow(
        "SELECT published_at IS NOT NULL AS published, lease_until IS NOT NULL AS leased "
        "FROM outbox WHERE event_id = $1", event_id)
    assert row is not None
    return row["published"], row["leased"]


async def eventually_published(runtime: Runtime, event_id: uuid.UUID) -> None:
    for _ in range(50):
        if (await state_of(runtime, event_id))[0]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the row was never marked published")


async def test_a_committed_event_is_handed_to_the_relay_and_published_once(
    runtime: Runtime, tap: tuple[str, EventTap],
) -> None:
    event_type, events = tap
    event = thing(event_type)
    async with unit_of_work(runtime.pool) as uow:
        uow.publish(event)
    await events.wait_for(lambda b: len(b) == 1, within=5)  # the poll is a minute away
    await eventually_published(runtime, event.event_id)
    assert await state_of(runtime, event.event_id) == (True, True)  # the quick way: leased
    await asyncio.sleep(0.5)
    assert [b["event_id"] for b in events.bodies()] == [str(event.event_id)]
    assert await runtime.relay.publish_batch() == 0  # nothing left for the poll  # type: ignore[union-attr]


async def test_a_rolled_back_unit_of_work_hands_over_nothing(
    runtime: Runtime, tap: tuple[str, EventTap],
) -> None:
    event_type, events = tap
    with pytest.raises(RuntimeError):
        async with unit_of_work(runtime.pool) as uow:
            uow.publish(thing(event_type))
            await add_events(uow.conn, [thing(event_type)])
            raise RuntimeError("the use case failed")
    await asyncio.sleep(0.5)
    assert events.messages == []
    assert await runtime.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_when_the_hand_over_never_happens_the_poll_publishes_after_the_lease(
    runtime: Runtime, tap: tuple[str, EventTap], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if the process died between the commit and the publish: the row is leased, so the
    poll leaves it alone while the lease runs, then publishes it, once."""
    event_type, events = tap
    relay = runtime.relay
    assert relay is not None
    monkeypatch.setattr(outbox, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(relay, "hand_over", lambda rows: None)  # the process is gone
    relay.interval = 0.1
    relay.wake()
    event = thing(event_type)
    async with unit_of_work(runtime.pool) as uow:
        uow.publish(event)
    await asyncio.sleep(0.6)  # the poll ran several times: the lease keeps it away
    assert events.messages == []
    assert await state_of(runtime, event.event_id) == (False, True)
    await events.wait_for(lambda b: len(b) == 1, within=5)
    await eventually_published(runtime, event.event_id)
    await asyncio.sleep(0.3)
    assert [b["event_id"] for b in events.bodies()] == [str(event.event_id)]


async def test_a_row_written_long_before_its_commit_is_left_to_the_poll(
    runtime: Runtime, tap: tuple[str, EventTap], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transaction that ran long after writing its event (here 0.4 s against a hand-over
    window of 0.2 s): publishing it in memory could outlast the lease while another replica's
    poll takes the row, so it is left to the poll, which publishes it once."""
    event_type, events = tap
    relay = runtime.relay
    assert relay is not None
    monkeypatch.setattr(outbox, "HAND_OVER_WITHIN", 0.2)
    monkeypatch.setattr(outbox, "LEASE_SECONDS", 1.0)
    event = thing(event_type)
    async with unit_of_work(runtime.pool) as uow:
        uow.publish(event)
        await uow.flush()
        await asyncio.sleep(0.4)
    await asyncio.sleep(0.5)
    assert events.messages == []  # not handed over, still leased
    assert await state_of(runtime, event.event_id) == (False, True)
    relay.interval = 0.1
    relay.wake()
    await events.wait_for(lambda b: len(b) == 1, within=5)
    await eventually_published(runtime, event.event_id)
    await asyncio.sleep(0.3)
    assert [b["event_id"] for b in events.bodies()] == [str(event.event_id)]


async def test_an_event_written_outside_a_unit_of_work_wakes_the_relay_by_notify(
    runtime: Runtime, tap: tuple[str, EventTap],
) -> None:
    event_type, events = tap
    event = thing(event_type)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await add_events(conn, [event])
    assert await state_of(runtime, event.event_id) in ((False, False), (True, False))
    await events.wait_for(lambda b: len(b) == 1, within=5)
    await eventually_published(runtime, event.event_id)
    assert await state_of(runtime, event.event_id) == (True, False)  # the relay's own way
