"""Events in, on FastStream's in-memory broker (the fast layer): every event type notifications
consumes reaches `Notifications.route_event` with its payload read as its own model, through
the wiring of `notifications.app`. What routing then decides is tested in test_domain.py; the
same events through the real RabbitMQ, PostgreSQL and SMTP: test_routes.py, test_delivery.py."""

from __future__ import annotations

from unittest import mock

import pytest
from faststream.rabbit import TestRabbitBroker

from asf_contracts import casework as cw
from asf_contracts.envelope import routing_key
from asf_testing import JWT_TEST_SECRET, MemoryInbox, consumer_of, dead_letters, envelope
from asf_testing.fast import NO_CONNECTION
from notifications.app import create_app
from notifications.routing import ROUTED_EVENTS
from notifications.samples import SAMPLE_PAYLOADS
from notifications.settings import NotificationsSettings

pytestmark = pytest.mark.fast


async def test_every_routed_event_reaches_route_event_as_its_own_model() -> None:
    app = create_app(NotificationsSettings(jwt_secret=JWT_TEST_SECRET, smtp_tls="none"))
    consumer = consumer_of(app)
    consumer.once = MemoryInbox()
    parked = dead_letters(consumer.runtime.broker, consumer.queues)
    assert consumer.routing_keys == sorted(routing_key(t, 1) for t in ROUTED_EVENTS)

    with mock.patch.object(app.state.notifications, "route_event", autospec=True) as route:
        async with TestRabbitBroker(consumer.runtime.broker) as broker:
            for event_type, routed in ROUTED_EVENTS.items():
                event = envelope(event_type, SAMPLE_PAYLOADS[event_type])
                await broker.publish(event.model_dump_json(), queue=consumer.queues.main)
                route.assert_awaited_once()
                conn, got, payload = route.await_args.args
                assert (conn, got.event_id, got.event_type) == (
                    NO_CONNECTION, event.event_id, event_type)
                assert type(payload) is routed.payload, event_type
                assert payload == routed.payload.model_validate(SAMPLE_PAYLOADS[event_type])
                route.reset_mock()
            # an event nobody is told about is not consumed: parked, never routed
            await broker.publish(envelope(cw.PARTICIPANT_REFERRED, {}).model_dump_json(),
                                 queue=consumer.queues.main)
    route.assert_not_awaited()
    assert [m.headers["x-park-reason"] for m in parked] == [
        f"no handler for {cw.PARTICIPANT_REFERRED} version 1"]
