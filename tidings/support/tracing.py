"""Traces (OpenTelemetry): one trace per create request, from the producer's
`traceparent` through the write, the fan-out and the queue to each provider's send and
the webhooks it raises.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set,
and then free: `Traces.off()` hands out one shared do-nothing context and answers None
for every trace parent, so the hot paths pay a method call. On, the SDK's own
`OTEL_*` variables apply (service name, headers, sampling, batch sizes); spans go out in
batches from the SDK's thread, never from the event loop.

A trace crosses the queue as its W3C `traceparent` text, stored on each delivery row: a
worker in another process, hours later, continues the producer's trace from it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_PROPAGATOR = TraceContextTextMapPropagator()
_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
# A W3C traceparent is 55 characters; longer text is not one.
MAX_TRACEPARENT = 55

__all__ = ["SpanKind", "Traces", "from_environment"]


class Traces:
    """The process's tracer, or nothing (`off()`)."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("tidings") if provider is not None else None

    @classmethod
    def off(cls) -> Traces:
        return cls(None)

    @classmethod
    def exporting_to(cls, processor: SpanProcessor, service: str = "tidings") -> Traces:
        """Spans through `processor` (a test's in-memory exporter, or the OTLP batcher)."""
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(processor)
        return cls(provider)

    @property
    def on(self) -> bool:
        return self._tracer is not None

    def span(self, name: str, *, parent: str | None = None, kind: SpanKind = SpanKind.INTERNAL,
             attributes: Mapping[str, Any] | None = None,
             start_ns: int | None = None) -> AbstractContextManager[Span | None]:
        """A span, current within the block. With `parent` (a traceparent), a child of
        that remote span, else of the current one (or a new trace). Off: nothing."""
        if self._tracer is None:
            return _NOTHING
        return self._start(name, parent, kind, attributes, start_ns)

    @contextlib.contextmanager
    def _start(self, name: str, parent: str | None, kind: SpanKind,
               attributes: Mapping[str, Any] | None,
               start_ns: int | None) -> Iterator[Span | None]:
        assert self._tracer is not None
        context = _PROPAGATOR.extract({"traceparent": parent}) if parent else None
        with self._tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=dict(attributes or {}),
            start_time=start_ns, record_exception=True, set_status_on_exception=True,
        ) as span:
            yield span

    def current(self) -> str | None:
        """The current span's traceparent (what a delivery row keeps), or None."""
        if self._tracer is None:
            return None
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        value = carrier.get("traceparent")
        return value if value and len(value) <= MAX_TRACEPARENT else None

    def record(self, name: str, *, parent: str | None, start_ns: int, end_ns: int,
               attributes: Mapping[str, Any] | None = None) -> None:
        """A span that has already happened (the time a delivery waited in the queue)."""
        if self._tracer is None:
            return
        context = _PROPAGATOR.extract({"traceparent": parent}) if parent else None
        span = self._tracer.start_span(name, context=context, start_time=start_ns,
                                       attributes=dict(attributes or {}))
        span.end(end_time=max(end_ns, start_ns))

    def shutdown(self) -> None:
        """Sends what is buffered (bounded by the SDK's export timeout)."""
        if self._provider is not None:
            self._provider.shutdown()


def failed(span: Span | None, description: str) -> None:
    """Marks a span as an error without an exception (a provider's refusal)."""
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, description[:200]))


def from_environment(environ: Mapping[str, str] | None = None,
                     exporter: SpanExporter | None = None) -> Traces:
    """On when an OTLP endpoint is configured and the SDK is not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Traces.off()
    if exporter is None:
        if not any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES):
            return Traces.off()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    service = env.get("OTEL_SERVICE_NAME", "").strip() or "tidings"
    return Traces.exporting_to(BatchSpanProcessor(exporter), service)

