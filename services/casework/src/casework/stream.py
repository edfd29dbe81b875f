"""Case changes for connected frontends (`GET /stream`): server-sent events that resume.

Every change is kept in `stream_events` and NOTIFYed in the transaction that makes it
(`store.add_stream_event`), so PostgreSQL delivers it only after commit, and to every
replica. Ids follow the commit order: a client that reconnects with `Last-Event-ID: N` is
sent, from the table, every change in its municipality after N that it missed (kept
`STREAM_RETENTION_HOURS`, at least 24), then the live ones. Messages carry ids, stages and
versions only.

A stream ends when the caller's token expires, when this replica loses its LISTEN
connection, or when a client reads too slowly to keep up; in each case the client
reconnects with the last id it got and misses nothing. Each person holds at most
`STREAM_MAX_PER_USER` streams across replicas, each replica at most
`STREAM_MAX_PER_PROCESS` (429 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import anyio
import asyncpg
import orjson

from asf_kit.logging import get_logger
from asf_kit.problems import Problem
from asf_kit.worker import Worker
from casework import store

log = get_logger(__name__)

REPLAY_BATCH = 500


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Subscription:
    """One open stream: the changes in its municipality, queued until the client reads them."""

    id: UUID
    sub: str
    municipality_code: str
    queue: asyncio.Queue[dict[str, Any] | None]
    ended: bool = field(default=False)

    def offer(self, change: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:  # too slow: end it; the client resumes from what it got
            self.ended = True

    def end(self) -> None:
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class Broadcaster(Worker):
    """One LISTEN connection per process (a kit worker), fanned out to each open stream.

    Each round (every `heartbeat` seconds) tells the database that this replica's streams
    are still open, and now and then forgets changes older than the retention. When the
    LISTEN connection had to be opened again, whatever was NOTIFYed meanwhile was not heard:
    every stream open at the time is ended, so each client resumes from the table.
    """

    def __init__(self, dsn: str, pool: Callable[[], asyncpg.Pool], *, retention: timedelta,
                 heartbeat: float = 30.0, prune_every: float = 600.0,
                 queue_size: int = 256) -> None:
        super().__init__("casework-stream", dsn=dsn, channel=store.CHANGES_CHANNEL,
                         interval=heartbeat)
        self._pool = pool
        self.retention = retention
        self.heartbeat = heartbeat
        self._prune_every = prune_every
        self._queue_size = queue_size
        self.process_id = uuid4()
        self.subscriptions: dict[UUID, Subscription] = {}
        self._heard_on: object = None
        self._last_prune = float("-inf")
        self._first_round = asyncio.Event()

    async def start(self) -> None:
        """Start listening; waits a few seconds for the connection, then goes on."""
        await super().start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_round.wait(), 5.0)

    async def stop(self, grace: float = 10.0) -> None:
        await super().stop(grace)
        self._end_all()

    def subscribe(self, sub: str, municipality_code: str) -> Subscription:
        s = Subscription(uuid4(), sub, municipality_code, asyncio.Queue(self._queue_size))
        self.subscriptions[s.id] = s
        return s

    def unsubscribe(self, subscription_id: UUID) -> None:
        self.subscriptions.pop(subscription_id, None)

    def _end_all(self) -> None:
        for s in list(self.subscriptions.values()):
            s.end()

    async def round(self) -> bool:
        if self._listener is not self._heard_on:  # (re)connected: NOTIFYs may be lost
            self._heard_on = self._listener
            self._end_all()
        async with self._pool().acquire() as conn:
            await store.refresh_streams(conn, list(self.subscriptions))
            moment = asyncio.get_running_loop().time()
            if moment - self._last_prune >= self._prune_every:
                self._last_prune = moment
                pruned = await store.prune_stream(conn, now() - self.retention)
                if pruned:
                    log.info("stream changes pruned", count=pruned)
        if self.listening:
            self._first_round.set()
        return False

    def notified(self, payload: str) -> None:
        """A change committed somewhere: to the streams of its municipality (no round)."""
        try:
            change = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        for s in list(self.subscriptions.values()):
            if s.municipality_code == change.get("municipality_code"):
                s.offer(change)


class CaseStream:
    """Opens streams within the limits and runs each: resume, then live, until the token
    expires."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], broadcaster: Broadcaster, *,
                 per_user: int, per_process: int) -> None:
        self._pool = pool
        self.broadcaster = broadcaster
        self.per_user = per_user
        self.per_process = per_process

    async def open(self, sub: str, municipality_code: str, last_event_id: int | None,
                   expires_at: datetime) -> StreamSession:
        """A new stream for `sub`; 429 beyond the limits, 503 while not listening."""
        b = self.broadcaster
        if not b.listening:
            raise Problem(503, "Stream unavailable", "case changes cannot be followed right "
                          "now; try again shortly", slug="stream-unavailable",
                          headers={"Retry-After": "5"})
        if len(b.subscriptions) >= self.per_process:
            raise Problem(429, "Too many streams",
                          f"this server has its {self.per_process} streams open; "
                          "try again shortly", slug="too-many-streams",
                          headers={"Retry-After": "30"})
        subscription = b.subscribe(sub, municipality_code)
        try:
            async with self._pool().acquire() as conn:
                claimed = await store.claim_stream(
                    conn, subscription.id, sub, b.process_id, self.per_user,
                    now() - timedelta(seconds=3 * b.heartbeat))
        except BaseException:
            b.unsubscribe(subscription.id)
            raise
        if not claimed:
            b.unsubscribe(subscription.id)
            raise Problem(429, "Too many streams",
                          f"you already have {self.per_user} streams open; close one first",
                          slug="too-many-streams", headers={"Retry-After": "30"},
                          limit=self.per_user)
        return StreamSession(self, subscription, last_event_id, expires_at)


