"""One hop, the project beside the raw limit, on the same data in the same run.

The hop: casework consumes `registry.company.deregistered.v1` for a company with an active
placement, and in one transaction records the event in the inbox, updates its company read
model, flags the placement, writes `casework.placements.flagged.v1` to the outbox and
notifies `/stream` (pg_notify); that event is then published to `asf.events` with a
publisher confirm and lands in a durable quorum queue (the sink, standing in for the next
service's queue). This is the casework path that publishes; a registration or an update only
changes the read model.

- **project**: the casework app itself, in this process (`create_app` + its lifespan):
  FastStream subscriber via `asf_kit.consumer.EventConsumer` (envelope and payload
  validation, tracing, metrics, structured log line), `Casework.apply_company`, and the
  outbox relay publishing in batches.
- **raw**: `bench.raw.raw_hop` (one event at a time) and `bench.raw.raw_hop_concurrent`
  (16, 32 and 64 in flight), the same SQL on the same schema, with aio-pika and asyncpg and
  nothing else: publish with confirm, then ack. The raw limit of a round is the best of them
  (`best_raw`).

Both sides: the input is published to a fresh quorum queue before the clock starts; the
clock runs from the first delivery to the hop consumer to the arrival of the N-th outgoing
event in the sink. Per-event service time: from the start of handling an event to its
outgoing event confirmed by the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import orjson

from asf_contracts import EXCHANGE
from asf_contracts.topology import ServiceQueues
from asf_kit.consumer import main_queue
from asf_kit.db import migrate
from bench.common import Result
from bench.levers import beyond, without

ROOT = Path(__file__).resolve().parents[1]
CASEWORK_MIGRATIONS = ROOT / "services" / "casework" / "migrations"
DEREGISTERED_KEY = "registry.company.deregistered.v1"
FLAGGED_KEY = "casework.placements.flagged.v1"


async def prepare_casework_db(dsn: str, n: int) -> list[uuid.UUID]:
    """Migrate, then n active companies, each with one participant in training placed there."""
    await migrate(dsn, CASEWORK_MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                """
                CREATE TEMP TABLE g ON COMMIT DROP AS
                SELECT i, gen_random_uuid() AS cid, gen_random_uuid() AS pid,
                       gen_random_uuid() AS plid
                FROM generate_series(1, $1::int) AS i
                """, n)
            await conn.execute(
                """
                INSERT INTO companies (id, name, municipality_code, status, training_places,
                                       version)
                SELECT cid, 'Bench Kooperativ ' || i, '0180', 'active', 10, 2 FROM g
                """)
            await conn.execute(
                """
                INSERT INTO participants (id, municipality_code, referral_source, assigned_to,
                    stage, referred_at, key_id, created_by, version, updated_at)
                SELECT pid, '0180', 'social_services', 'cw-' || (i % 50), 'in_training',
                       now(), 'k1', 'bench', 2, now() FROM g
                """)
            await conn.execute(
                """
                INSERT INTO placements (id, participant_id, company_id, kind, start, status,
                                        created_by, created_at, version)
                SELECT plid, pid, cid, 'work_training', current_date, 'active', 'bench',
                       now(), 1 FROM g
                """)
            rows = await conn.fetch("SELECT cid FROM g ORDER BY i")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return [r["cid"] for r in rows]


def deregistered(company_id: uuid.UUID, i: int) -> bytes:
    """A registry.company.deregistered.v1 envelope as the registry's relay publishes it."""
    from datetime import UTC, datetime

    return orjson.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "registry.company.deregistered",
        "event_version": 1, "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "registry", "correlation_id": str(uuid.uuid4()), "causation_id": None,
        "aggregate_id": str(company_id), "aggregate_version": 3,
        "payload": {
            "id": str(company_id), "org_number": f"7696{i % 1000000:06d}",
            "name": f"Bench Kooperativ {i}", "legal_form": "ekonomisk_forening",
            "municipality_code": "0180", "county_code": "01", "industries": ["second_hand"],
            "training_places": 10, "origin": "existing", "status": "deregistered",
            "qualifies_as_asf": True, "reserved_contract_eligible": True,
            "verification_level": "verified", "contacts": [],
            "deregistration_reason": "bankruptcy",
        },
    })


