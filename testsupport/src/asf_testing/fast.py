"""The fast layer: rules and routing tested without PostgreSQL, RabbitMQ or any network.

A fast test module says so with `pytestmark = pytest.mark.fast`; `make test-fast` runs those
alone (`pytest -m fast`). It is an extra beside the real-broker tests, never instead of them.
Two guards keep the selection honest (in `asf_testing.plugin`):

- a fast test that asks for `postgres_url` or `broker_url`, itself or through a fixture it
  uses, fails before it runs;
- while a fast test runs, opening a network connection fails it (`NetworkInFastTest`).

For handler routing, FastStream's in-memory broker (`faststream.rabbit.TestRabbitBroker`)
stands in for RabbitMQ and `MemoryInbox` for the consumer's inbox in the database:

    app = create_app(settings)
    consumer = consumer_of(app)
    consumer.once = MemoryInbox()
    async with TestRabbitBroker(consumer.runtime.broker) as broker:
        await broker.publish(envelope(...).model_dump_json(), queue=consumer.queues.main)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from uuid import UUID, uuid4

from fastapi import FastAPI
from faststream.rabbit import RabbitBroker, RabbitMessage, RabbitQueue
from pydantic import BaseModel

from asf_contracts import Envelope
from asf_contracts.topology import ServiceQueues
from asf_kit.consumer import EventConsumer, dead_letter_exchange
from asf_kit.db import Conn

# --- handler routing on the in-memory broker -------------------------------------------------


class _NoConnection:
    """What a handler gets for `conn` in a fast test: using it fails, naming the way out."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(
            f"conn.{name} in a fast test: the service method this handler calls should be a "
            "spy here (mock.patch.object(service, 'method', autospec=True))")


NO_CONNECTION = cast(Conn, _NoConnection())


class MemoryInbox:
    """The consumer's inbox in memory (for `EventConsumer.once`): each event id is applied
    once, and kept only when its effect did not raise (as the real inbox's transaction)."""

    def __init__(self) -> None:
        self.seen: set[UUID] = set()

    @asynccontextmanager
    async def __call__(self, event: Envelope) -> AsyncIterator[Conn | None]:
        if event.event_id in self.seen:
            yield None
            return
        yield NO_CONNECTION
        self.seen.add(event.event_id)


def consumer_of(app: FastAPI) -> EventConsumer:
    """The one event consumer a service's composition root attached to its runtime."""
    [consumer] = app.state.runtime.consumers
    return cast(EventConsumer, consumer)


def envelope(event_type: str, payload: BaseModel | dict[str, Any], *, version: int = 1,
             aggregate_version: int = 1, event_id: UUID | None = None,
             aggregate_id: UUID | None = None) -> Envelope:
    """An event as a producer would send it."""
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    return Envelope(event_id=event_id or uuid4(), event_type=event_type, event_version=version,
                    producer=f"{event_type.split('.')[0]}/test",
                    aggregate_id=aggregate_id or uuid4(),
                    aggregate_version=aggregate_version, payload=body)


async def _the_message(msg: RabbitMessage) -> RabbitMessage:
    return msg


def dead_letters(broker: RabbitBroker, queues: ServiceQueues) -> list[RabbitMessage]:
    """What the consumer parks, as the in-memory broker routes it to the dead-letter queue
    (a park that reaches no dead-letter queue would fail). Call before the broker starts."""
    parked: list[RabbitMessage] = []

    async def keep(msg: RabbitMessage) -> None:
        parked.append(msg)

    broker.subscriber(RabbitQueue(queues.dead_letter, declare=False),
                      exchange=dead_letter_exchange(queues), decoder=_the_message,
                      no_reply=True)(keep)
    return parked
