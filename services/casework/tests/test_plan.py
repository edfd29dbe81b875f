"""The individual plan over HTTP: versions and If-Match, reviews, sealing, the access log and
timeline, erasure, and the review sweep announcing each review date once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from asgi_lifespan import LifespanManager
from cryptography.exceptions import InvalidTag

from asf_kit.db import create_pool
from asf_testing import auth
from casework.app import build_service, create_app
from casework.plan import PLAN, plan_context
from casework.service import PERSONAL
from casework.workdays import swedish_date

TODAY = date.today()
AUDITOR = auth("auditor", sub="auditor-plan")
GOAL = "Orka arbeta sex timmar om dagen utan värk"


def plan_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "goals": [{"text": GOAL, "target_date": (TODAY + timedelta(days=120)).isoformat()}],
        "activities": [{"text": "Arbetsträning i caféet, tre dagar i veckan",
                        "start": TODAY.isoformat()}],
        "next_review_date": (TODAY + timedelta(days=30)).isoformat(),
        "participant_involved": True,
    }
    body.update(changes)
    return body


async def write(client: Any, pid: str, headers: dict[str, str], **changes: Any) -> Any:
    r = await client.put(f"/participants/{pid}/plan", json=plan_body(**changes),
                         headers={**headers, "If-None-Match": "*"})
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_plan_is_written_read_and_rewritten_with_its_version(
    client: Any, refer: Any, case_worker: Any,
) -> None:
    headers = case_worker("0180")
    pid = (await refer(headers))["id"]
    url = f"/participants/{pid}/plan"
    r = await client.get(url, headers=headers)
    assert r.status_code == 404
    r = await client.put(url, json=plan_body(), headers=headers)
    assert r.status_code == 428 and "version" in r.json()["detail"]

    r = await client.put(url, json=plan_body(), headers={**headers, "If-None-Match": "*"})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"' and r.headers["Location"] == url
    plan = r.json()
    assert plan["version"] == 1 and plan["participant_id"] == pid
    assert plan["goals"][0]["text"] == GOAL and plan["goals"][0]["status"] == "open"
    assert plan["participant_involved"] is True and plan["review_due"] is False
    assert plan["reviews"] == []
    goal_id = plan["goals"][0]["id"]

    r = await client.put(url, json=plan_body(), headers={**headers, "If-None-Match": "*"})
    assert r.status_code == 412 and r.json()["current_version"] == 1
    r = await client.get(url, headers=headers)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"' and r.json() == plan

    reached = plan_body(goals=[{"id": goal_id, "text": GOAL, "status": "reached",
                                "target_date": plan["goals"][0]["target_date"]},
                               {"text": "Söka tre jobb", "target_date": "2027-06-30"}],
                        participant_involved=False)
    r = await client.put(url, json=reached, headers={**headers, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.headers["ETag"] == '"2"'
    assert [g["id"] == goal_id for g in r.json()["goals"]] == [True, False]
    assert r.json()["goals"][0]["status"] == "reached"
    goals = r.json()["goals"]
    # the version may come in the body instead
    r = await client.put(url, json={**reached, "version": 1}, headers=headers)
    assert r.status_code == 412 and r.json()["current_version"] == 2
    r = await client.put(url, json={**reached, "goals": goals, "version": 2}, headers=headers)
    assert r.status_code == 200 and r.json()["version"] == 2  # nothing changed: same version

    # another municipality's case worker is not told the plan exists
    other = case_worker("1480")
    assert (await client.get(url, headers=other)).status_code == 404
    r = await client.put(url, json=plan_body(), headers={**other, "If-Match": '"2"'})
    assert r.status_code == 404

    # every read and change is in the access log, and the changes in the timeline
    log = (await client.get(f"/participants/{pid}/access-log", headers=AUDITOR)).json()["items"]
    actions = [e["action"] for e in log]
    assert actions.count("plan_write") == 3 and actions.count("plan_read") == 2
    items = (await client.get(f"/participants/{pid}/timeline", headers=headers)).json()["items"]
    assert [i["details"]["version"] for i in items if i["kind"] == "plan_written"] == [1, 2]


@pytest.mark.parametrize(("body", "fields"), [
    ({"goals": [{"text": "", "target_date": "2027-01-01"}]}, {"goals[0].text"}),
    ({"goals": [{"text": "Mål", "target_date": "2027-01-01", "status": "done"}]},
     {"goals[0].status"}),
    ({"goals": [{"text": "Mål"}], "participant_involved": "kanske"},
     {"goals[0].target_date", "participant_involved"}),
    ({"activities": [{"text": "Kurs", "start": "2027-02-01", "end": "2027-01-01"}]},
     {"activities[0]"}),
    ({"next_review_date": "2020-01-01"}, {"next_review_date"}),
    ({"goals": [{"id": str(uuid.uuid4()), "text": "Mål", "target_date": "2027-01-01"}],
      "next_review_date": "2020-01-01"}, {"goals[0].id", "next_review_date"}),
    ({"next_review_date": "2027-02-30"}, {"next_review_date"}),
])
async def test_bad_plans_are_refused_naming_every_field_and_nothing_is_saved(
    client: Any, refer: Any, case_worker: Any, body: dict[str, Any], fields: set[str],
) -> None:
    headers = case_worker("0180")
    pid = (await refer(headers))["id"]
    r = await client.put(f"/participants/{pid}/plan", json=plan_body(**body),
                         headers={**headers, "If-None-Match": "*"})
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == fields
    assert (await client.get(f"/participants/{pid}/plan", headers=headers)).status_code == 404


async def test_reviews_are_recorded_with_date_and_outcome(
    client: Any, refer: Any, case_worker: Any,
) -> None:
    headers = case_worker("0180")
    pid = (await refer(headers))["id"]
    url = f"/participants/{pid}/plan/reviews"
    review = {"outcome": "continue", "comment": "Går framåt, trivs i caféet",
              "next_review_date": (TODAY + timedelta(days=60)).isoformat()}
    assert (await client.post(url, json=review, headers={**headers, "If-Match": '"0"'})
            ).status_code == 404  # no plan to review yet
    await write(client, pid, headers)
    r = await client.post(url, json=review, headers=headers)
    assert r.status_code == 428
    r = await client.post(url, json=review, headers={**headers, "If-Match": '"1"'})
    assert r.status_code == 201, r.text
    held = r.json()
    assert held["date"] == TODAY.isoformat() and held["outcome"] == "continue"
    assert held["plan_version"] == 2 and r.headers["ETag"] == '"2"'
    assert held["comment"] == review["comment"]
    r = await client.post(url, json=review, headers={**headers, "If-Match": '"1"'})
    assert r.status_code == 412

    for body, fields in (
        ({"outcome": "continue"}, {"next_review_date"}),
        ({"outcome": "maybe"}, {"outcome"}),
        ({**review, "date": (TODAY + timedelta(days=1)).isoformat()}, {"date"}),
        ({"outcome": "end", "next_review_date": "2030-01-01"}, {"next_review_date"}),
        ({**review, "held_on": TODAY.isoformat()}, {"held_on"}),
    ):
        r = await client.post(url, json=body, headers={**headers, "If-Match": '"2"'})
        assert r.status_code == 422, (body, r.text)
        assert {e["field"] for e in r.json()["errors"]} == fields, body

    plan = (await client.get(f"/participants/{pid}/plan", headers=headers)).json()
    assert plan["version"] == 2 and plan["next_review_date"] == review["next_review_date"]
    assert [(x["outcome"], x["comment"]) for x in plan["reviews"]] == [
        ("continue", review["comment"])]
    r = await client.post(url, json={"outcome": "end"}, headers={**headers, "If-Match": '"2"'})
    assert r.status_code == 201 and r.json()["next_review_date"] is None
    items = (await client.get(f"/participants/{pid}/timeline", headers=headers)).json()["items"]
    assert [i["details"]["outcome"] for i in items if i["kind"] == "plan_reviewed"] == [
        "continue", "end"]
    log = (await client.get(f"/participants/{pid}/access-log", headers=AUDITOR)).json()["items"]
    assert [e["action"] for e in log].count("plan_review") == 2


async def test_the_plan_is_sealed_bound_to_its_version_and_erased_with_the_participant(
    env: Any, client: Any, refer: Any, case_worker: Any, move: Any,
) -> None:
    headers = case_worker("0180")
    pid = (await refer(headers))["id"]
    plan = await write(client, pid, headers)
    url = f"/participants/{pid}/plan"
    r = await client.post(f"{url}/reviews", headers={**headers, "If-Match": '"1"'}, json={
        "outcome": "revise", "comment": "Behöver mer stöd med sömnen",
        "next_review_date": (TODAY + timedelta(days=14)).isoformat()})
    assert r.status_code == 201
    async with env.pool.acquire() as conn:
        rows = await conn.fetch("SELECT version, sealed FROM plan_versions WHERE plan_id = $1 "
                                "ORDER BY version", uuid.UUID(plan["id"]))
        comment = await conn.fetchval("SELECT sealed FROM plan_reviews WHERE plan_id = $1",
                                      uuid.UUID(plan["id"]))
    assert [r["version"] for r in rows] == [1, 2]
    for blob in [r["sealed"] for r in rows] + [comment]:
        assert b"sex timmar" not in blob and b"s\xc3\xb6mnen" not in blob
    # a sealed version does not open as another version or another plan
    async with env.pool.acquire() as conn:
        key_id, wrapped = await conn.fetchrow(
            "SELECT key_id, wrapped FROM participant_keys WHERE participant_id = $1",
            uuid.UUID(pid))
    from casework.crypto import WrappedKey

    vault = env.casework.vault
    data_key = vault.unwrap(uuid.UUID(pid), WrappedKey(key_id, bytes(wrapped)))
    pid_u, plan_u = uuid.UUID(pid), uuid.UUID(plan["id"])
    blob = bytes(rows[0]["sealed"])
    assert vault.open(data_key, pid_u, PLAN, blob, plan_context(plan_u, 1))["goals"]
    for purpose, context in ((PLAN, plan_context(plan_u, 2)),
                             (PLAN, plan_context(uuid.uuid4(), 1)), (PERSONAL, b"")):
        with pytest.raises(InvalidTag):
            vault.open(data_key, pid_u, purpose, blob, context)
        with pytest.raises(InvalidTag):
            vault.open(data_key, uuid.uuid4(), PLAN, blob, plan_context(plan_u, 1))

    # a version's text put in place of another's (outside casework) does not open
    current = bytes(rows[1]["sealed"])
    async with env.pool.acquire() as conn:
        await conn.execute("UPDATE plan_versions SET sealed = $2 WHERE plan_id = $1 AND "
                           "version = 2", plan_u, blob)
    r = await client.get(url, headers=headers)
    assert r.status_code == 200 and r.json()["goals"] is None
    r = await client.put(url, json=plan_body(), headers={**headers, "If-Match": '"2"'})
    assert r.status_code == 409 and r.json()["title"] == "Plan unreadable"
    async with env.pool.acquire() as conn:
        await conn.execute("UPDATE plan_versions SET sealed = $2 WHERE plan_id = $1 AND "
                           "version = 2", plan_u, current)
    assert (await client.get(url, headers=headers)).json()["goals"][0]["text"] == GOAL

    # a closed case's plan is read, not changed; erasure takes its text for good
    assert (await move(pid, headers, "closed", exit_reason="moved")).status_code == 200
    r = await client.put(url, json=plan_body(), headers={**headers, "If-Match": '"2"'})
    assert r.status_code == 409
    assert (await client.delete(f"/participants/{pid}", headers=headers)).status_code == 204
    async with env.pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM plan_versions WHERE plan_id = $1 AND sealed IS NOT NULL",
            plan_u)
        comments = await conn.fetchval(
            "SELECT count(*) FROM plan_reviews WHERE plan_id = $1 AND sealed IS NOT NULL",
            plan_u)
    assert (left, comments) == (0, 0)
    erased = (await client.get(url, headers=headers)).json()
    assert erased["goals"] is None and erased["activities"] is None
    assert erased["reviews"][0]["outcome"] == "revise" and erased["reviews"][0]["comment"] is None
    assert GOAL not in str(erased)


async def test_each_review_date_is_announced_once_however_many_sweeps_run(
    env: Any, client: Any, refer: Any, case_worker: Any,
) -> None:
    headers = case_worker("0180", sub="cw-plans")
    day = date(2031, 3, 3)  # the future: only this test sweeps so far ahead
    plans = {}
    pids = []
    for i in range(12):
        pid = (await refer(headers))["id"]
        pids.append(pid)
        plans[pid] = (await write(client, pid, headers,
                                  next_review_date=(day + timedelta(days=i % 2)).isoformat()))
    # a second replica: its own service and pool on the same database
    pool = await create_pool(env.settings.database_url, 2, 4)
    replica = build_service(env.settings, lambda: pool)

    async def announced() -> list[dict[str, Any]]:
        """This test's review_due events in the outbox, written with each announcement."""
        async with env.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT body FROM outbox WHERE event_type = 'casework.plan.review_due'")
        return [e for e in (orjson.loads(r["body"]) for r in rows)
                if e["payload"]["participant_id"] in plans]

    try:
        await env.casework.sweep_plan_reviews(day - timedelta(days=1))
        assert await announced() == []
        await asyncio.gather(
            env.casework.sweep_plan_reviews(day), replica.sweep_plan_reviews(day, batch=2),
            env.casework.sweep_plan_reviews(day, batch=3), replica.sweep_plan_reviews(day))
        assert len(await announced()) == 6
        await asyncio.gather(replica.sweep_plan_reviews(day + timedelta(days=1)),
                             env.casework.sweep_plan_reviews(day + timedelta(days=1), batch=1))
        await env.casework.sweep_plan_reviews(day + timedelta(days=5))
    finally:
        await pool.close()

    events = await announced()
    assert sorted(e["payload"]["participant_id"] for e in events) == sorted(pids)
    first = next(e for e in events if e["payload"]["participant_id"] == pids[0])
    assert first["payload"] == {"participant_id": pids[0], "municipality_code": "0180",
                                "assigned_to": "cw-plans", "review_date": day.isoformat(),
                                "plan_version": 1}
    assert first["aggregate_id"] == plans[pids[0]]["id"]

    # the worklist shows them due and announced; a review sets a new date, announced in turn
    r = await client.get("/plans", headers=headers, params={
        "assigned_to": "cw-plans", "due_before": (day + timedelta(days=2)).isoformat(),
        "limit": 5})
    assert r.status_code == 200 and r.json()["next_cursor"]
    page = r.json()["items"]
    assert all(x["announced"] and not x["review_due"] for x in page)  # due in 2031, not today
    rest = (await client.get("/plans", headers=headers, params={
        "assigned_to": "cw-plans", "cursor": r.json()["next_cursor"]})).json()["items"]
    assert len(page) + len(rest) == 12
    assert str(page) and "Orka" not in str(page)  # ids and dates only
    timeline = (await client.get(f"/participants/{pids[0]}/timeline",
                                 headers=headers)).json()["items"]
    assert [i["details"] for i in timeline if i["kind"] == "plan_review_due"] == [
        {"review_date": day.isoformat()}]


async def test_the_service_sweeps_plan_reviews_by_itself(
    env: Any, client: Any, refer: Any, case_worker: Any,
) -> None:
    headers = case_worker("0180")
    pid = (await refer(headers))["id"]
    today = swedish_date(datetime.now(UTC))
    plan = await write(client, pid, headers, next_review_date=today.isoformat())
    assert plan["review_due"] is True
    # a replica whose sweep runs every 0.2 s (the session's app sweeps only when told)
    replica = create_app(env.settings.model_copy(update={"plan_review_sweep_interval": 0.2}))
    async with LifespanManager(replica):
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            async with env.pool.acquire() as conn:
                n = await conn.fetchval(
                    "SELECT count(*) FROM plan_review_notices WHERE plan_id = $1",
                    uuid.UUID(plan["id"]))
            if n or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
    assert n == 1