class Sink:
    """A durable quorum queue bound to `asf.events` for casework's events: the next hop."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, expected: int) -> None:
        self.channel = channel
        self.expected = expected
        self.arrived = 0
        self.last_ns = 0
        self.done = asyncio.Event()
        self.queue: aio_pika.abc.AbstractQueue | None = None

    async def start(self) -> None:
        exchange = await self.channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        self.queue = await self.channel.declare_queue(
            f"bench.sink.{uuid.uuid4().hex[:8]}", durable=True,
            arguments={"x-queue-type": "quorum"})
        await self.queue.bind(exchange, "casework.#")
        await self.queue.consume(self._on, no_ack=True)

    async def _on(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.arrived += 1
        self.last_ns = time.time_ns()
        if self.arrived >= self.expected:
            self.done.set()

    async def stop(self) -> None:
        if self.queue is not None:
            await self.queue.delete(if_unused=False, if_empty=False)


class HopClock:
    """The project's per-event service time: from the kit consumer taking a message in
    (`EventConsumer._settle`) to the relay's publish of the event it caused coming back with
    the broker's confirm (`OutboxRelay._send`; matched by the outgoing event's
    `causation_id`, the incoming event's id). The clock wraps those two methods rather than
    listening to spans: a span processor would make every span record, which a service
    without an exporter does not (`asf_kit.telemetry`)."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}
        self.latencies: list[float] = []
        self.pairs: list[tuple[int, int]] = []
        self.first_ns = 0
        self.first_cpu = 0.0

    def reset(self) -> None:
        self.started.clear()
        self.latencies = []
        self.pairs = []
        self.first_ns = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from asf_kit.consumer import EventConsumer
        from asf_kit.outbox import OutboxRelay

        settle, send = EventConsumer._settle, OutboxRelay._send
        clock = self

        async def timed_settle(consumer: Any, msg: Any) -> None:
            now = time.time_ns()
            if not clock.first_ns:
                clock.first_ns = now
                clock.first_cpu = time.process_time()
            clock.started[msg.message_id] = now
            await settle(consumer, msg)

        async def timed_send(relay: Any, row: Any, headers: dict[str, Any]) -> None:
            await send(relay, row, headers)
            t0 = clock.started.pop(orjson.loads(bytes(row["body"]))["causation_id"], None)
            if t0 is not None:
                end = time.time_ns()
                clock.latencies.append((end - t0) / 1e9)
                clock.pairs.append((t0, end))

        EventConsumer._settle, OutboxRelay._send = timed_settle, timed_send  # type: ignore[method-assign]
        try:
            yield
        finally:
            EventConsumer._settle, OutboxRelay._send = settle, send  # type: ignore[method-assign]


_clock = HopClock()


def hop_clock() -> HopClock:
    return _clock


