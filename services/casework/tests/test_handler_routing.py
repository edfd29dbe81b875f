"""Events in, on FastStream's in-memory broker (the fast layer): every event casework consumes
reaches the service method that applies it, through the wiring of `casework.app`. The same
events through the real RabbitMQ and PostgreSQL: test_read_model.py."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from faststream.rabbit import TestRabbitBroker

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_contracts.envelope import routing_key
from asf_testing import DATA_KEY, JWT_TEST_SECRET, MemoryInbox, consumer_of, dead_letters, envelope
from asf_testing.fast import NO_CONNECTION
from casework.app import create_app
from casework.settings import CaseworkSettings

pytestmark = pytest.mark.fast


def company(**changes: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()), "org_number": "769612-3450", "name": "Testföretaget",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180", "county_code": "01",
        "industries": ["cafe_restaurant"], "training_places": 2, "origin": "existing",
        "status": "active", "qualifies_as_asf": True, "reserved_contract_eligible": True,
        "verification_level": "verified", "valid_until": "2027-01-31", **changes,
    }


EXTRA = {reg.COMPANY_VERIFICATION_EXPIRING: {"days_left": 30},
         reg.COMPANY_VERIFICATION_EXPIRED: {"expired_on": "2027-01-31"}}


async def test_every_company_event_reaches_apply_company_with_its_version() -> None:
    app = create_app(CaseworkSettings(jwt_secret=JWT_TEST_SECRET, casework_data_key=DATA_KEY))
    consumer = consumer_of(app)
    consumer.once = MemoryInbox()
    parked = dead_letters(consumer.runtime.broker, consumer.queues)
    assert consumer.routing_keys == sorted(routing_key(t, 1) for t in reg.COMPANY_EVENTS)

    with mock.patch.object(app.state.casework, "apply_company", autospec=True) as apply:
        async with TestRabbitBroker(consumer.runtime.broker) as broker:
            for n, event_type in enumerate(reg.COMPANY_EVENTS, start=2):
                body = company(**EXTRA.get(event_type, {}))
                event = envelope(event_type, body, aggregate_version=n)
                await broker.publish(event.model_dump_json(), queue=consumer.queues.main)
                apply.assert_awaited_once()
                conn, version, payload = apply.await_args.args
                assert (conn, version) == (NO_CONNECTION, n), event_type
                assert isinstance(payload, reg.CompanyPayload), event_type
                assert (str(payload.id), payload.status) == (body["id"], "active")
                apply.reset_mock()
            # casework's own events come back to nobody here: not consumed, so parked
            await broker.publish(envelope(cw.PARTICIPANT_REFERRED, {}).model_dump_json(),
                                 queue=consumer.queues.main)
    apply.assert_not_awaited()
    assert [m.headers["x-park-reason"] for m in parked] == [
        f"no handler for {cw.PARTICIPANT_REFERRED} version 1"]
