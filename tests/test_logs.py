"""Logs: JSON lines or text, the request id on each line logged during a request, echoed
in `X-Request-ID`, and never a notification's contents."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, free_port, make_settings, start_server
from tidings.api.requests import request_id_from
from tidings.config import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record of the process as JSON lines, through the handler `serve` uses."""
    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_request_id_and_the_exception() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tidings.test_json")
    logger.addHandler(logs.make_handler("json", stream))
    logger.propagate = False
    try:
        logger.warning("outside %s", "any request")
        token = logs.REQUEST_ID.set("req-1")
        try:
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logger.exception("inside")
        finally:
            logs.REQUEST_ID.reset(token)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    outside, inside = lines(stream)
    assert outside["message"] == "outside any request" and "request_id" not in outside
    assert outside["level"] == "warning" and outside["logger"] == "tidings.test_json"
    assert inside["request_id"] == "req-1"
    assert "RuntimeError: boom" in inside["exception"]


def test_text_lines_show_the_request_id_when_there_is_one() -> None:
    stream = io.StringIO()
    handler = logs.make_handler("text", stream)
    record = logging.LogRecord("tidings", logging.INFO, __file__, 1, "hello", None, None)
    handler.handle(record)
    token = logs.REQUEST_ID.set("req-2")
    try:
        handler.handle(logging.LogRecord("tidings", logging.INFO, __file__, 1, "again",
                                         None, None))
    finally:
        logs.REQUEST_ID.reset(token)
    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO tidings: hello")
    assert second.endswith("INFO tidings [req-2]: again")


def test_configure_replaces_the_root_handlers() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        stream = io.StringIO()
        settings = make_settings("sqlite+aiosqlite:///unused.db", log_format="json",
                                 log_level="info")
        logs.configure(settings)
        handler = logs.configure(settings, stream)
        assert root.handlers == [handler]
        logging.getLogger("tidings.configured").info("once")
        assert [line["message"] for line in lines(stream)] == ["once"]
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.mark.parametrize(("given", "kept"), [
    (b"abc-123", True), (b"0b1f6c2e-5c7e-4c1a-9d55-2f2b0c7a1e11", True),
    (b"has space", False), (b"x" * 129, False), (b"", False), (b"caf\xc3\xa9", False),
])
def test_only_a_sane_request_id_is_taken_from_the_request(given: bytes, kept: bool) -> None:
    chosen = request_id_from({"headers": [(b"x-request-id", given)]})
    assert (chosen == given.decode("utf-8", "replace")) is kept
    assert 1 <= len(chosen) <= 128


async def test_the_request_id_is_echoed_and_made_up_when_missing(server: RunningServer) -> None:
    async with server.http() as http:
        given = await http.get("/health", headers={"X-Request-ID": "trace-42"})
        made_up = await http.get("/health")
        other = await http.get("/health")
        refused = await http.get("/health", headers={"X-Request-ID": "a b"})
        not_found = await http.get("/nowhere", headers={"X-Request-ID": "trace-43"})
    assert given.headers["x-request-id"] == "trace-42"
    assert made_up.headers["x-request-id"] != other.headers["x-request-id"]
    assert refused.headers["x-request-id"] != "a b"
    assert not_found.status_code == 404 and not_found.headers["x-request-id"] == "trace-43"


async def test_lines_logged_during_a_request_carry_its_id(captured: io.StringIO) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    running = await start_server(make_settings(url))
    try:
        async with running.http() as http:
            ready = await http.get("/ready", headers={"X-Request-ID": "ready-probe-1"})
    finally:
        await running.stop()
    assert ready.status_code == 503
    logged = [line for line in lines(captured) if "readiness" in line["message"]]
    assert logged and all(line["request_id"] == "ready-probe-1" for line in logged)


async def break_title_column(server: RunningServer) -> None:
    """The notifications table loses its `title` column behind the service's back, so the
    next create fails inside the database with the title among its parameters. (Through
    the server's own engine: on SQLite, its one connection is the only writer.)"""
    async with server.services.db.engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE notifications RENAME COLUMN title TO gone"))


async def test_a_failing_create_logs_the_error_but_not_the_notification(
    server: RunningServer, captured: io.StringIO
) -> None:
    title = f"confidential-title-{uuid.uuid4().hex}"
    message = f"confidential-message-{uuid.uuid4().hex}"
    await break_title_column(server)
    async with server.http("svc", "service") as http:
        failed = await http.post("/api/notifications", headers={"X-Request-ID": "create-1"},
                                 json={"user_id": "a", "type": "t", "title": title,
                                       "message": message, "data": {"secret": message}})
    assert failed.status_code >= 500, failed.status_code
    logged = lines(captured)
    # The failure was logged, under the request's id...
    assert any(line.get("request_id") == "create-1" and line["level"] in ("warning", "error")
               for line in logged)
    # ...and nowhere, message or traceback, with what the producer sent.
    text = captured.getvalue()
    assert title not in text and message not in text
