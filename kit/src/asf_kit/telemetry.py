"""OpenTelemetry tracing: one trace from an HTTP request through the outbox and the broker
to the consumer and the email.

The trace context travels as a W3C `traceparent`: in the HTTP header, in the outbox row,
in the AMQP message header, and in whatever a consumer stores for later work.
Spans are exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("asf_samverkan")
_W3C = TraceContextTextMapPropagator()
"""The contract is the W3C `traceparent` (in HTTP, outbox rows and AMQP headers): read and
written by its own propagator, not through the global composite one (which adds baggage
to every extract and inject)."""

__all__ = ["SpanKind", "current_traceparent", "setup", "span", "tracer"]


def setup(service: str, version: str) -> None:
    """Install a tracer provider once per process (tests may have installed their own)."""
    global tracer
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        tracer = trace.get_tracer("asf_samverkan")  # the provider's own, not the proxy
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": version})
    )
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
