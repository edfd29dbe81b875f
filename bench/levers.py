"""The kit's performance levers, each switchable back off, so a run can show what each one
gives beside the code as it is (bench only; the services always run with all of them).

- `relay wake-up`: the relay (like every kit worker) clears its wake-up flag before the
  round, so a NOTIFY arriving during a round starts another round instead of being lost
  until the next event or poll.
- `backlog gauges once a second`: the relay refreshed the outbox backlog gauges (one more
  query) after every round; now at most once a second.
- `pool without reset query`: connections go back to the pool without asyncpg's reset
  query, one round trip less per transaction.
- `consumer without FastStream DI`: the broker runs with `apply_types=False` and the
  consumer takes the message itself; before, FastStream injected `msg: RabbitMessage`
  through FastDepends, which ran `Context.use` in a worker thread for every message.
- `relay hand-over in memory`: events committed by a unit of work (or the consumer's inbox
  transaction) go to the relay in memory right after the commit and are published at once;
  without it, the commit's NOTIFY wakes the relay, which claims the rows in a second
  transaction, publishes and marks them.

- `heap frozen after start`: a served process (`serve`) collects and freezes its heap once
  started (`gc.freeze`), so the collector's rare full passes skip the modules and the app;
  one such pass held the bench's event loop for 60–80 ms.

`CONSUMER_CONCURRENCY` is a setting, not a lever: the bench runs it as a variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from faststream.rabbit import Channel, QueueType, RabbitMessage, RabbitQueue

from asf_kit import db, outbox, runtime, worker


async def _run_before(self: Any) -> None:
    """The worker loop as it was: the flag cleared after the round, so a wake-up during the
    round waited for the next poll (or the next event)."""
    while not self._stopping:
        try:
            await self._listen()
            more = await self.round()
            self.failures = 0
            if more:
                continue
            self._wake.clear()
            await self._idle(await self.seconds_to_wait())
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            await self._drop_listener()
            await asyncio.sleep(worker.BACKOFF.after(self.failures))


_observe_now = outbox.OutboxRelay._observe


async def _observe_every_round(self: Any) -> None:
    self._last_observed = 0.0
    await _observe_now(self)


async def _pool_with_reset(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                     init=db._init_connection)
    assert pool is not None
    return pool


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


async def _raw_body(msg: Any) -> bytes:
    return bytes(msg.body)


def _subscribe_with_di(self: Any) -> None:
    """The subscriber as it was: FastStream's dependency injection gives body and message."""
    async def on_message(body: bytes, msg: RabbitMessage) -> None:
        await self._on_message(msg)

    self.runtime.broker.subscriber(
        RabbitQueue(self.queues.main, queue_type=QueueType.QUORUM, declare=False),
        channel=Channel(prefetch_count=self.prefetch), decoder=_raw_body, no_reply=True,
        title=self.queues.main,
    )(on_message)


@contextlib.contextmanager
def _with_di() -> Iterator[None]:
    from faststream.rabbit import RabbitBroker

    from asf_kit import consumer

    def broker(url: str, **kw: Any) -> RabbitBroker:
        return RabbitBroker(url, **{**kw, "apply_types": True})

    with _patched(runtime, "RabbitBroker", broker), \
            _patched(consumer.EventConsumer, "_subscribe", _subscribe_with_di):
        yield


@contextlib.contextmanager
def _unfrozen() -> Iterator[None]:
    """The heap as it was: nothing frozen, every full collection walks all of it."""
    gc.unfreeze()
    with _patched(runtime, "FREEZE_HEAP_AFTER_START", False):
        yield


class _NoRelays(dict[int, Any]):
    """No relay registers for the hand-over: every event takes the NOTIFY-and-claim way."""

    def __setitem__(self, key: int, value: Any) -> None:
        return None


LEVERS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "relay wake-up": lambda: _patched(outbox.OutboxRelay, "_run", _run_before),
    "backlog gauges once a second":
        lambda: _patched(outbox.OutboxRelay, "_observe", _observe_every_round),
    "pool without reset query": lambda: _patched(runtime, "create_pool", _pool_with_reset),
    "consumer without FastStream DI": _with_di,
    "relay hand-over in memory": lambda: _patched(outbox, "_relays", _NoRelays()),
    "heap frozen after start": _unfrozen,
}


@contextlib.contextmanager
def without(*names: str) -> Iterator[None]:
    """Run with the named levers switched off (all of them with `"all"`)."""
    with contextlib.ExitStack() as stack:
        for name in LEVERS if "all" in names else names:
            stack.enter_context(LEVERS[name]())
        yield


# --- per call: what a log line and a span cost, each way ----------------------------------


def _stdlib_logger(stream: Any) -> Any:
    """A logger configured as the kit was before `log lines without the standard library`:
    structlog's processors, then a `LogRecord` through the standard library to a handler whose
    `ProcessorFormatter` renders it."""
    import logging

    import structlog

    from asf_kit.logging import _add_service, _orjson_dumps

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service, structlog.processors.format_exc_info,
    ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.JSONRenderer(serializer=_orjson_dumps),
    ]))
    std = logging.getLogger("bench.levers.stdlib")
    std.handlers[:] = [handler]
    std.propagate = False
    std.setLevel(logging.INFO)
    return structlog.wrap_logger(
        std, processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger)


