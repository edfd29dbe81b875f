"""The consumer's decisions on FastStream's in-memory broker (the fast layer): what is applied,
what is skipped as a duplicate, what is parked with which reason, and what goes back for a
retry. The same paths against the real RabbitMQ: tests/faults/test_poison.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from faststream.rabbit import RabbitBroker, RabbitMessage, TestRabbitBroker
from faststream.rabbit.message import RabbitMessage as Message
from pydantic import BaseModel

from asf_contracts import Envelope
from asf_contracts.topology import MAX_DELIVERIES, ServiceQueues
from asf_kit.consumer import EventConsumer
from asf_kit.db import Conn
from asf_kit.runtime import Runtime
from asf_kit.settings import ServiceSettings
from asf_testing import MemoryInbox, dead_letters, envelope

pytestmark = pytest.mark.fast


class Counted(BaseModel):
    n: int


class Boom(Exception):
    pass


@dataclass
class Bench:
    broker: RabbitBroker
    consumer: EventConsumer
    parked: list[RabbitMessage]
    settled: list[str]
    """How each message to the service's queue was settled: ack, nack or reject (requeue)."""
    applied: list[tuple[str, int]] = field(default_factory=list)
    fail_with: Exception | None = None

    async def send(self, body: bytes | str | Envelope, **headers: Any) -> None:
        data = body.model_dump_json() if isinstance(body, Envelope) else body
        await self.broker.publish(data, queue=self.consumer.queues.main, headers=headers,
                                  message_id="m-1")

    def reason(self) -> str:
        [msg] = self.parked
        return str(msg.headers["x-park-reason"])


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    runtime = Runtime(ServiceSettings(), relay=False)
    consumer = EventConsumer(runtime, ServiceQueues(service="fast-test"))
    consumer.once = MemoryInbox()
    parked = dead_letters(runtime.broker, consumer.queues)
    b = Bench(runtime.broker, consumer, parked, settled=[])

    @consumer.on("test.thing.counted", 1, Counted)
    async def counted(conn: Conn, event: Envelope, payload: Counted) -> None:
        if b.fail_with is not None:
            raise b.fail_with
        b.applied.append((event.event_type, payload.n))

    def settle(how: str) -> Any:
        async def record(msg: RabbitMessage, *_: Any, requeue: bool = how == "nack",
                         **__: Any) -> None:
            if not msg.raw_message.exchange:  # sent to the service's queue, not parked
                b.settled.append(f"{how} requeue" if requeue else how)
        return record

    with mock.patch.object(Message, "ack", settle("ack")), \
            mock.patch.object(Message, "nack", settle("nack")), \
            mock.patch.object(Message, "reject", settle("reject")):
        async with TestRabbitBroker(runtime.broker):
            yield b


async def test_an_event_reaches_its_handler_with_its_payload_parsed_once(bench: Bench) -> None:
    event = envelope("test.thing.counted", Counted(n=3))
    await bench.send(event)
    await bench.send(event)  # redelivered: the inbox has it
    assert bench.applied == [("test.thing.counted", 3)]
    assert bench.parked == []
    assert bench.settled == ["ack", "ack"]
    assert bench.consumer.routing_keys == ["test.thing.counted.v1"]


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "malformed envelope"),
    (b'{"event_type": "test.thing.counted"}', "malformed envelope: event_version: Field required"),
])
async def test_a_message_that_is_no_envelope_is_parked(
    bench: Bench, body: bytes, reason: str
) -> None:
    await bench.send(body)
    assert bench.reason().startswith(reason)
    assert bench.applied == []
    assert bench.settled == ["ack"]  # parked, so taken off the queue


async def test_an_unknown_type_or_version_is_parked_with_what_was_missing(bench: Bench) -> None:
    await bench.send(envelope("test.thing.counted", Counted(n=1), version=2))
    assert bench.reason() == "no handler for test.thing.counted version 2"
    bench.parked.clear()
    await bench.send(envelope("test.thing.other", Counted(n=1)))
    assert bench.reason() == "no handler for test.thing.other version 1"
    assert bench.applied == []


async def test_a_payload_off_its_schema_is_parked_naming_the_field(bench: Bench) -> None:
    await bench.send(envelope("test.thing.counted", {"n": "three"}))
    assert bench.reason().startswith("payload does not match its schema: n: ")
    assert bench.applied == []


async def test_a_parked_message_keeps_its_routing_and_says_who_parked_it(bench: Bench) -> None:
    await bench.send(b"[]", traceparent="00-abc-def-01")
    [msg] = bench.parked
    assert msg.headers["x-parked-by"] == "fast-test"
    assert msg.headers["x-original-routing-key"] == bench.consumer.queues.main
    assert msg.headers["traceparent"] == "00-abc-def-01"
    assert bytes(msg.body) == b"[]"


def deaths(count: int, queue: str) -> list[dict[str, Any]]:
    return [{"queue": queue, "reason": "rejected", "count": count},
            {"queue": "elsewhere", "reason": "rejected", "count": 99}]


async def test_a_failing_handler_sends_the_message_back_for_a_retry(bench: Bench) -> None:
    """Rejected without requeue: RabbitMQ dead-letters it to the retry queue, whose TTL brings
    it back. Not parked, not applied, and the inbox does not keep it."""
    bench.fail_with = Boom("the database went away")
    event = envelope("test.thing.counted", Counted(n=1))
    await bench.send(event, **{"x-death": deaths(MAX_DELIVERIES - 2, bench.consumer.queues
                                                 .main)})
    assert bench.settled == ["reject"]
    assert bench.parked == []
    assert isinstance(bench.consumer.once, MemoryInbox)
    assert bench.consumer.once.seen == set()

    bench.fail_with = None  # the retry
    await bench.send(event)
    assert bench.applied == [("test.thing.counted", 1)]
    assert bench.settled == ["reject", "ack"]


async def test_the_last_try_parks_the_message_with_the_error(bench: Bench) -> None:
    """Only deaths in the service's own queue count (another queue's history is not ours)."""
    bench.fail_with = Boom("still down")
    event = envelope("test.thing.counted", Counted(n=1))
    await bench.send(event, **{"x-death": deaths(MAX_DELIVERIES - 1, bench.consumer.queues
                                                 .main)})
    assert bench.settled == ["ack"]
    assert bench.reason() == f"failed {MAX_DELIVERIES} times: Boom: still down"
    [msg] = bench.parked
    assert "x-death" not in msg.headers
    assert bench.applied == []



async def test_a_park_that_fails_sends_the_message_back_for_a_retry(bench: Bench) -> None:
    """The consumer settles every message itself: when even parking fails (the dead-letter
    publish refused), the message is rejected to the retry queue, not left unacked."""
    async def refused(*_: Any, **__: Any) -> None:
        raise Boom("the broker refused the dead-letter publish")

    with mock.patch.object(bench.consumer, "park", refused):
        await bench.send(b"not json")
    assert bench.settled == ["reject"]
    assert bench.parked == []
