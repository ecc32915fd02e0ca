"""The lean Socket.IO transport (`tidings/realtime/lean/`), spoken to on the wire: raw
Engine.IO long-polling with httpx, raw WebSockets with `websockets`, against a real server
with `realtime_transport="lean"`. The contract as clients see it is tested by the rest of
the suite (run it with TIDINGS_TEST_TRANSPORT=lean); this file pins the protocol details."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import EVENT_TIMEOUT, RunningServer, make_settings, start_server
from tidings.config.settings import Settings
from tidings.container import make_transport
from tidings.domain.notification import Notification
from tidings.realtime.lean import packets
from tidings.realtime.lean import server as lean_server
from tidings.realtime.lean import session as lean_session
from tidings.realtime.lean.heartbeat import Heartbeat
from tidings.realtime.lean.packets import ProtocolError, parse_socket_packet
from tidings.realtime.lean.rooms import Rooms
from tidings.realtime.lean.session import Session
from tidings.realtime.sio_transport import PythonSocketIOTransport
from tidings.support import http_body

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the protocol does not depend on the database."""
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, realtime_transport="lean")


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=EVENT_TIMEOUT) as client:
        yield client


# -- raw Engine.IO helpers ----------------------------------------------------------------

def query(**extra: str) -> dict[str, str]:
    return {"EIO": "4", "transport": "polling", **extra}


