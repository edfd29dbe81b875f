"""The company read model from registry events: duplicates, reordering, deregistration."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika

from asf_contracts import registry as reg
from asf_contracts.topology import ServiceQueues
from asf_testing import event_tap


def _company(cid: uuid.UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(cid), "org_number": "559012-3450", "name": "Läsmodellen AB",
        "legal_form": "aktiebolag", "municipality_code": "1480", "county_code": "14",
        "industries": ["recycling"], "training_places": 4, "origin": "existing",
        "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": True,
        "verification_level": "self_declared", "some_future_field": {"ignored": True}}
    body.update(changes)
    return body


async def test_redelivery_and_reordering_cannot_corrupt_the_read_model(
    env: Any, registry: Any
) -> None:
    cid = uuid.uuid4()
    v3 = await registry.publish(reg.COMPANY_UPDATED, _company(
        cid, status="active", name="Nya namnet AB", training_places=7), 3)
    await registry.wait_version(cid, 3)
    # older versions arrive late: ignored
    await registry.publish(reg.COMPANY_REGISTERED, _company(cid), 1)
    await registry.publish(reg.COMPANY_VERIFIED, _company(cid, status="active"), 2)
    # the same event twice: applied once, recorded once in the inbox
    await registry.publish(reg.COMPANY_UPDATED, _company(
        cid, status="active", name="Nya namnet AB", training_places=7), 3, event_id=v3.event_id)
    marker = uuid.uuid4()
    await registry.publish(reg.COMPANY_REGISTERED, _company(marker), 1)
    await registry.wait_version(marker, 1)  # one queue, in order: the others were handled
    row = await registry.company(cid)
    assert (row["version"], row["name"], row["status"], row["training_places"]) == (
        3, "Nya namnet AB", "active", 7)
    async with env.pool.acquire() as conn:
        seen = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", v3.event_id)
    assert seen == 1
    await registry.publish(reg.COMPANY_UPDATED, _company(
        cid, status="active", name="Ännu nyare AB", training_places=2), 4)
    row = await registry.wait_version(cid, 4)
    assert (row["name"], row["training_places"]) == ("Ännu nyare AB", 2)


async def test_a_bad_event_is_parked_and_the_next_one_still_applies(
    env: Any, registry: Any, broker_url: str
) -> None:
    cid = uuid.uuid4()
    bad = await registry.publish(reg.COMPANY_REGISTERED, {"id": str(cid), "name": "half"}, 1)
    ok = uuid.uuid4()
    await registry.publish(reg.COMPANY_REGISTERED, _company(ok), 1)
    await registry.wait_version(ok, 1)
    assert await registry.company(cid) is None
    queues = ServiceQueues(service=env.settings.queue_namespace + "casework")
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        dlq = await channel.declare_queue(queues.dead_letter, passive=True)
        parked = None
        for _ in range(50):  # the park is published just before the ack: allow a moment
            parked = await dlq.get(fail=False)
            if parked is not None:
                await parked.ack()
                break
            await asyncio.sleep(0.1)
        assert parked is not None and parked.message_id == str(bad.event_id)
        headers = parked.headers or {}
        assert "payload does not match" in str(headers["x-park-reason"])
        assert headers["x-original-routing-key"] == "registry.company.registered.v1"
    finally:
        await connection.close()


async def test_deregistration_flags_active_placements_and_tells_case_workers(
    env: Any, client: Any, refer: Any, move: Any, place: Any, registry: Any,
    case_worker: Any, broker_url: str,
) -> None:
    company = await registry.active_company(places=5, name="Konkursen AB")
    workers = [case_worker("0180", sub="cw-flag-a"), case_worker("0180", sub="cw-flag-b"),
               case_worker("1480", sub="cw-flag-c")]
    placements = []
    for headers in [*workers, workers[0]]:
        pid = (await refer(headers))["id"]
        await move(pid, headers, "assessment")
        r = await place(pid, headers, company)
        assert r.status_code == 201
        placements.append(r.json())
    ended = placements[-1]
    await client.post(f"/placements/{ended['id']}/end", headers=workers[0],
                      json={"reason": "completed"})
    payload = _company(company, name="Konkursen AB", status="deregistered",
                       training_places=5, deregistration_reason="bankruptcy",
                       municipality_code="0180")
    async with event_tap(broker_url, "casework.placements.flagged.v1") as tap:
        event = await registry.publish(reg.COMPANY_DEREGISTERED, payload, 3)
        await registry.publish(reg.COMPANY_DEREGISTERED, payload, 3, event_id=event.event_id)
        await registry.publish(reg.COMPANY_DEREGISTERED, payload, 3)  # same version, new id
        bodies = await tap.wait_for(
            lambda bs: any(b["aggregate_id"] == str(company) for b in bs))
        await asyncio.sleep(0.5)
        flagged = [b for b in tap.bodies() if b["aggregate_id"] == str(company)]
    assert len(flagged) == 1
    body = flagged[0]["payload"]
    assert body["company_name"] == "Konkursen AB" and body["reason"] == "bankruptcy"
    assert body["case_workers"] == ["cw-flag-a", "cw-flag-b", "cw-flag-c"]
    assert {p["placement_id"] for p in body["placements"]} == {
        p["id"] for p in placements[:3]}
    assert {p["municipality_code"] for p in body["placements"]} == {"0180", "1480"}
    async with env.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, flagged_at, flag_reason FROM placements "
                                "WHERE company_id = $1", company)
    flags = {str(r["id"]): r["flag_reason"] for r in rows}
    assert flags[ended["id"]] is None
    assert all(flags[p["id"]] == "bankruptcy" for p in placements[:3])
    r = await client.get(f"/participants/{placements[0]['participant_id']}/timeline",
                         headers=workers[0])
    assert "placement_flagged" in [i["kind"] for i in r.json()["items"]]
    # and nobody can be placed there any more
    pid = (await refer(workers[0]))["id"]
    await move(pid, workers[0], "assessment")
    r = await place(pid, workers[0], company)
    assert r.status_code == 409 and r.json()["current_status"] == "deregistered"
    assert bodies


async def test_verification_expiring_and_expired_keep_the_read_model_current(
    registry: Any,
) -> None:
    """Both events carry the whole company: whatever changed with them is applied."""
    cid = uuid.uuid4()
    await registry.publish(reg.COMPANY_VERIFIED, _company(cid, status="active"), 2)
    await registry.publish(reg.COMPANY_VERIFICATION_EXPIRING, _company(
        cid, status="active", training_places=5, days_left=30), 3)
    row = await registry.wait_version(cid, 3)
    assert row["training_places"] == 5
    await registry.publish(reg.COMPANY_VERIFICATION_EXPIRED, _company(
        cid, status="active", name="Utgånget AB", expired_on="2026-03-01"), 4)
    row = await registry.wait_version(cid, 4)
    assert (row["name"], row["status"]) == ("Utgånget AB", "active")