def per_call_costs(n: int = 20_000) -> dict[str, float]:
    """µs per call, best of 3, each way in this process: the consumer's INFO line (with the
    event's ids bound) and a span that continues a `traceparent` and hands one on."""
    import io
    import time

    from opentelemetry import propagate

    from asf_kit import logging as kit_logging
    from asf_kit import telemetry

    def best(fn: Callable[[], None]) -> float:
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - t0) / n * 1e6)
        return round(min(runs), 2)

    import logging

    sink = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, kit_logging._handler[:]
    kit_logging.configure("casework", "bench", "INFO", "json")
    kit_logging._handler[-1].setStream(sink)
    ours = kit_logging.get_logger("casework.service")
    stdlib = _stdlib_logger(sink)
    fields = {"company_id": "6bc2e5f6-90ea-40b5-ac9f-35fc0c457615", "version": 3,
              "applied": True, "status": "deregistered"}
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    attrs = {"messaging.system": "rabbitmq", "messaging.message.id": "x" * 36}

    def a_span() -> None:
        with telemetry.span("consume bench", traceparent=tp, attributes=attrs):
            telemetry.current_traceparent()

    with kit_logging.bound_contextvars(event_id="6bc2e5f6-90ea-40b5-ac9f-35fc0c457615",
                                       event_type="registry.company.deregistered"):
        costs = {"log line, through the standard library (before)":
                 best(lambda: stdlib.info("company event", **fields)),
                 "log line, straight to the stream (now)":
                 best(lambda: ours.info("company event", **fields))}
    from opentelemetry import trace

    telemetry.setup("casework", "bench")
    provider = trace.get_tracer_provider()
    ours = isinstance(provider, telemetry._Provider)
    with _patched(provider, "listening", True) if ours else contextlib.nullcontext():
        with _patched(telemetry, "_W3C", propagate.get_global_textmap()):
            costs["span recorded, global propagator (before)"] = best(a_span)
        costs["span recorded, W3C propagator alone (now)"] = best(a_span)
    if ours:  # as a service without an exporter
        with _patched(provider, "listening", False):
            costs["span, nothing listening: not recorded (now, no exporter)"] = best(a_span)
    root.handlers[:], level, kit_logging._handler[:] = saved
    root.setLevel(level)
    return costs


# --- what it would take: the project beyond what it is (bench only, never in a service) ----
#
# Not levers to switch off but the two decisions left (bench/README.md, "What stands in the
# way"), measured in the same run as the project as it is: the kit's consumer and relay on
# aio-pika alone, FastStream kept for the connection and the declarations; and a service
# without its per-event span and INFO line.


class _AioPikaMessage:
    """What the kit's consumer reads of FastStream's `RabbitMessage`, over aio-pika's own."""

    __slots__ = ("raw_message",)

    def __init__(self, message: Any) -> None:
        self.raw_message = message

    @property
    def body(self) -> bytes:
        return bytes(self.raw_message.body)

    @property
    def message_id(self) -> str | None:
        return self.raw_message.message_id  # type: ignore[no-any-return]

    async def ack(self) -> None:
        await self.raw_message.ack()

    async def reject(self, requeue: bool = False) -> None:
        await self.raw_message.reject(requeue=requeue)


def _subscribe_with_aio_pika(self: Any) -> None:
    """No FastStream subscriber: once the queues are declared, aio-pika consumes them on the
    broker's connection (a channel of its own, the same prefetch) into the kit's consumer."""

    async def consume() -> None:
        channel = await self.runtime.broker._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.get_queue(self.queues.main, ensure=False)

        async def on_message(message: Any) -> None:
            await self._on_message(_AioPikaMessage(message))

        await queue.consume(on_message)

    self.runtime.on_connect.append(consume)


async def _send_with_aio_pika(self: Any, row: Any, headers: dict[str, Any]) -> None:
    """The relay's publish on the exchange FastStream declared (its channel, its publisher
    confirms), without FastStream's publish command and producer."""
    import aio_pika

    exchange = await self._broker.declare_exchange(outbox.EXCHANGE_DECL)  # cached
    await exchange.publish(aio_pika.Message(
        bytes(row["body"]), message_id=str(row["event_id"]),
        correlation_id=row["correlation_id"] or str(row["event_id"]), headers=headers,
        content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=row["routing_key"], mandatory=False, timeout=outbox.PUBLISH_TIMEOUT)


@contextlib.contextmanager
def _without_faststream_per_message() -> Iterator[None]:
    from asf_kit import consumer

    with _patched(consumer.EventConsumer, "_subscribe", _subscribe_with_aio_pika), \
            _patched(outbox.OutboxRelay, "_send", _send_with_aio_pika):
        yield


@contextlib.contextmanager
def _no_span(*_args: Any, **_kwargs: Any) -> Iterator[None]:
    yield None


@contextlib.contextmanager
def _without_per_event_observability() -> Iterator[None]:
    """No span and no `traceparent` per event (the INFO line goes with `LOG_LEVEL=WARNING`,
    the variant's setting: the WARNING of a flagging is still written; the metrics stay)."""
    from asf_kit import telemetry

    with _patched(telemetry, "span", _no_span), \
            _patched(telemetry, "current_traceparent", lambda: None):
        yield


WHAT_IFS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "consumer and relay on aio-pika, not FastStream": _without_faststream_per_message,
    "no span or INFO line per event": _without_per_event_observability,
}


@contextlib.contextmanager
def beyond(*names: str) -> Iterator[None]:
    """Run the project as one of the decisions left would have it (`WHAT_IFS`)."""
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(WHAT_IFS[name]())
        yield
