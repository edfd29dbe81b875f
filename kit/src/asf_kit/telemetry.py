"""OpenTelemetry tracing: one trace from an HTTP request through the outbox and the broker
to the consumer and the email.

The trace context travels as a W3C `traceparent`: in the HTTP header, in the outbox row,
in the AMQP message header, and in whatever a consumer stores for later work.
Spans are exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and recorded only
while something listens (an exporter, a test's collector): otherwise each
span is a non-recording one that still carries the trace on, at a fraction of the cost.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

tracer = trace.get_tracer("asf_samverkan")
_W3C = TraceContextTextMapPropagator()
"""The contract is the W3C `traceparent` (in HTTP, outbox rows and AMQP headers): read and
written by its own propagator, not through the global composite one (which adds baggage
to every extract and inject)."""

__all__ = ["SpanKind", "current_traceparent", "setup", "span", "tracer"]


class _Provider(TracerProvider):
    """A tracer provider that knows whether anything listens: a span processor added."""

    listening = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.listening = True


class _WhenListened(Sampler):
    """Record every span while the provider has a listener, none otherwise. A span not
    recorded still has its ids and hands them on in `traceparent` (flagged not sampled); it
    costs no attributes, no span object, no processors. Not parent-based: a service that
    records does so whatever the flag of a hop before it that did not."""

    def __init__(self) -> None:
        self.provider: _Provider | None = None

    def should_sample(
        self, parent_context: Context | None, trace_id: int, name: str,
        kind: SpanKind | None = None, attributes: Attributes = None,
        links: Sequence[Link] | None = None, trace_state: TraceState | None = None,
    ) -> SamplingResult:
        listened = self.provider is not None and self.provider.listening
        return (ALWAYS_ON if listened else ALWAYS_OFF).should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "WhenListened"


def setup(service: str, version: str) -> None:
    """Install a tracer provider once per process (tests may have installed their own)."""
    global tracer
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        tracer = trace.get_tracer("asf_samverkan")  # the provider's own, not the proxy
        return
    sampler = _WhenListened()
    provider = _Provider(
        resource=Resource.create({"service.name": service, "service.version": version}),
        sampler=sampler,
    )
    sampler.provider = provider
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("asf_samverkan")


def current_traceparent() -> str | None:
    """The `traceparent` of the span that is current now, to carry along."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(
    name: str,
    *,
    traceparent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[Span]:
    """A span that continues the trace of `traceparent`, or the current one when None."""
    parent = _W3C.extract({"traceparent": traceparent}) if traceparent else None
    with tracer.start_as_current_span(name, context=parent, kind=kind,
                                      attributes=attributes) as s:
        yield s
