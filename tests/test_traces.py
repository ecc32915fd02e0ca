"""Traces from producer to provider: a create with the producer's `traceparent` is one
trace through the write, the fan-out, the queue and the send to a real SMTP server, and
out on the webhook the send raises (whose POST carries the trace on); a bulk create is
one trace; and with no OTLP endpoint tracing is off and leaves nothing behind. The spans
go to the SDK's in-memory exporter, an in-process collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.fakes.web import Reply, ScriptedHTTP, http_server
from tidings.store.tables import notification_deliveries
from tidings.support.tracing import Traces, from_environment

pytestmark = pytest.mark.both_databases

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PRODUCER_SPAN}-01"
NOTE = {"type": "invoice", "title": "Invoice ready", "message": "Pay soon",
        "media": ["email"]}


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[ScriptedHTTP, str]]:
    script = ScriptedHTTP(default=Reply(204))
    async with http_server(script) as base:
        yield script, f"{base}/hooks"


async def _server(database_url: str, port: int,
                  traces: Traces | None) -> RunningServer:
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port,
                             smtp_starttls=False, email_from="tidings@example.test",
                             allow_private_targets=True)
    return await start_server(settings, traces)


async def _prepare(server: RunningServer, hook_url: str) -> None:
    async with server.http("ops", "admin") as ops:
        hook = await ops.post("/api/admin/webhooks",
                              json={"url": hook_url, "events": ["delivery.sent"]})
        assert hook.status_code == 201, hook.text
        contact = await ops.put("/api/users/alice/contact",
                                json={"email": "alice@example.test"})
        assert contact.status_code == 200, contact.text


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_one_trace_from_the_producer_to_smtp_and_the_webhook(
        database_url: str, smtp: tuple[ScriptedHandler, int],
        receiver: tuple[ScriptedHTTP, str]) -> None:
    handler, port = smtp
    hooks, hook_url = receiver
    exporter = InMemorySpanExporter()
    server = await _server(database_url, port, Traces.exporting_to(SimpleSpanProcessor(exporter)))
    try:
        await _prepare(server, hook_url)
        async with server.http("billing", "service") as http:
            created = await http.post("/api/notifications", headers={"traceparent": TRACEPARENT},
                                      json={**NOTE, "user_id": "alice",
                                            "media": ["in_app", "email"]})
        assert created.status_code == 201, created.text
        await asyncio.wait_for(handler.arrived.wait(), 10)
        await _until(lambda: bool(hooks.requests), "the delivery.sent webhook")
        await _until(lambda: len(_named(list(exporter.get_finished_spans()),
                                        "tidings.send")) >= 2, "both sends' spans")
        async with server.services.db.begin() as conn:
            stored = (await conn.execute(sa.select(notification_deliveries.c.trace_parent)))
            parents = {row.trace_parent for row in stored}
    finally:
        await server.stop()

    spans = [s for s in exporter.get_finished_spans() if _hex(s.context.trace_id, 32) == TRACE_ID]
    create = _named(spans, "POST /api/notifications")
    assert len(create) == 1 and create[0].kind is SpanKind.SERVER
    assert create[0].parent is not None and create[0].parent.is_remote
    assert _hex(create[0].parent.span_id, 16) == PRODUCER_SPAN
    assert create[0].attributes is not None
    assert create[0].attributes["http.response.status_code"] == 201
    create_id = create[0].context.span_id
    for name in ("tidings.store", "tidings.fanout", "tidings.queue"):
        found = _named(spans, name)
        assert found, f"no {name} span in the producer's trace"
        assert all(s.parent is not None and s.parent.span_id == create_id for s in found)
    sends = {s.attributes["tidings.medium"]: s for s in _named(spans, "tidings.send")
             if s.attributes}
    assert set(sends) == {"email", "webhook"}
    assert sends["email"].attributes is not None
    assert sends["email"].attributes["tidings.status"] == "sent"
    # The webhook's POST carries the trace on, from its own send's span.
    sent_with = hooks.requests[0].headers.get("traceparent", "")
    assert sent_with == f"00-{TRACE_ID}-{_hex(sends['webhook'].context.span_id, 16)}-01"
    # Each row keeps the create's context (the email's) or the raising send's trace.
    assert parents and all(p is not None and TRACE_ID in p for p in parents)
    # The provider's request does not carry it (SMTP has no place for it anyway; the
    # message's headers stay the notification's own).
    assert "traceparent" not in handler.received[0].message


async def test_a_bulk_create_is_one_trace(database_url: str,
                                          smtp: tuple[ScriptedHandler, int]) -> None:
    _, port = smtp
    exporter = InMemorySpanExporter()
    server = await _server(database_url, port, Traces.exporting_to(SimpleSpanProcessor(exporter)))
    try:
        async with server.http("billing", "service") as http:
            answer = await http.post("/api/notifications/batch",
                                     headers={"traceparent": TRACEPARENT},
                                     json={"items": [{**NOTE, "media": ["in_app"],
                                                      "user_id": user}
                                                     for user in ("a", "b", "c")]})
        assert answer.status_code == 200, answer.text
        async with server.services.db.begin() as conn:
            rows = await conn.execute(sa.select(notification_deliveries.c.trace_parent))
            parents = [row.trace_parent for row in rows]
    finally:
        await server.stop()
    batch = _named(list(exporter.get_finished_spans()), "POST /api/notifications/batch")
    assert len(batch) == 1 and _hex(batch[0].context.trace_id, 32) == TRACE_ID
    assert len(parents) == 3 and len(set(parents)) == 1
    assert parents[0] == f"00-{TRACE_ID}-{_hex(batch[0].context.span_id, 16)}-01"


async def test_a_bad_traceparent_starts_a_new_trace(database_url: str,
                                                    smtp: tuple[ScriptedHandler, int]) -> None:
    _, port = smtp
    exporter = InMemorySpanExporter()
    server = await _server(database_url, port, Traces.exporting_to(SimpleSpanProcessor(exporter)))
    try:
        async with server.http("billing", "service") as http:
            answer = await http.post("/api/notifications",
                                     headers={"traceparent": "00-zz-not-a-trace"},
                                     json={**NOTE, "media": ["in_app"], "user_id": "bob"})
            refused = await http.post("/api/notifications", json={"title": ""})
    finally:
        await server.stop()
    assert answer.status_code == 201 and refused.status_code == 422
    create = _named(list(exporter.get_finished_spans()), "POST /api/notifications")
    assert len(create) == 2
    assert create[0].parent is None
    assert create[1].attributes is not None
    assert create[1].attributes["http.response.status_code"] == 422


async def test_without_an_endpoint_tracing_is_off_and_stores_nothing(
        database_url: str, smtp: tuple[ScriptedHandler, int],
        receiver: tuple[ScriptedHTTP, str]) -> None:
    handler, port = smtp
    hooks, hook_url = receiver
    server = await _server(database_url, port, None)  # this environment sets no OTEL_*
    try:
        assert not server.services.core.traces.on
        await _prepare(server, hook_url)
        async with server.http("billing", "service") as http:
            created = await http.post("/api/notifications", headers={"traceparent": TRACEPARENT},
                                      json={**NOTE, "user_id": "alice"})
        assert created.status_code == 201
        await asyncio.wait_for(handler.arrived.wait(), 10)
        await _until(lambda: bool(hooks.requests), "the delivery.sent webhook")
        async with server.services.db.begin() as conn:
            rows = await conn.execute(sa.select(notification_deliveries.c.trace_parent))
            assert {row.trace_parent for row in rows} == {None}
    finally:
        await server.stop()
    assert "traceparent" not in hooks.requests[0].headers


@pytest.mark.parametrize(("environ", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
     False),
])
def test_tracing_follows_the_standard_variables(environ: dict[str, str], on: bool) -> None:
    traces = from_environment(environ)
    try:
        assert traces.on is on
        if not on:
            assert traces.current() is None
            with traces.span("x") as span:
                assert span is None
    finally:
        traces.shutdown()  # nothing was recorded: nothing is sent


def test_the_service_name_comes_from_the_environment() -> None:
    exporter = InMemorySpanExporter()
    traces = from_environment({"OTEL_SERVICE_NAME": "notify-eu"}, exporter=exporter)
    with traces.span("x"):
        pass
    traces.shutdown()
    spans: Any = exporter.get_finished_spans()
    assert spans[0].resource.attributes["service.name"] == "notify-eu"
