"""Hostile clients against a real lean server: `hypothesis` generates malformed Engine.IO
and Socket.IO packets and event payloads (wrong types, huge, deeply nested, lone UTF-16
surrogates, unknown namespaces, lying binary attachment counts, invalid UTF-8, garbage
handshakes) and sends them over real WebSocket and long-polling connections.

After every example: the server answered no request with a 5xx, closed no WebSocket with
an internal-error code, logged no error, and a bystander client connected all along still
receives a notification created afterwards.

The server runs on an event loop of its own in a thread for the whole module, so that the
(synchronous) hypothesis examples can share it; each example drives its clients there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import EVENT_TIMEOUT, RunningServer, make_settings, start_server

T = TypeVar("T")
NOTE = {"type": "order", "title": "Fuzzed", "message": "still delivered"}
EVENTS = ["subscribe", "unsubscribe", "ack", "markAsRead", "updatePreferences",
          "requestMissedNotifications", "connect", "disconnect", "unknown", ""]
# Close codes a server may use for a client's fault; 1011 (internal error) is not one.
CLIENT_FAULT_CODES = {1000, 1002, 1003, 1005, 1006, 1007, 1008, 1009}
# From the profile tests/conftest.py loads (few in a developer's run, more in CI).
EXAMPLES = settings.default.max_examples
# Sent after the hostile packets: its ack (or the connection's close) shows that the
# server has handled, and answered, everything before it.
SENTINEL = '4299["unsubscribe",{"channels":["sentinel"]}]'
SENTINEL_ACK = "4399["
# Found by review before this suite existed; always among the examples.
LONE_SURROGATE = '421["subscribe",{"channels":["\\ud800"]}]'


# uvicorn logs a client's invalid UTF-8 text frame with a traceback at ERROR (and, when a
# close frame follows in the same read, fails on it and aborts the connection): the
# client's fault, handled by dropping that connection, reported upstream-worthy in
# docs/API.md ("Protocol conformance"). Nothing else may be logged at ERROR.
KNOWN_SERVER_NOISE = {"Invalid UTF-8 sequence received from client."}


class ErrorLog(logging.Handler):
    """Every ERROR the server logs: an unhandled exception anywhere shows up here."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() not in KNOWN_SERVER_NOISE:
            self.records.append(record)


@dataclass
class Harness:
    server: RunningServer
    loop: asyncio.AbstractEventLoop
    errors: ErrorLog
    bystander: ClientConnection | None = None
    statuses: list[int] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints the fixture with each failing example
        return f"Harness({self.server.url})"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)


@pytest.fixture(scope="module")
def harness(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Harness]:
    path = tmp_path_factory.mktemp("fuzz") / "tidings.db"
    shutil.copy(sqlite_template, path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    errors = ErrorLog()
    loggers = [logging.getLogger(name) for name in ("uvicorn", "tidings")]
    running = asyncio.run_coroutine_threadsafe(start_server(make_settings(
        f"sqlite+aiosqlite:///{path}", realtime_transport="lean")), loop).result(60)
    for logger in loggers:
        logger.addHandler(errors)
    harness = Harness(running, loop, errors)
    harness.bystander = harness.run(connected_ws(running, "bob"))
    try:
        yield harness
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
        harness.run(harness.bystander.close())
        harness.run(running.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- clients ------------------------------------------------------------------------------

def ws_url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


def auth(server: RunningServer, user: str) -> str:
    return "40" + json.dumps({"token": server.token(user)})


async def connected_ws(server: RunningServer, user: str) -> ClientConnection:
    ws = await ws_connect(ws_url(server), compression=None)
    assert str(await ws.recv()).startswith("0{")
    await ws.send(auth(server, user))
    assert str(await ws.recv()).startswith("40{")
    assert '"connectionStatus"' in str(await ws.recv())
    return ws


async def bystander_still_served(harness: Harness) -> None:
    """A notification created now reaches the bystander (answering pings meanwhile)."""
    assert harness.bystander is not None
    async with harness.server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, "user_id": "bob"})
    assert response.status_code == 201, response.text
    wanted = response.json()["id"]
    while True:
        message = str(await asyncio.wait_for(harness.bystander.recv(), EVENT_TIMEOUT))
        if message == "2":
            await harness.bystander.send("3")
        elif message.startswith('42["notification"'):
            if json.loads(message[2:])[1]["id"] == wanted:
                return