async def handshake(http: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    response = await http.get("/socket.io/", params=query(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.text.startswith("0")
    opened: dict[str, Any] = json.loads(response.text[1:])
    return opened


async def get(http: httpx.AsyncClient, sid: str) -> list[str]:
    response = await http.get("/socket.io/", params=query(sid=sid))
    assert response.status_code == 200, response.text
    return response.text.split("\x1e")


async def post(http: httpx.AsyncClient, sid: str, *items: str) -> httpx.Response:
    return await http.post("/socket.io/", params=query(sid=sid),
                           content="\x1e".join(items).encode())


def auth(server: RunningServer, user: str = "alice") -> str:
    return "40" + json.dumps({"token": server.token(user)})


async def connected_polling(server: RunningServer, http: httpx.AsyncClient,
                            user: str = "alice") -> str:
    """A polling session with namespace `/` connected and its greeting read."""
    sid = (await handshake(http))["sid"]
    assert (await post(http, sid, auth(server, user))).text == "ok"
    answer = await get(http, sid)
    assert answer[0].startswith("40{") and answer[1].startswith('42["connectionStatus"')
    return str(sid)


def ws_url(server: RunningServer, **extra: str) -> str:
    params = "&".join(f"{key}={value}" for key, value in
                      {"EIO": "4", "transport": "websocket", **extra}.items())
    return server.url.replace("http://", "ws://") + "/socket.io/?" + params


async def recv(ws: ClientConnection) -> str:
    message = await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT)
    assert isinstance(message, str)
    return message


async def closed(ws: ClientConnection) -> bool:
    """True once the server has closed the connection (reading what it sent before)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT)
    except ConnectionClosed:
        return True


async def connected_ws(server: RunningServer, user: str = "alice") -> ClientConnection:
    ws = await ws_connect(ws_url(server), compression=None)
    assert (await recv(ws)).startswith("0{")
    await ws.send(auth(server, user))
    assert (await recv(ws)).startswith("40{")
    assert json.loads((await recv(ws))[2:]) == [
        "connectionStatus", {"status": "connected", "user_id": user}]
    return ws


async def create(server: RunningServer, user: str) -> dict[str, Any]:
    async with server.http("orders-svc", "service") as client:
        response = await client.post("/api/notifications", json={**NOTE, "user_id": user})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def gauge_settles(server: RunningServer, value: float) -> bool:
    for _ in range(250):
        if server.metric("tidings_connections") == value:
            return True
        await asyncio.sleep(0.02)
    return False


# -- the transport is chosen by the settings ---------------------------------------------

def test_the_setting_picks_the_transport(settings: Settings) -> None:
    assert isinstance(make_transport(settings), lean_server.LeanTransport)
    reference = settings.model_copy(update={"realtime_transport": "python-socketio"})
    assert isinstance(make_transport(reference), PythonSocketIOTransport)


# -- long-polling -------------------------------------------------------------------------

async def test_polling_handshake_announces_the_session(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    opened = await handshake(http)
    assert set(opened) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert opened["upgrades"] == ["websocket"]
    assert opened["pingInterval"] == 25000 and opened["pingTimeout"] == 20000
    assert opened["maxPayload"] == server.settings.max_event_bytes


async def test_polling_connect_greeting_and_ack_framing(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = (await handshake(http))["sid"]
    response = await post(http, sid, auth(server))
    assert response.status_code == 200 and response.text == "ok"
    assert response.headers["content-type"].startswith("text/plain")
    connect, greeting = await get(http, sid)
    assert set(json.loads(connect[2:])) == {"sid"} and connect.startswith("40")
    assert greeting == '42["connectionStatus",{"status":"connected","user_id":"alice"}]'
    # Two packets in one POST, one with an ack id: handled in order, answered in one GET.
    await post(http, sid, '427["subscribe",{"channels":["orders"]}]',
               '42["markAsRead",{"id":"nope"}]')
    ack, error = await get(http, sid)
    assert ack == '437[{"ok":true,"subscribed":["orders"],"denied":[]}]'
    assert error.startswith('42["error",')


async def test_events_reach_a_waiting_long_poll(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    waiting = asyncio.ensure_future(get(http, sid))
    note = await create(server, "alice")
    (event,) = await waiting
    assert event.startswith("42") and json.loads(event[2:]) == ["notification", note]


async def test_unicode_is_sent_unescaped(server: RunningServer, http: httpx.AsyncClient) -> None:
    sid = await connected_polling(server, http)
    transport = lean_transport(server)
    sent = await transport.send([*transport.members("user:alice"), "gone"], "hello",
                                {"text": "héllo ☃"})
    assert sent == 1
    assert await get(http, sid) == ['42["hello",{"text":"héllo ☃"}]']


async def test_a_creates_event_carries_its_answers_json_written_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = await connected_ws(server, "zoë")
    calls = 0
    to_json = Notification.to_json

    def counted(self: Notification) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return to_json(self)

    monkeypatch.setattr(Notification, "to_json", counted)
    async with server.http("orders-svc", "service") as client:
        response = await client.post("/api/notifications", json={
            **NOTE, "user_id": "zoë", "data": {"€": [1.5, 1e-7, "☃"]}})
    assert response.status_code == 201
    # The answer's very bytes, spliced into the frame; the notification written once.
    assert await recv(ws) == '42["notification",' + response.content.decode() + "]"
    assert calls == 1
    await ws.close()


def lean_transport(server: RunningServer) -> lean_server.LeanTransport:
    transport = server.services.gateway.transport
    assert isinstance(transport, lean_server.LeanTransport)
    return transport


async def test_unknown_sid_is_refused(server: RunningServer, http: httpx.AsyncClient) -> None:
    for method in ("GET", "POST"):
        response = await http.request(method, "/socket.io/", params=query(sid="nope"))
        assert response.status_code == 400
        assert response.json() == {"code": 1, "message": "Session ID unknown"}


@pytest.mark.parametrize("params", [
    {"EIO": "3", "transport": "polling"},
    {"transport": "polling"},
    {"EIO": "4", "transport": "flash"},
    {"EIO": "4", "transport": "websocket"},  # a plain HTTP request cannot be one
])
async def test_bad_handshakes_are_refused(
    server: RunningServer, http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await http.get("/socket.io/", params=params)
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message"}


async def test_post_without_sid_and_other_methods_are_refused(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    assert (await http.post("/socket.io/", params=query(), content=b"40")).status_code == 400
    assert (await http.put("/socket.io/", params=query())).status_code == 400


async def test_a_second_concurrent_get_closes_the_session(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    first = asyncio.ensure_future(get(http, sid))
    session = lean_transport(server).engine.sessions[sid]
    for _ in range(250):  # until the first GET waits on the server
        if session.waiter is not None:
            break
        await asyncio.sleep(0.02)
    second = await http.get("/socket.io/", params=query(sid=sid))
    assert second.status_code == 400
    assert await asyncio.wait_for(first, EVENT_TIMEOUT) == ["1"]  # the session's close
    assert (await http.get("/socket.io/", params=query(sid=sid))).status_code == 400
    assert await gauge_settles(server, 0)


async def test_oversized_post_is_refused_and_closes_the_session(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    body = '42["ack",{"id":"' + "x" * server.settings.max_event_bytes + '"}]'
    response = await post(http, sid, body)
    assert response.status_code == 413
    assert (await http.get("/socket.io/", params=query(sid=sid))).status_code == 400


async def test_oversized_chunked_post_is_refused(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = (await handshake(http))["sid"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"4" * server.settings.max_event_bytes

    response = await http.post("/socket.io/", params=query(sid=sid), content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize("bad", [
    "b4AAEC",  # a base64 binary packet
    '45-["upload",{"_placeholder":true,"num":0}]',  # Socket.IO BINARY_EVENT
    "42{not json",
    '42[1,"a"]',
    "49",
    "4",
    "0",
    "",
    "41/admin,",  # DISCONNECT from a namespace never connected
])
async def test_malformed_packets_close_only_that_session(
    server: RunningServer, http: httpx.AsyncClient, bad: str
) -> None:
    victim = await connected_polling(server, http, "alice")
    bystander = await connected_polling(server, http, "bob")
    assert (await post(http, victim, bad)).status_code == 400
    assert (await http.get("/socket.io/", params=query(sid=victim))).status_code == 400
    waiting = asyncio.ensure_future(get(http, bystander))
    note = await create(server, "bob")
    assert json.loads((await waiting)[0][2:]) == ["notification", note]


async def test_invalid_utf8_closes_the_session(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = (await handshake(http))["sid"]
    response = await http.post("/socket.io/", params=query(sid=sid), content=b"42\xff\xfe")
    assert response.status_code == 400


async def test_an_event_before_connect_closes_the_session(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = (await handshake(http))["sid"]
    assert (await post(http, sid, '42["subscribe",{"channels":["a"]}]')).status_code == 400
    assert (await http.get("/socket.io/", params=query(sid=sid))).status_code == 400


async def test_other_namespaces_are_invalid_and_the_session_stays(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = (await handshake(http))["sid"]
    await post(http, sid, '40/admin,{"token":"x"}')
    assert await get(http, sid) == ['44/admin,{"message":"Invalid namespace"}']
    await post(http, sid, auth(server))
    assert (await get(http, sid))[0].startswith("40{")


async def test_refused_connect_answers_connect_error(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = (await handshake(http))["sid"]
    await post(http, sid, '40{"token":"garbage"}')
    assert await get(http, sid) == ['44{"message":"Authentication failed"}']
    # The session may try again; a second CONNECT after success is a protocol error.
    await post(http, sid, auth(server))
    assert (await get(http, sid))[0].startswith("40{")
    assert (await post(http, sid, auth(server))).status_code == 400


async def test_disconnect_then_close_by_the_client(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    assert await gauge_settles(server, 1)
    await post(http, sid, "41")
    assert await gauge_settles(server, 0)
    assert lean_transport(server).members("user:alice") == []
    await post(http, sid, "1")
    assert (await http.get("/socket.io/", params=query(sid=sid))).status_code == 400


async def test_ack_from_client_noop_and_unsolicited_pong_are_ignored(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    assert (await post(http, sid, "430[]", "6", "3")).text == "ok"
    await post(http, sid, '421["subscribe",{"channels":["x"]}]')
    assert (await get(http, sid))[0].startswith("431[")


# -- WebSocket ----------------------------------------------------------------------------

async def test_websocket_opened_directly(server: RunningServer) -> None:
    async with ws_connect(ws_url(server), compression=None) as ws:
        opened = json.loads((await recv(ws))[1:])
        assert opened["upgrades"] == []
        await ws.send(auth(server))
        assert (await recv(ws)).startswith("40{")
        await recv(ws)  # connectionStatus
        await ws.send('425["subscribe",{"channels":["orders"]}]')
        assert await recv(ws) == '435[{"ok":true,"subscribed":["orders"],"denied":[]}]'
        note = await create(server, "alice")
        assert json.loads((await recv(ws))[2:]) == ["notification", note]


async def test_probe_and_upgrade_from_polling(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    pending = asyncio.ensure_future(get(http, sid))
    async with ws_connect(ws_url(server, sid=sid), compression=None) as ws:
        await ws.send("2probe")
        assert await recv(ws) == "3probe"
        assert await asyncio.wait_for(pending, EVENT_TIMEOUT) == ["6"]
        # Sent between probe and upgrade: held, then delivered over the WebSocket.
        early = await create(server, "alice")
        assert await get(http, sid) == ["6"]
        await ws.send("5")
        assert json.loads((await recv(ws))[2:]) == ["notification", early]
        late = await create(server, "alice")
        assert json.loads((await recv(ws))[2:]) == ["notification", late]
        # Polling is over for this session; a second upgrade too.
        assert (await http.get("/socket.io/", params=query(sid=sid))).status_code == 400
        assert (await post(http, sid, "3")).status_code == 400
        with pytest.raises(InvalidStatus):
            await ws_connect(ws_url(server, sid=sid))
    assert await gauge_settles(server, 0)


async def test_failed_probe_leaves_the_session_on_polling(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    async with ws_connect(ws_url(server, sid=sid), compression=None) as ws:
        await ws.send("5")  # an upgrade without the probe
        assert await closed(ws)
    waiting = asyncio.ensure_future(get(http, sid))
    note = await create(server, "alice")
    assert json.loads((await waiting)[0][2:]) == ["notification", note]


async def test_upgrade_abandoned_after_the_probe_stays_on_polling(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    async with ws_connect(ws_url(server, sid=sid), compression=None) as ws:
        await ws.send("2probe")
        assert await recv(ws) == "3probe"
    waiting = asyncio.ensure_future(get(http, sid))
    note = await create(server, "alice")
    assert json.loads((await waiting)[0][2:]) == ["notification", note]


async def test_websocket_with_unknown_sid_is_refused(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await ws_connect(ws_url(server, sid="nope"))
    assert refused.value.response.status_code == 400
    with pytest.raises(InvalidStatus):
        await ws_connect(ws_url(server, EIO="3"))


@pytest.mark.parametrize("frame", [b"\x04binary", "x" * 70_000, "2", "5", "45[]"])
async def test_bad_websocket_messages_close_only_that_connection(
    server: RunningServer, frame: str | bytes
) -> None:
    victim = await connected_ws(server, "alice")
    async with await connected_ws(server, "bob") as bystander:
        await victim.send(frame)
        assert await closed(victim)
        note = await create(server, "bob")
        assert json.loads((await recv(bystander))[2:]) == ["notification", note]
    assert await gauge_settles(server, 0)


async def test_client_close_packet_over_websocket(server: RunningServer) -> None:
    ws = await connected_ws(server)
    await ws.send("1")
    assert await closed(ws)
    assert await gauge_settles(server, 0)


# -- heartbeat ----------------------------------------------------------------------------

@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_server, "PING_INTERVAL", 0.2)
    monkeypatch.setattr(lean_server, "PING_TIMEOUT", 0.3)


async def test_silent_polling_client_is_closed_after_ping_timeout(
    fast_heartbeat: None, server: RunningServer, http: httpx.AsyncClient
) -> None:
    opened = await handshake(http)
    assert opened["pingInterval"] == 200 and opened["pingTimeout"] == 300
    sid = opened["sid"]
    await post(http, sid, auth(server))
    await get(http, sid)
    assert await get(http, sid) == ["2"]
    assert await get(http, sid) == ["1"]  # no pong: closed
    assert await gauge_settles(server, 0)


async def test_answering_pings_keeps_the_connection(
    fast_heartbeat: None, server: RunningServer
) -> None:
    quiet = await ws_connect(ws_url(server), compression=None)
    async with await connected_ws(server) as ws:
        for _ in range(4):  # 4 intervals: more than interval + timeout
            assert await recv(ws) == "2"
            await ws.send("3")
        assert await closed(quiet)  # the one that never answered is gone
        await ws.send('421["subscribe",{"channels":["a"]}]')
        answer = await recv(ws)
        while answer == "2":  # a ping may come first: answer it and read on
            await ws.send("3")
            answer = await recv(ws)
        assert answer.startswith("431[")


# -- CORS ---------------------------------------------------------------------------------

async def test_default_cors_allows_only_the_same_origin(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    own = server.url
    response = await http.get("/socket.io/", params=query(), headers={"Origin": own})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == own
    assert response.headers["access-control-allow-credentials"] == "true"
    evil = await http.get("/socket.io/", params=query(), headers={"Origin": "http://evil.example"})
    assert evil.status_code == 400
    with pytest.raises(InvalidStatus) as refused:
        await ws_connect(ws_url(server), origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 400
    async with ws_connect(ws_url(server), origin=own) as ws:  # type: ignore[arg-type]
        assert (await recv(ws)).startswith("0{")


FORWARDED = {"Origin": "https://tidings.example", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "tidings.example"}


async def test_forwarded_host_is_ignored_from_a_client_that_is_no_proxy(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    forwarded = await http.get("/socket.io/", params=query(), headers=FORWARDED)
    assert forwarded.status_code == 400
    with pytest.raises(InvalidStatus):
        await ws_connect(ws_url(server), origin="https://tidings.example",  # type: ignore[arg-type]
                         additional_headers={"X-Forwarded-Host": "tidings.example",
                                             "X-Forwarded-Proto": "https"})


async def test_forwarded_host_counts_from_a_trusted_proxy(database_url: str) -> None:
    running = await start_server(make_settings(
        database_url, realtime_transport="lean", trusted_proxies=["127.0.0.0/8"]))
    try:
        async with httpx.AsyncClient(base_url=running.url) as http:
            forwarded = await http.get("/socket.io/", params=query(), headers=FORWARDED)
            assert forwarded.status_code == 200
            assert forwarded.headers["access-control-allow-origin"] == "https://tidings.example"
            other = await http.get("/socket.io/", params=query(), headers={
                **FORWARDED, "Origin": "https://evil.example"})
            assert other.status_code == 400
    finally:
        await running.stop()


def test_a_trusted_proxy_must_be_an_address_or_network(settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"proxy\.example"):
        lean_server.LeanTransport(settings.model_copy(
            update={"trusted_proxies": ["proxy.example"]}))


async def test_listed_origins_and_preflight(database_url: str) -> None:
    running = await start_server(make_settings(
        database_url, realtime_transport="lean", cors_origins=["https://app.example"]))
    try:
        async with httpx.AsyncClient(base_url=running.url) as http:
            ok = await http.get("/socket.io/", params=query(),
                                headers={"Origin": "https://app.example"})
            assert ok.status_code == 200
            assert ok.headers["access-control-allow-origin"] == "https://app.example"
            same = await http.get("/socket.io/", params=query(), headers={"Origin": running.url})
            assert same.status_code == 400  # a list replaces the same-origin default
            preflight = await http.options("/socket.io/", params=query(), headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Headers": "content-type"})
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-methods"] == "OPTIONS, GET, POST"
            assert preflight.headers["access-control-allow-headers"] == "content-type"
            assert preflight.headers["access-control-allow-credentials"] == "true"
    finally:
        await running.stop()


async def test_star_allows_any_origin(database_url: str) -> None:
    running = await start_server(make_settings(
        database_url, realtime_transport="lean", cors_origins=["*"]))
    try:
        async with httpx.AsyncClient(base_url=running.url) as http:
            response = await http.get("/socket.io/", params=query(),
                                      headers={"Origin": "http://anywhere.example"})
            assert response.status_code == 200
            # The wildcard itself, never an echoed origin with credentials allowed.
            assert response.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in response.headers
            # The HTTP API (Starlette's CORS, credentials off: bearer tokens need none).
            api = await http.get("/health", headers={"Origin": "http://anywhere.example"})
            assert api.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in api.headers
    finally:
        await running.stop()


# -- units: framing, rooms, back-pressure -------------------------------------------------

@pytest.mark.parametrize(("text", "kind", "namespace", "ack_id", "data"), [
    ("0", "0", "/", None, None),
    ('0{"token":"t"}', "0", "/", None, {"token": "t"}),
    ("0/admin,", "0", "/admin", None, None),
    ("0/admin", "0", "/admin", None, None),
    ('2["a",1]', "2", "/", None, ["a", 1]),
    ('212["a"]', "2", "/", 12, ["a"]),
    ('2/chat,3["a"]', "2", "/chat", 3, ["a"]),
    ("1", "1", "/", None, None),
    ("30[]", "3", "/", 0, []),
])
def test_socket_packets_parse(text: str, kind: str, namespace: str, ack_id: int | None,
                              data: Any) -> None:
    packet = parse_socket_packet(text)
    assert (packet.kind, packet.namespace, packet.ack_id, packet.data) == (
        kind, namespace, ack_id, data)


@pytest.mark.parametrize("text", ["", "5[]", "6[]", "9", "2{", "2[]", "2[1]", '2"a"',
                                  "2" + "1" * 40 + '["a"]', "2²[\"a\"]", "2" + "[" * 100_000])
def test_malformed_socket_packets_are_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_socket_packet(text)


def test_packets_are_framed_compactly() -> None:
    assert packets.event("n", {"a": [1, "é"]}) == '42["n",{"a":[1,"é"]}]'
    assert packets.ack(3, None) == "433[]"
    assert packets.ack(3, {"ok": True}) == '433[{"ok":true}]'
    assert packets.connect_error("no") == '44{"message":"no"}'


def test_rooms_track_both_directions() -> None:
    rooms = Rooms()
    rooms.join("s1", "user:a")
    rooms.join("s1", "user:a")
    rooms.join("s1", "channel:x")
    rooms.join("s2", "user:a")
    assert sorted(rooms.members("user:a")) == ["s1", "s2"]
    assert rooms.rooms_of("s1") == ("user:a", "channel:x")
    rooms.leave_all("s1")
    assert rooms.members("user:a") == ["s2"] and rooms.members("channel:x") == []
    assert len(rooms) == 1
    rooms.leave_all("s2")
    rooms.leave_all("s2")
    assert len(rooms) == 0


class SlowSocket:
    """An ASGI WebSocket `send` whose write buffer is full until `drain()`, like uvicorn's
    when the peer does not read."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.sent: list[Message] = []
        self.gone = False

    async def send(self, message: Message) -> None:
        await self.writable.wait()
        if self.gone:
            raise OSError("client disconnected")
        self.sent.append(message)

    def texts(self) -> list[str]:
        return [message["text"] for message in self.sent if "text" in message]


async def test_websocket_sends_never_wait_and_keep_their_order() -> None:
    socket = SlowSocket()
    session = Session("s")
    session.use_websocket(socket.send)
    assert session.push("a") and socket.texts() == ["a"]  # written at once, no task
    assert session.drainer is None
    socket.writable.clear()
    assert session.push("b") and session.drainer is not None  # blocked: one task finishes it
    assert session.push("c") and session.push("d")  # queued behind it
    socket.writable.set()
    while session.drainer is not None:  # each blocked send gets one task, in turn
        await session.drainer
    assert session.buffer == []
    assert socket.texts() == ["a", "b", "c", "d"]


async def test_a_client_that_does_not_read_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lean_session, "MAX_BUFFERED", 10)
    socket = SlowSocket()
    session = Session("s")
    session.use_websocket(socket.send)
    socket.writable.clear()
    assert session.push("first")
    assert session.push("12345")
    assert not session.push("123456")  # over the bound: the owner closes the session
    session.end(notify=True)
    assert session.drainer is not None  # the close itself waits for the buffer
    socket.gone = True
    socket.writable.set()
    await session.drainer
    assert socket.texts() == []  # nothing more is written to a dropped client
    assert not session.push("late")


async def test_polling_buffer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_session, "MAX_BUFFERED", 4)
    session = Session("s")
    assert session.push("1234")
    assert not session.push("5")
    assert session.take() == ["1234"] and session.push("5")