async def _prefill(channel: aio_pika.abc.AbstractChannel, queue_name: str,
                   bodies: list[bytes]) -> None:
    """Publish the input with confirms, many in flight, straight into the hop's queue."""
    ex = channel.default_exchange
    for i in range(0, len(bodies), 200):
        await asyncio.gather(*(ex.publish(
            aio_pika.Message(b, message_id=orjson.loads(b)["event_id"],
                             content_type="application/json",
                             headers={"event_type": "registry.company.deregistered",
                                      "event_version": 1},
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue_name) for b in bodies[i:i + 200]))


async def pace(channel: aio_pika.abc.AbstractChannel, queue_name: str, bodies: list[bytes],
               rate: float) -> None:
    """Publish the input at a steady rate (an open model: late handling shows as latency)."""
    ex = channel.default_exchange
    started = time.perf_counter()
    pending = []
    for i, b in enumerate(bodies):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.ensure_future(ex.publish(
            aio_pika.Message(b, message_id=orjson.loads(b)["event_id"],
                             content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue_name)))
    await asyncio.gather(*pending)


async def project_hop(dsn: str, broker_url: str, companies: list[uuid.UUID],
                      log_path: Path, settings_overrides: dict[str, Any] | None = None,
                      name: str = "project hop (casework)", rate: float | None = None) -> Result:
    """The casework app consuming `len(companies)` deregistrations: queued beforehand, or
    published at `rate` per second while it runs."""
    from asf_testing import DATA_KEY, serving
    from casework.app import create_app
    from casework.settings import CaseworkSettings

    clock = hop_clock()
    clock.reset()
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    queues = ServiceQueues(service=namespace + "casework")
    settings = CaseworkSettings(**{
        "app_env": "development", "database_url": dsn, "broker_url": broker_url,
        "jwt_secret": "x" * 40,
        "queue_namespace": namespace, "casework_data_key": DATA_KEY,
        "follow_up_sweep_interval": 0, "log_level": "INFO", **(settings_overrides or {})})
    bodies = [deregistered(c, i) for i, c in enumerate(companies)]
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        sink = Sink(channel, len(bodies))
        await sink.start()
        q = main_queue(queues)
        await channel.declare_queue(q.name, durable=True, arguments=dict(q.arguments or {}))
        if rate is None:
            await _prefill(channel, q.name, bodies)
        app = create_app(settings)
        with _logs_to(log_path, settings.log_level), clock.installed():
            async with serving(app, lifespan_seconds=60):
                if rate is not None:
                    await pace(channel, q.name, bodies, rate)
                await asyncio.wait_for(sink.done.wait(), 300)
                cpu = time.process_time() - clock.first_cpu
                elapsed = (sink.last_ns - clock.first_ns) / 1e9
                latencies = list(clock.latencies)
        await sink.stop()  # the queues went with the app (`started`)
    finally:
        await connection.close()
    result = Result(name, len(bodies), elapsed, latencies)
    result.cpu_ms = round(cpu / len(bodies) * 1000, 3)  # type: ignore[attr-defined]
    return result


class _logs_to:
    """Production logging (JSON, at `level`: INFO unless a variant sets another) into a file
    instead of the terminal."""

    def __init__(self, path: Path, level: str = "INFO") -> None:
        self.path = path
        self.level = level

    def __enter__(self) -> None:
        from asf_kit.logging import configure

        self.path.parent.mkdir(parents=True, exist_ok=True)
        configure("casework", "bench", self.level, "json")
        self.stream = self.path.open("a", encoding="utf-8")
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(self.stream)

    def __exit__(self, *exc: object) -> None:
        import sys

        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(sys.stderr)
        logging.getLogger().setLevel(logging.WARNING)
        self.stream.close()


def _line(r: int, res: Result) -> str:
    return (f"  round {r + 1}: {res.name}: {res.rate:,.0f}/s p50 {res.pct(50):.2f} "
            f"p99 {res.pct(99):.2f} max {max(res.latencies, default=0) * 1000:.1f} ms, "
            f"CPU of this process {res.cpu_ms:.2f} ms/event")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Variant:
    """The project with some settings changed and some levers switched off."""

    settings: dict[str, Any] = field(default_factory=dict)
    levers_off: tuple[str, ...] = ()
    what_if: tuple[str, ...] = ()
    """Beyond the project as it is (`levers.WHAT_IFS`): the decisions left, measured."""


RAW_ONE = "raw hop, one at a time"
RAW_LIMIT = "raw limit: best raw hop (1, 16, 32, 64 in flight)"


def best_raw(runs: list[Result], paced: bool) -> Result:
    """The raw limit of a round: of the raw runs (one at a time, and 16/32/64 in flight),
    the one with the most events/s (queued beforehand) or the lowest p99 (at a steady rate,
    where one at a time often wins: nothing waits behind anything)."""
    best = min(runs, key=lambda r: r.pct(99)) if paced else max(runs, key=lambda r: r.rate)
    limit = Result(RAW_LIMIT, best.count, best.seconds, list(best.latencies))
    limit.cpu_ms = best.cpu_ms  # type: ignore[attr-defined]
    limit.in_flight = (1 if best.name == RAW_ONE  # type: ignore[attr-defined]
                       else int(best.name.split()[2].rstrip(",")))
    return limit


async def hop_rounds(pg: str, broker_url: str, n: int, rounds: int, log_dir: Path,
                     variants: dict[str, Variant] | None = None,
                     say: Callable[[str], None] = print, rate: float | None = None,
                     ) -> list[Result]:
    """`rounds` times: the raw hop one at a time, the concurrent raw hop at each in-flight
    count (and their best, the raw limit), then the project (and each variant), interleaved,
    fresh data each."""
    from asf_kit import runtime
    from bench.common import scratch_database
    from bench.raw import RAW_IN_FLIGHT, raw_hop, raw_hop_concurrent

    runtime.FREEZE_HEAP_AFTER_START = True  # the project as `serve` runs it (a lever)

    variants = variants or {"project hop (casework)": Variant()}
    results: list[Result] = []
    async with scratch_database("hopraw") as raw_dsn, scratch_database("hopproj") as proj_dsn:
        raw_companies = await prepare_casework_db(raw_dsn, n * rounds * (1 + len(RAW_IN_FLIGHT)))
        proj_companies = await prepare_casework_db(proj_dsn, n * rounds * len(variants))
        raw_chunks = iter([raw_companies[i:i + n] for i in range(0, len(raw_companies), n)])
        chunks = iter([proj_companies[i:i + n] for i in range(0, len(proj_companies), n)])
        for r in range(rounds):
            res = await raw_hop(raw_dsn, broker_url, next(raw_chunks), rate)
            res.name = RAW_ONE
            say(_line(r, res))
            raws = [res]
            for k in RAW_IN_FLIGHT:
                res = await raw_hop_concurrent(raw_dsn, broker_url, next(raw_chunks), rate, k)
                say(_line(r, res))
                raws.append(res)
            results.extend(raws)
            results.append(best_raw(raws, paced=rate is not None))
            for label, v in variants.items():
                with without(*v.levers_off), beyond(*v.what_if):
                    res = await project_hop(proj_dsn, broker_url, next(chunks),
                                            log_dir / "casework-hop.log", v.settings, label, rate)
                say(_line(r, res))
                results.append(res)
    return results