def assert_no_server_error(harness: Harness) -> None:
    assert all(status < 500 for status in harness.statuses), harness.statuses
    harness.statuses.clear()
    records, harness.errors.records[:] = list(harness.errors.records), []
    assert records == [], [record.getMessage() for record in records]


# -- strategies ---------------------------------------------------------------------------

# Any code point, lone surrogates included: JSON carries them as `\udXXX` escapes.
any_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=30)
json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def deep(draw: st.DrawFn) -> str:
    """A JSON text nested deeper than any parser's comfort (or just deep enough to pass)."""
    depth = draw(st.sampled_from([50, 900, 1100, 5000, 20000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return opener * depth + "1" + closer * depth


@st.composite
def huge(draw: st.DrawFn) -> str:
    size = draw(st.sampled_from([60_000, 65_530, 65_537, 70_000, 150_000]))
    return json.dumps({"channels": ["x" * size]})


def payload_json(value: Any) -> str:
    # ensure_ascii: a lone surrogate has no UTF-8 form, only the escape can carry it.
    return json.dumps(value)


payload_text = st.one_of(json_value.map(payload_json), deep(), huge(),
                         st.text(max_size=40))  # not JSON at all


@st.composite
def namespace(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", "/,", "/admin,", "/" + "n" * 300 + ",", "/x"]))


@st.composite
def socket_packet(draw: st.DrawFn) -> str:
    """One Socket.IO packet inside an Engine.IO MESSAGE, mostly well-framed, often lying."""
    kind = draw(st.sampled_from("0123456789"))
    ack = draw(st.sampled_from(["", "", "1", "007", "9" * 20, "-1"]))
    if kind in "56":  # binary: a count of attachments that never come (or is nonsense)
        count = draw(st.sampled_from(["1-", "0-", "99999999999999999999-", "-", "x-", ""]))
        body = json.dumps([draw(st.sampled_from(EVENTS)),
                           {"_placeholder": True, "num": draw(st.integers(-1, 3))}])
        return "4" + kind + count + draw(namespace()) + ack + body
    if kind == "2" and draw(st.booleans()):
        args = draw(st.lists(st.one_of(json_value.map(payload_json), deep(), huge()),
                             max_size=2))
        body = "[" + ",".join([json.dumps(draw(st.sampled_from(EVENTS))), *args]) + "]"
    else:
        body = draw(payload_text)
    return "4" + kind + draw(namespace()) + ack + body


# The fields the contract's events read, with hostile values.
hostile = st.one_of(any_text, json_value,
                    st.sampled_from(["2024-01-01T00:00:00Z", "9999-99-99T99:99", "*", ""]))
channels = st.fixed_dictionaries(
    {"channels": st.lists(any_text | any_text | hostile, min_size=1, max_size=5)})
reference = st.fixed_dictionaries({"id": hostile})
preference = st.dictionaries(
    st.sampled_from(["channel", "notification_type", "email_enabled", "push_enabled",
                     "in_app_enabled", "x"]), hostile, max_size=4)
PAYLOADS = {
    "subscribe": channels,
    "unsubscribe": channels,
    "ack": reference,
    "markAsRead": reference,
    "updatePreferences": preference | st.fixed_dictionaries(
        {"items": st.lists(preference, max_size=3)}),
    "requestMissedNotifications": st.fixed_dictionaries({"since": hostile}),
}


@st.composite
def event_packet(draw: st.DrawFn) -> str:
    """An EVENT of the contract (or not quite), with an ack id, carrying hostile data."""
    name = draw(st.sampled_from(list(PAYLOADS)) | st.sampled_from(EVENTS))
    payload = draw(PAYLOADS.get(name, json_value) | json_value)
    ack = draw(st.sampled_from(["", "1", "42"]))
    return "42" + ack + payload_json([name, payload])


engine_packet = st.one_of(
    event_packet(),
    event_packet(),
    event_packet(),
    socket_packet(),
    st.sampled_from(["", "0", "1", "2", "2probe", "3", "5", "6", "7", "b", "bAAEC", "4",
                     "40", "41", "42", "43", "44", "4/", "40/admin", "42[]"]),
    st.text(max_size=30),
    st.text(st.sampled_from('0123456["]{}:,/-\\u'), max_size=30),
)

# Raw WebSocket messages: text, binary, or a text frame whose bytes are not UTF-8.
as_text = engine_packet.map(lambda text: ("text", text))
ws_message = st.one_of(
    as_text,
    as_text,
    as_text,
    st.binary(max_size=40).map(lambda data: ("binary", data)),
    st.binary(min_size=1, max_size=20).map(lambda data: ("bad-utf8", b"42\xff\xfe" + data)),
)


# -- the properties -----------------------------------------------------------------------

async def attack_over_websocket(harness: Harness, authenticate: bool,
                                messages: list[tuple[str, Any]]) -> None:
    server = harness.server
    async with ws_connect(ws_url(server), compression=None, close_timeout=2,
                          max_size=None) as ws:
        assert str(await ws.recv()).startswith("0{")
        if authenticate:
            await ws.send(auth(server, "alice"))
        try:
            for kind, message in messages:
                if kind == "text":
                    await ws.send(message)
                elif kind == "binary":
                    await ws.send(message, text=False)
                else:
                    await ws.send(message, text=True)  # unchecked bytes in a text frame
            await ws.send(SENTINEL)
            # Read every answer (an encoding failure shows when one is sent) until the
            # sentinel's ack, or until the server closes the connection.
            while not str(await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT)).startswith(
                    SENTINEL_ACK):
                pass
        except ConnectionClosed:
            pass
    assert ws.close_code in CLIENT_FAULT_CODES | {None}, ws.close_code


async def attack_over_polling(harness: Harness, authenticate: bool,
                              bodies: list[bytes]) -> None:
    server = harness.server
    async with httpx.AsyncClient(base_url=server.url, timeout=EVENT_TIMEOUT) as http:
        opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        harness.statuses.append(opened.status_code)
        sid = json.loads(opened.text[1:])["sid"]
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        if authenticate:
            response = await http.post("/socket.io/", params=params,
                                       content=auth(server, "alice").encode())
            harness.statuses.append(response.status_code)
        for body in [*bodies, SENTINEL.encode()]:
            response = await http.post("/socket.io/", params=params, content=body)
            harness.statuses.append(response.status_code)
            assert response.status_code in (200, 400, 413), response.text
        # Everything queued for the client (the sentinel's ack last, unless the session
        # was closed) must encode: the GET answers at once, never with a 5xx.
        answer = await http.get("/socket.io/", params=params)
        harness.statuses.append(answer.status_code)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(authenticate=st.booleans(), messages=st.lists(ws_message, min_size=1, max_size=4))
@example(authenticate=True, messages=[("text", LONE_SURROGATE)])
def test_hostile_websocket_messages(harness: Harness, authenticate: bool,
                                   messages: list[tuple[str, Any]]) -> None:
    harness.run(attack_over_websocket(harness, authenticate, messages))
    harness.run(bystander_still_served(harness))
    assert_no_server_error(harness)


polling_body = st.one_of(
    st.lists(engine_packet, min_size=1, max_size=4).map(
        lambda packets: "\x1e".join(packets).encode()),
    st.binary(max_size=60),
)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(authenticate=st.booleans(), bodies=st.lists(polling_body, min_size=1, max_size=3))
@example(authenticate=True, bodies=[LONE_SURROGATE.encode()])
def test_hostile_polling_posts(harness: Harness, authenticate: bool,
                               bodies: list[bytes]) -> None:
    harness.run(attack_over_polling(harness, authenticate, bodies))
    harness.run(bystander_still_served(harness))
    assert_no_server_error(harness)


query_value = st.one_of(st.sampled_from(["4", "3", "polling", "websocket", "", "x" * 500]),
                        st.text(max_size=20))


async def odd_handshake(harness: Harness, method: str, params: dict[str, str],
                        headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=harness.server.url, timeout=EVENT_TIMEOUT) as http:
        response = await http.request(method, "/socket.io/", params=params, headers=headers)
    harness.statuses.append(response.status_code)


header_value = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                       max_size=40)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "DELETE"]),
       params=st.dictionaries(st.sampled_from(["EIO", "transport", "sid", "t", "j", "b64"]),
                              query_value, max_size=4),
       headers=st.dictionaries(st.sampled_from(["Origin", "X-Forwarded-Host", "Host",
                                                "X-Forwarded-Proto", "Content-Length",
                                                "Access-Control-Request-Headers"]),
                               header_value, max_size=3))
def test_odd_handshakes_are_answered_without_server_errors(
    harness: Harness, method: str, params: dict[str, str], headers: dict[str, str]
) -> None:
    headers.pop("Content-Length", None)  # httpx frames the body itself
    harness.run(odd_handshake(harness, method, params, headers))
    assert_no_server_error(harness)