async def test_sends_that_suspend_otherwise_still_finish_in_order() -> None:
    sent: list[str] = []

    async def yielding_send(message: Message) -> None:
        await asyncio.sleep(0)  # a bare yield, not a future
        sent.append(message["text"])

    session = Session("s")
    session.push("opened")  # buffered while on polling
    session.push("queued")
    session.use_websocket(yielding_send)  # the first blocks, the second waits behind it
    assert session.drainer is not None and session.buffer == ["queued"]
    session.push("later")
    while session.drainer is not None:  # each blocked send gets one task, in turn
        await session.drainer
    assert session.buffer == []
    assert sent == ["opened", "queued", "later"]


async def test_a_send_that_is_not_a_coroutine_is_awaited_in_a_task() -> None:
    sent: list[Message] = []

    def future_send(message: Message) -> asyncio.Future[None]:
        sent.append(message)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    task = lean_session.send_without_waiting(future_send, {"type": "websocket.send",
                                                            "text": "x"})
    assert task is not None
    await task
    assert sent == [{"type": "websocket.send", "text": "x"}]


async def test_a_session_that_lags_is_closed_by_the_next_send(
    server: RunningServer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = await connected_polling(server, http)
    monkeypatch.setattr(lean_session, "MAX_BUFFERED", 200)
    transport = lean_transport(server)
    assert await transport.send(["nobody"], "big", {}) == 0
    assert await transport.send(transport.members("user:alice"), "big", {"x": "y" * 300}) == 0
    assert (await http.get("/socket.io/", params=query(sid=sid))).status_code == 400
    assert await gauge_settles(server, 0)


async def test_a_failing_connect_handler_refuses_only_that_socket(
    server: RunningServer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(token: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(server.services.tokens, "verify", broken)
    sid = (await handshake(http))["sid"]
    await post(http, sid, auth(server))
    assert await get(http, sid) == ['44{"message":"Internal server error"}']


async def test_a_failing_event_handler_leaves_the_connection_up(
    server: RunningServer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = await connected_polling(server, http)
    transport = lean_transport(server)
    handler = transport._on_event

    async def broken(socket_sid: str, event: str, args: list[Any]) -> Any:
        if event == "boom":
            raise RuntimeError("bug")
        return await handler(socket_sid, event, args)

    monkeypatch.setattr(transport, "_on_event", broken)
    assert (await post(http, sid, '421["boom",{}]', '422["subscribe",{"channels":["a"]}]')
            ).text == "ok"
    (answer,) = await get(http, sid)
    assert answer.startswith("432[")  # no ack for the failed one, the next one answered


async def test_a_client_leaving_during_connect_is_reported_once(
    server: RunningServer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = lean_transport(server)
    handler = transport._on_connect
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(socket_sid: str, data: Any) -> None:
        entered.set()
        await release.wait()
        await handler(socket_sid, data)

    monkeypatch.setattr(transport, "_on_connect", slow)
    sid = (await handshake(http))["sid"]
    connecting = asyncio.ensure_future(post(http, sid, auth(server)))
    await asyncio.wait_for(entered.wait(), EVENT_TIMEOUT)
    async with httpx.AsyncClient(base_url=server.url) as other:
        assert (await post(other, sid, "1")).text == "ok"
    release.set()
    assert (await connecting).text == "ok"
    assert await gauge_settles(server, 0)
    assert transport.members("user:alice") == []


async def test_shutdown_closes_the_sessions_still_open(database_url: str) -> None:
    running = await start_server(make_settings(database_url, realtime_transport="lean"))
    transport = lean_transport(running)
    async with httpx.AsyncClient(base_url=running.url) as http:
        sid = await connected_polling(running, http)
    assert sid in transport.engine.sessions
    await running.stop()
    assert transport.engine.sessions == {}
    assert running.metric("tidings_connections") == 0


# -- hardening: each test reproduces a defect of an attacker-minded review ----------------

@pytest.fixture
def quick_connect(database_url: str) -> Settings:
    return make_settings(database_url, realtime_transport="lean", connect_timeout_s=0.3)


async def test_a_session_that_never_connects_is_closed(quick_connect: Settings) -> None:
    running = await start_server(quick_connect)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=EVENT_TIMEOUT) as http:
            authenticated = await connected_polling(running, http)
            silent_ws = await ws_connect(ws_url(running), compression=None)
            assert (await recv(silent_ws)).startswith("0{")
            silent = (await handshake(http))["sid"]  # opened last: closed last
            assert await get(http, silent) == ["1"]  # closed, though pings were not due
            assert await closed(silent_ws)
            assert lean_transport(running).engine.sessions.keys() == {authenticated}
            assert (await post(http, authenticated, '421["subscribe",{"channels":["a"]}]')
                    ).text == "ok"
            assert (await get(http, authenticated))[0].startswith("431[")
    finally:
        await running.stop()


async def test_leaving_the_namespace_keeps_the_session_pinging(
    fast_heartbeat: None, server: RunningServer
) -> None:
    # The socket.io-protocol suite's "should disconnect from the main namespace": after
    # DISCONNECT of `/` the next packet is the server's PING, not a close.
    async with await connected_ws(server) as ws:
        await ws.send("41")
        assert await recv(ws) == "2"
        await ws.send("3")
        assert await recv(ws) == "2"
    assert await gauge_settles(server, 0)


async def test_a_session_that_left_the_namespace_has_the_connect_deadline_again(
    quick_connect: Settings,
) -> None:
    running = await start_server(quick_connect)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=EVENT_TIMEOUT) as http:
            sid = await connected_polling(running, http)
            assert (await post(http, sid, "41")).text == "ok"
            assert await get(http, sid) == ["1"]  # left, and not back in time: closed
            assert lean_transport(running).engine.sessions == {}
    finally:
        await running.stop()


async def test_a_refused_connect_is_closed_at_the_connect_deadline(
    quick_connect: Settings,
) -> None:
    running = await start_server(quick_connect)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=EVENT_TIMEOUT) as http:
            sid = (await handshake(http))["sid"]
            await post(http, sid, '40{"token":"forged"}')
            answer = await get(http, sid)
            assert answer[0].startswith("44{")
            assert answer[1:] == ["1"] or await get(http, sid) == ["1"]
    finally:
        await running.stop()


async def test_an_oversized_websocket_message_is_refused_by_the_frame_parser(
    server: RunningServer,
) -> None:
    ws = await ws_connect(ws_url(server), compression=None, max_size=None)
    assert (await recv(ws)).startswith("0{")
    await ws.send("4" + "x" * (4 * server.settings.max_event_bytes))
    assert await closed(ws)
    # 1009 comes from the server's frame parser, which refused the frame from its header
    # (the transport's own check, after buffering the whole message, closes with 1000).
    assert ws.close_code == 1009


async def test_the_client_s_close_answers_the_waiting_get_with_noop(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    session = lean_transport(server).engine.sessions[sid]
    waiting = asyncio.ensure_future(get(http, sid))
    for _ in range(250):  # until the GET waits on the server
        if session.waiter is not None:
            break
        await asyncio.sleep(0.02)
    assert (await post(http, sid, "1")).text == "ok"
    assert await asyncio.wait_for(waiting, EVENT_TIMEOUT) == ["6"]
    assert await gauge_settles(server, 0)


async def test_a_lone_surrogate_channel_is_denied_and_the_connection_stays(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    request = '421["subscribe",{"channels":["\\ud800","ok"]}]'
    async with await connected_ws(server) as ws:
        await ws.send(request)
        ack = json.loads((await recv(ws))[3:])[0]
        assert ack["denied"] == ["\ud800"] and ack["subscribed"] == ["ok"]
        await ws.send('422["subscribe",{"channels":["b"]}]')
        assert (await recv(ws)).startswith("432[")
    sid = await connected_polling(server, http, "bob")
    assert (await post(http, sid, request)).text == "ok"
    (answer,) = await get(http, sid)
    assert json.loads(answer[3:])[0]["denied"] == ["\ud800"]


def test_lone_surrogates_are_escaped_and_other_text_is_not() -> None:
    assert packets.event("e", {"a": "é\ud800"}) == '42["e",{"a":"\\u00e9\\ud800"}]'
    assert packets.event("e", {"a": "é"}) == '42["e",{"a":"é"}]'


async def test_the_heartbeat_wakes_at_the_pong_deadline_itself() -> None:
    pinged = asyncio.Event()
    expired: list[Session] = []
    done = asyncio.Event()

    async def expire(session: Session) -> None:
        expired.append(session)
        session.closed = True
        done.set()

    beat = Heartbeat(0.05, 0.4, 60.0, lambda _session: pinged.set(), expire)
    session = Session("s")
    beat.add(session)
    beat.joined(session)
    await asyncio.wait_for(pinged.wait(), EVENT_TIMEOUT)
    await asyncio.sleep(0)  # the loop computes its next wake-up after the ping
    # Not the next step of a clock: the deadline itself.
    assert beat.wake_at == session.ping_sent_at + 0.4
    await asyncio.wait_for(done.wait(), EVENT_TIMEOUT)
    assert expired == [session]
    beat.remove(session)
    assert beat.wake_at == math.inf


def websocket_connections(running: RunningServer) -> list[object]:
    return [protocol for protocol in running.server.server_state.connections
            if "WebSocket" in type(protocol).__name__]


async def test_closing_a_client_that_does_not_read_drops_its_connection(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lean_session, "MAX_BUFFERED", 100_000)
    transport = lean_transport(server)
    # The client reads its greeting, then nothing: one message queued at most, and the
    # kernel's buffers fill behind it.
    ws = await ws_connect(ws_url(server), compression=None, max_queue=1)
    assert (await recv(ws)).startswith("0{")
    await ws.send(auth(server))
    assert (await recv(ws)).startswith("40{")
    (sid,) = transport.members("user:alice")
    assert len(websocket_connections(server)) == 1
    for _ in range(2000):  # ~120 MB at most; the kernel's buffers fill long before
        if await transport.send([sid], "big", {"x": "y" * 60_000}) == 0:
            break
    # The session is closed for lagging; its connection must go too, though the client
    # never read a byte (its close frame would have waited behind megabytes forever).
    assert await gauge_settles(server, 0)
    for _ in range(250):
        if not websocket_connections(server):
            break
        await asyncio.sleep(0.02)
    assert websocket_connections(server) == []
    ws.transport.abort()  # not `close()`: the closing handshake with a dropped peer times out


async def test_the_bounded_body_reader_stops_at_the_bound_and_when_the_client_leaves() -> None:
    def receiving(*messages: Message) -> Any:
        queue = list(messages)

        async def receive() -> Message:
            return queue.pop(0)

        return receive

    chunk = {"type": "http.request", "body": b"12345", "more_body": True}
    last = {"type": "http.request", "body": b"6", "more_body": False}
    scope: dict[str, Any] = {"headers": []}
    assert await http_body.read_body(scope, receiving(chunk, last), 6) == b"123456"
    with pytest.raises(http_body.BodyTooLarge):
        await http_body.read_body(scope, receiving(chunk, chunk), 6)  # never a third read
    with pytest.raises(http_body.BodyTooLarge):  # a declared length is believed up front
        await http_body.read_body({"headers": [(b"content-length", b"7")]}, receiving(), 6)
    with pytest.raises(http_body.ClientGone):
        await http_body.read_body(scope, receiving(chunk, {"type": "http.disconnect"}), 6)
    assert http_body.declared_length({"headers": [(b"content-length", b"-1")]}) is None


async def test_a_polling_post_with_more_packets_than_allowed_closes_its_session(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    sid = await connected_polling(server, http)
    many = ["3"] * (server.settings.max_poll_packets + 1)  # PONGs: harmless one by one
    answer = await post(http, sid, *many)
    assert answer.status_code == 400
    again = await http.get("/socket.io/", params=query(sid=sid))
    assert again.status_code == 400  # the session is gone
    assert (await post(http, (await handshake(http))["sid"], *["6"] * 10)).text == "ok"