class StreamSession:
    """One client's stream; `close` (idempotent) gives its place back. It runs when the
    stream ends and again, in case the stream never started, after the response."""

    def __init__(self, streams: CaseStream, subscription: Subscription,
                 last_event_id: int | None, expires_at: datetime) -> None:
        self._streams = streams
        self.subscription = subscription
        self.last_event_id = last_event_id
        self.expires_at = expires_at
        self._released = False

    async def close(self) -> None:
        self._streams.broadcaster.unsubscribe(self.subscription.id)
        if self._released:
            return
        async with self._streams._pool().acquire() as conn:
            await store.release_stream(conn, self.subscription.id)
        self._released = True

    async def events(self) -> AsyncIterator[dict[str, str]]:
        """`ready` (with where the stream starts), what was missed, then each change as it
        commits, and `end` when the token expires. Every event has an id."""
        s = self.subscription
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.expires_at - now()).total_seconds()
        try:
            async with self._streams._pool().acquire() as conn:
                newest, pruned = await store.stream_position(conn)
            last = self.last_event_id
            # pruned since, or an id this database never handed out: start afresh
            reset = last is not None and not pruned <= last <= newest
            if last is None or reset:
                last = newest
            yield _event("ready", last, {"resumed": self.last_event_id is not None and not reset,
                                         "reset": reset})
            while loop.time() < deadline:  # what the client missed, from the table
                async with self._streams._pool().acquire() as conn:
                    missed = await store.stream_since(conn, s.municipality_code, last,
                                                      REPLAY_BATCH)
                for stream_id, change in missed:
                    yield _event("case", stream_id, change)
                    last = stream_id
                if len(missed) < REPLAY_BATCH:
                    break
            while not s.ended:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    yield _event("end", last, {"reason": "token expired"})
                    return
                try:
                    live = await asyncio.wait_for(s.queue.get(), remaining)
                except TimeoutError:
                    continue
                if live is None or s.ended:
                    return
                if live["id"] <= last:  # already sent from the table
                    continue
                last = live["id"]
                yield _event("case", last, live)
        finally:
            # the client left: the request is being cancelled, yet the place must be freed
            with anyio.CancelScope(shield=True):
                await self.close()


def _event(name: str, stream_id: int, data: dict[str, Any]) -> dict[str, str]:
    return {"event": name, "id": str(stream_id), "data": orjson.dumps(data).decode()}
