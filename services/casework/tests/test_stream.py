"""`GET /stream`: case changes in scope, an id on every event, resuming with Last-Event-ID
(also after 25 hours), the end at the token's expiry, and the limits on open streams."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI

from asf_testing import serving, token, unique_namespace
from casework import store
from casework.app import create_app


class Stream:
    """One `GET /stream` through the app's ASGI interface, read as it arrives."""

    def __init__(self, app: FastAPI, headers: dict[str, str],
                 last_event_id: str | None = None) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if last_event_id is not None:
            self.headers.append((b"last-event-id", last_event_id.encode()))
        self.text = ""
        self.status: int | None = None
        self._arrived = asyncio.Event()
        self._disconnect = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> Stream:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/stream", "raw_path": b"/stream",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
            "server": ("casework", 80), "headers": [(b"host", b"casework"), *self.headers],
        }

        async def receive() -> dict[str, Any]:
            await self._disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.text += message.get("body", b"").decode()
            self._arrived.set()

        self.task = asyncio.create_task(self.app(scope, receive, send))
        await self.until(lambda: self.status is not None)
        return self

    @property
    def events(self) -> list[dict[str, Any]]:
        """Each event sent so far: its `event`, `id` and parsed `data`."""
        parsed = []
        for block in self.text.split("\r\n\r\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines()
                          if ": " in line and not line.startswith(":"))
            if "event" in fields:
                parsed.append({"event": fields["event"], "id": fields.get("id"),
                               "data": orjson.loads(fields.get("data", "null"))})
        return parsed

    def cases(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "case"]

    async def until(self, condition: Callable[[], bool], within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._arrived.clear()
                if condition():
                    return
                with contextlib.suppress(TimeoutError):  # the end comes after the last send
                    await asyncio.wait_for(self._arrived.wait(), 0.1)

    @property
    def ended(self) -> bool:
        return self.task is not None and self.task.done()

    async def close(self) -> None:
        self._disconnect.set()
        if self.task is not None:
            async with asyncio.timeout(10):
                await self.task


async def test_changes_in_scope_only_with_an_id_on_every_event(
    env: Any, refer: Any, move: Any, case_worker: Any, identity_number: Any,
) -> None:
    headers = case_worker("0998")
    s = await Stream(env.app, headers).open()
    try:
        await s.until(lambda: any(e["event"] == "ready" for e in s.events))
        assert s.status == 200
        other = (await refer(case_worker("0180")))["id"]
        pid = (await refer(headers, given_name="Strömsson"))["id"]
        await move(pid, headers, "assessment")
        await s.until(lambda: any(e["data"]["stage"] == "assessment" for e in s.cases()))
        assert [(e["data"]["participant_id"], e["data"]["stage"]) for e in s.cases()] == [
            (pid, "referred"), (pid, "assessment")]
        assert other not in s.text and "Strömsson" not in s.text
        ids = [int(e["id"]) for e in s.events]
        assert all(e["id"] for e in s.events) and ids == sorted(ids) and len(set(ids)) == len(ids)

        # a change made on another replica reaches this replica's stream (LISTEN/NOTIFY)
        replica = create_app(env.settings.model_copy(
            update={"queue_namespace": unique_namespace()}))
        async with serving(replica, "http://replica-2") as client2:
            r = await client2.post("/participants", headers=headers, json={
                "given_name": "Replika", "family_name": "Tvåsson",
                "personal_identity_number": identity_number(),
                "referral_source": "self"})
            assert r.status_code == 201
            await s.until(lambda: r.json()["id"] in s.text)
    finally:
        await s.close()


async def test_a_client_that_reconnects_gets_what_it_missed(
    env: Any, refer: Any, move: Any, case_worker: Any
) -> None:
    headers = case_worker("0994")
    first = (await refer(headers))["id"]
    s = await Stream(env.app, headers).open()
    await move(first, headers, "assessment")
    await s.until(lambda: len(s.cases()) == 1)
    last_id = s.events[-1]["id"]
    await s.close()

    second = (await refer(headers))["id"]  # while the client was away
    await move(first, headers, "closed", exit_reason="moved")
    await refer(case_worker("0180"))  # another municipality: not sent
    s = await Stream(env.app, headers, last_event_id=last_id).open()
    try:
        await s.until(lambda: len(s.cases()) == 2)
        ready = s.events[0]
        assert (ready["event"], ready["id"], ready["data"]) == (
            "ready", last_id, {"resumed": True, "reset": False})
        assert [(e["data"]["participant_id"], e["data"]["event"]) for e in s.cases()] == [
            (second, "casework.participant.referred"),
            (first, "casework.participant.stage_changed")]
        await move(second, headers, "assessment")  # and then live, each once
        await s.until(lambda: len(s.cases()) == 3)
        await asyncio.sleep(0.3)
        ids = [int(e["id"]) for e in s.cases()]
        assert len(ids) == 3 and ids == sorted(set(ids)) and ids[0] > int(last_id)
    finally:
        await s.close()


async def test_changes_are_kept_more_than_a_day_and_then_pruned(
    env: Any, refer: Any, move: Any, case_worker: Any
) -> None:
    headers = case_worker("0993")
    s = await Stream(env.app, headers).open()
    await s.until(lambda: bool(s.events))
    start = s.events[0]["id"]
    await s.close()
    pid = (await refer(headers))["id"]
    await move(pid, headers, "assessment")
    async with env.pool.acquire() as conn:
        await conn.execute("UPDATE stream_events SET at = now() - interval '25 hours' "
                           "WHERE participant_id = $1", uuid.UUID(pid))
    retention = env.app.state.broadcaster.retention
    assert retention == timedelta(hours=48)
    async with env.pool.acquire() as conn:
        await store.prune_stream(conn, datetime.now(UTC) - retention)
    s = await Stream(env.app, headers, last_event_id=start).open()  # 25 hours later
    try:
        await s.until(lambda: len(s.cases()) == 2)
        assert [e["data"]["stage"] for e in s.cases()] == ["referred", "assessment"]
    finally:
        await s.close()

    async with env.pool.acquire() as conn:  # past the retention: pruned, and the client told
        await conn.execute("UPDATE stream_events SET at = now() - interval '49 hours' "
                           "WHERE participant_id = $1", uuid.UUID(pid))
        assert await store.prune_stream(conn, datetime.now(UTC) - retention) >= 2
    s = await Stream(env.app, headers, last_event_id=start).open()
    try:
        await s.until(lambda: bool(s.events))
        ready = s.events[0]
        assert ready["event"] == "ready" and ready["data"] == {"resumed": False, "reset": True}
        assert int(ready["id"]) > int(start)
        await move(pid, headers, "closed", exit_reason="moved")  # and live from there
        await s.until(lambda: len(s.cases()) == 1)
    finally:
        await s.close()


async def test_the_stream_ends_when_the_token_expires(env: Any, refer: Any) -> None:
    headers = {"Authorization": "Bearer " + token(
        "case_worker", sub="cw-short-lived", municipality_code="0992",
        ttl=timedelta(seconds=3))}
    s = await Stream(env.app, headers).open()
    try:
        await s.until(lambda: s.ended, within=20)
        assert [e["event"] for e in s.events] == ["ready", "end"]
        assert s.events[-1]["data"] == {"reason": "token expired"}
        assert s.events[-1]["id"] == s.events[0]["id"]
    finally:
        await s.close()
    async with env.pool.acquire() as conn:  # its place is given back
        held = await conn.fetchval("SELECT count(*) FROM open_streams WHERE sub = $1",
                                   "cw-short-lived")
    assert held == 0


async def test_five_streams_per_person_and_a_limit_per_process(
    env: Any, client: Any, case_worker: Any
) -> None:
    headers = case_worker("0991", sub="cw-many-tabs")
    streams = [await Stream(env.app, headers).open() for _ in range(5)]
    try:
        assert [s.status for s in streams] == [200] * 5
        sixth = await Stream(env.app, headers).open()
        await sixth.until(lambda: sixth.ended)
        assert sixth.status == 429 and "5 streams" in sixth.text
        other = await Stream(env.app, case_worker("0991")).open()  # someone else may
        assert other.status == 200
        await other.close()
        await streams.pop().close()
        again = await Stream(env.app, headers).open()  # a closed one frees a place
        assert again.status == 200
        streams.append(again)

        limits = env.app.state.streams
        limits.per_process = len(env.app.state.broadcaster.subscriptions)
        try:
            full = await Stream(env.app, case_worker("0991")).open()
            await full.until(lambda: full.ended)
            assert full.status == 429 and "this server" in full.text
        finally:
            limits.per_process = env.settings.stream_max_per_process
    finally:
        for s in streams:
            await s.close()
    r = await client.get("/stream", headers={**headers, "Last-Event-ID": "yesterday"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Last-Event-ID"


async def test_a_stream_of_a_replica_that_died_stops_counting(
    env: Any, case_worker: Any
) -> None:
    headers = case_worker("0991", sub="cw-crashed-tabs")
    async with env.pool.acquire() as conn:  # five streams of a replica that stopped
        await conn.executemany(
            "INSERT INTO open_streams (id, sub, process_id, seen_at) "
            "VALUES ($1, $2, $3, now() - interval '10 minutes')",
            [(uuid.uuid4(), "cw-crashed-tabs", uuid.uuid4()) for _ in range(5)])
    s = await Stream(env.app, headers).open()
    try:
        assert s.status == 200
    finally:
        await s.close()


async def test_an_id_never_handed_out_starts_afresh(env: Any, case_worker: Any) -> None:
    s = await Stream(env.app, case_worker("0991"), last_event_id=str(10**15)).open()
    try:
        await s.until(lambda: bool(s.events))
        ready = s.events[0]
        assert ready["data"] == {"resumed": False, "reset": True}
        assert int(ready["id"]) < 10**15
    finally:
        await s.close()


async def test_a_lost_listen_connection_ends_the_streams_and_nothing_is_missed(
    env: Any, refer: Any, move: Any, case_worker: Any
) -> None:
    headers = case_worker("0989")
    s = await Stream(env.app, headers).open()
    await s.until(lambda: bool(s.events))
    broadcaster = env.app.state.broadcaster
    listener_pid = broadcaster._listener.get_server_pid()
    async with env.pool.acquire() as conn:
        await conn.execute("SELECT pg_terminate_backend($1)", listener_pid)
    pid = (await refer(headers))["id"]  # perhaps while nobody listens
    try:
        await s.until(lambda: s.ended, within=30)
    finally:
        await s.close()
    resume_from = s.events[-1]["id"]  # the last id the client got, as a browser keeps it
    for _ in range(300):  # listening again, on a new connection
        if broadcaster.listening and broadcaster._listener.get_server_pid() != listener_pid:
            break
        await asyncio.sleep(0.1)
    assert broadcaster.listening
    s = await Stream(env.app, headers, last_event_id=resume_from).open()
    try:
        await move(pid, headers, "assessment")
        await s.until(lambda: [e["data"]["stage"] for e in s.cases()][-1:] == ["assessment"])
        stages = [(e["data"]["participant_id"], e["data"]["stage"]) for e in s.cases()]
        assert (pid, "referred") in stages and stages[-1] == (pid, "assessment")
    finally:
        await s.close()
