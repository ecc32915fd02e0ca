"""Socket.IO contract: authentication, live delivery, acks, status sync, replay, topics,
preferences and bad input."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import socketio
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from tests.conftest import EVENT_TIMEOUT, Client, RunningServer

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


async def create(server: RunningServer, **fields: object) -> dict:
    async with server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, **fields})
    assert response.status_code in (201, 202), response.text
    return response.json()


@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"token": "garbage"}, "token",
                                  {"token": 12}])
async def test_connection_without_valid_token_is_refused(server: RunningServer, auth) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list = []
    client.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=5)
    assert errors and errors[0]["message"] == "Authentication failed"
    assert not client.connected


async def test_connects_over_polling_then_upgrades(server: RunningServer, connect) -> None:
    alice = await connect("alice", transports=["polling", "websocket"])
    note = await create(server, user_id="alice")
    assert (await alice.next("notification"))["id"] == note["id"]
    assert alice.sio.transport() == "websocket"


async def test_every_socket_of_the_user_gets_it_and_no_one_else(
    server: RunningServer, connect
) -> None:
    tab1, tab2 = await connect("alice"), await connect("alice")
    bob = await connect("bob")
    note = await create(server, user_id="alice")
    assert (await tab1.next("notification"))["id"] == note["id"]
    assert (await tab2.next("notification"))["id"] == note["id"]
    bob_note = await create(server, user_id="bob")
    assert (await bob.next("notification"))["id"] == bob_note["id"]
    assert tab1.queue("notification").empty()


async def test_ack_marks_delivered_and_every_tab_hears_of_it(
    server: RunningServer, connect
) -> None:
    tab1, tab2 = await connect("alice"), await connect("alice")
    note = await create(server, user_id="alice")
    await tab1.next("notification")
    answer = await tab1.call("ack", {"id": note["id"]})
    assert answer["ok"] is True
    assert answer["notification"]["status"] == "delivered"
    for tab in (tab1, tab2):
        status = await tab.next("notificationStatus")
        assert status["id"] == note["id"]
        assert status["status"] == "delivered"
        assert status["delivered_at"] is not None and status["read_at"] is None
    again = await tab2.call("ack", {"id": note["id"]})
    assert again["ok"] is True
    async with server.http("alice") as http:
        stored = (await http.get(f"/api/notifications/{note['id']}")).json()
    assert stored["status"] == "delivered"
    assert stored["delivered_at"] == answer["notification"]["delivered_at"]


async def test_mark_as_read_then_ack_stays_read(server: RunningServer, connect) -> None:
    tab1, tab2 = await connect("alice"), await connect("alice")
    note = await create(server, user_id="alice")
    answer = await tab1.call("markAsRead", {"id": note["id"]})
    assert answer["ok"] is True and answer["notification"]["status"] == "read"
    status = await tab2.next("notificationStatus")
    assert status["status"] == "read" and status["read_at"] is not None
    late_ack = await tab1.call("ack", {"id": note["id"]})
    assert late_ack["notification"]["status"] == "read"
    # The late ack changed nothing, so the next status tab2 hears is the marker's.
    marker = await create(server, user_id="alice")
    await tab1.call("markAsRead", {"id": marker["id"]})
    assert (await tab2.next("notificationStatus"))["id"] == marker["id"]


async def test_http_read_is_pushed_to_sockets(server: RunningServer, connect) -> None:
    alice = await connect("alice")
    note = await create(server, user_id="alice")
    async with server.http("alice") as http:
        await http.put(f"/api/notifications/{note['id']}/read")
    status = await alice.next("notificationStatus")
    assert status == {"id": note["id"], "status": "read",
                      "delivered_at": status["delivered_at"], "read_at": status["read_at"]}


async def test_a_deletion_is_heard_by_every_socket_of_the_user(
    server: RunningServer, connect
) -> None:
    tab1, tab2 = await connect("alice"), await connect("alice")
    bob = await connect("bob")
    note = await create(server, user_id="alice")
    async with server.http("alice") as http:
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 204
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 404
    for tab in (tab1, tab2):
        assert await tab.next("inboxChanged") == {"action": "deleted", "ids": [note["id"]]}
    # A refused delete (gone already, or someone else's) tells no one.
    async with server.http("bob") as http:
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 404
    marker = await create(server, user_id="alice")
    async with server.http("alice") as http:
        await http.delete(f"/api/notifications/{marker['id']}")
    assert (await tab1.next("inboxChanged"))["ids"] == [marker["id"]]
    assert bob.queue("inboxChanged").empty()


async def test_acking_someone_elses_notification_is_not_found(
    server: RunningServer, connect
) -> None:
    bob = await connect("bob")
    note = await create(server, user_id="alice")
    answer = await bob.call("ack", {"id": note["id"]})
    assert answer == {"ok": False, "error": {"code": "not_found",
                                             "message": "notification not found"}}
    assert (await bob.next("error"))["code"] == "not_found"
    async with server.http("alice") as http:
        assert (await http.get(f"/api/notifications/{note['id']}")).json()["status"] == "pending"


async def test_offline_user_gets_missed_notifications_in_order(
    server: RunningServer, connect
) -> None:
    since = datetime.now(UTC).isoformat()
    created = [await create(server, user_id="alice", title=f"n{i}") for i in range(3)]
    await create(server, user_id="bob")
    alice = await connect("alice")
    answer = await alice.call("requestMissedNotifications", {"since": since})
    assert answer == {"ok": True, "count": 3}
    replayed = [await alice.next("notification") for _ in created]
    assert [item["id"] for item in replayed] == [item["id"] for item in created]
    later = await alice.call("requestMissedNotifications", {"since": created[1]["created_at"]})
    assert later["count"] == 1
    assert (await alice.next("notification"))["id"] == created[2]["id"]


async def test_replay_covers_more_than_one_chunk(
    server: RunningServer, connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    async with server.http("svc", "service") as http:
        for _ in range(3):
            response = await http.post("/api/notifications",
                                       json={**NOTE, "user_ids": ["alice"]})
            assert response.status_code == 202
    monkeypatch.setattr(server.services.inbox.replays, "chunk", 2)
    alice = await connect("alice")
    answer = await alice.call("requestMissedNotifications", {"since": since})
    assert answer == {"ok": True, "count": 3}
    ids = [(await alice.next("notification"))["id"] for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_subscribe_denies_invalid_names_and_fans_out_copies(
    server: RunningServer, connect
) -> None:
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    answer = await alice.call("subscribe", {"channels": ["orders", "user:bob", "", 7,
                                                         "orders", "x" * 101]})
    assert answer == {"ok": True, "subscribed": ["orders"],
                      "denied": ["user:bob", "", 7, "x" * 101]}
    assert (await bob.call("subscribe", {"channels": ["orders"]}))["subscribed"] == ["orders"]
    result = await create(server, channel="orders", title="Sale")
    assert result == {"count": 2, "channel": "orders"}
    got_a, got_b = await alice.next("notification"), await bob.next("notification")
    assert got_a["user_id"] == "alice" and got_b["user_id"] == "bob"
    assert got_a["id"] != got_b["id"] and got_a["channel"] == "orders"
    # Each copy is the user's own: acking it works and history shows it.
    assert (await alice.call("ack", {"id": got_a["id"]}))["ok"] is True
    async with server.http("bob") as http:
        assert [n["id"] for n in (await http.get("/api/notifications")).json()["items"]] == [
            got_b["id"]]
    # carol never subscribed: the next notification she gets is one addressed to her.
    marker = await create(server, user_id="carol")
    assert (await carol.next("notification"))["id"] == marker["id"]


async def test_subscriptions_persist_across_reconnects_until_unsubscribe(
    server: RunningServer, connect
) -> None:
    first = await connect("alice")
    await first.call("subscribe", {"channels": ["news"]})
    await first.close()
    second = await connect("alice")
    await create(server, channel="news")
    assert (await second.next("notification"))["channel"] == "news"
    other_tab = await connect("alice")
    answer = await second.call("unsubscribe", {"channels": ["news"]})
    assert answer == {"ok": True, "unsubscribed": ["news"]}
    assert (await create(server, channel="news"))["count"] == 0
    probe = await create(server, user_id="alice")
    assert (await other_tab.next("notification"))["id"] == probe["id"]
    assert (await second.next("notification"))["id"] == probe["id"]


async def test_subscribe_reaches_other_tabs_of_the_user(server: RunningServer, connect) -> None:
    tab1, tab2 = await connect("alice"), await connect("alice")
    await tab1.call("subscribe", {"channels": ["deploys"]})
    await create(server, channel="deploys")
    assert (await tab2.next("notification"))["channel"] == "deploys"


async def test_update_preferences_single_and_many(server: RunningServer, connect) -> None:
    alice = await connect("alice")
    one = await alice.call("updatePreferences", {"channel": "orders", "email_enabled": False})
    assert one["ok"] is True
    assert one["items"] == [{"channel": "orders", "notification_type": "*",
                             "email_enabled": False, "push_enabled": True,
                             "in_app_enabled": True, "sms_enabled": True,
                             "chat_enabled": True}]
    many = await alice.call("updatePreferences", {"items": [
        {"channel": "*", "notification_type": "*", "push_enabled": False},
        {"channel": "orders", "notification_type": "*", "in_app_enabled": False},
    ]})
    assert [item["in_app_enabled"] for item in many["items"]] == [True, False]
    assert many["items"][1]["email_enabled"] is False  # kept from before
    async with server.http("alice") as http:
        stored = (await http.get("/api/notifications/preferences")).json()["items"]
    assert len(stored) == 2


@pytest.mark.parametrize(("event", "payload", "code"), [
    ("ack", "nope", "validation_error"),
    ("ack", {}, "validation_error"),
    ("ack", {"id": 5}, "validation_error"),
    ("markAsRead", None, "validation_error"),
    ("subscribe", {"channels": "orders"}, "validation_error"),
    ("subscribe", {"channels": []}, "validation_error"),
    ("unsubscribe", [1, 2], "validation_error"),
    ("requestMissedNotifications", {"since": "yesterday"}, "validation_error"),
    ("requestMissedNotifications", {}, "validation_error"),
    ("updatePreferences", {"channel": "user:x"}, "validation_error"),
    ("updatePreferences", {"items": []}, "validation_error"),
    ("updatePreferences", {"in_app_enabled": "yes"}, "validation_error"),
    ("teleport", {"x": 1}, "unknown_event"),
])
async def test_bad_events_get_an_error_and_the_connection_stays(
    server: RunningServer, connect, event: str, payload: object, code: str
) -> None:
    alice = await connect("alice")
    answer = await alice.call(event, payload)
    assert answer["ok"] is False
    assert answer["error"]["code"] == code
    error = await alice.next("error")
    assert error["code"] == code and error["message"]
    note = await create(server, user_id="alice")
    assert (await alice.next("notification"))["id"] == note["id"]
    assert alice.sio.connected


async def test_oversized_event_does_not_take_the_server_down(
    server: RunningServer, connect
) -> None:
    victim = await connect("alice")
    bystander = await connect("bob")
    try:
        await victim.sio.emit("ack", {"id": "x" * (server.settings.max_event_bytes * 2)})
    except socketio.exceptions.SocketIOError:
        pass
    note = await create(server, user_id="bob")
    assert (await bystander.next("notification"))["id"] == note["id"]


async def test_preferences_off_for_in_app_means_no_live_event(
    server: RunningServer, connect
) -> None:
    alice = await connect("alice")
    await alice.call("updatePreferences", {"channel": "marketing", "in_app_enabled": False})
    muted = await create(server, user_id="alice", channel="marketing")
    shown = await create(server, user_id="alice", channel="orders")
    assert (await alice.next("notification"))["id"] == shown["id"]
    async with server.http("alice") as http:
        ids = [item["id"] for item in (await http.get("/api/notifications")).json()["items"]]
    assert muted["id"] in ids  # stored all the same, for the other media and the record
    # A create's `media` only narrows: naming in_app does not override her opt-out.
    await create(server, user_id="alice", channel="marketing", media=["in_app"])
    after = await create(server, user_id="alice", channel="orders")
    assert (await alice.next("notification"))["id"] == after["id"]


async def test_metrics_count_connections_creations_and_deliveries(
    server: RunningServer, connect
) -> None:
    alice = await connect("alice")
    await create(server, user_id="alice")
    await alice.next("notification")
    async with server.http() as http:
        text = (await http.get("/metrics")).text
    assert "tidings_connections 1.0" in text
    assert "tidings_notifications_created_total 1.0" in text
    assert "tidings_in_app_deliveries_total 1.0" in text
    assert "tidings_create_to_emit_seconds_count 1.0" in text


async def test_disconnect_updates_connection_gauge(server: RunningServer) -> None:
    client = Client()
    await client.sio.connect(server.url, auth={"token": server.token("alice")},
                             transports=["websocket"])
    await client.next("connectionStatus")
    await client.close()
    for _ in range(100):  # the server hears of the close a moment after the client
        if server.metric("tidings_connections") == 0:
            break
        await asyncio.sleep(0.02)
    assert server.metric("tidings_connections") == 0
    assert server.metric("tidings_socket_disconnects_total") == 1


async def test_subscriptions_are_capped_per_user(server: RunningServer, connect) -> None:
    from tidings.services import subscriptions as module

    alice = await connect("alice")
    original = module.MAX_SUBSCRIPTIONS
    module.MAX_SUBSCRIPTIONS = 2
    try:
        first = await alice.call("subscribe", {"channels": ["a", "b"]})
        second = await alice.call("subscribe", {"channels": ["b", "c"]})
    finally:
        module.MAX_SUBSCRIPTIONS = original
    assert first["subscribed"] == ["a", "b"]
    assert second == {"ok": True, "subscribed": ["b"], "denied": ["c"]}


async def test_concurrent_subscriptions_are_all_recorded(server: RunningServer) -> None:
    service = server.services.subscriptions
    results = await asyncio.gather(
        *[service.subscribe(f"u{i}", ["news", "user:x"]) for i in range(300)],
        service.subscribe("u0", ["sports", "news"]),
    )
    assert all(r.subscribed == ["news"] and r.denied == ["user:x"] for r in results[:300])
    assert results[300].subscribed == ["sports", "news"]
    assert (await create(server, channel="news"))["count"] == 300
    assert (await create(server, channel="sports"))["count"] == 1


async def gauge_settles(server: RunningServer, value: float) -> bool:
    for _ in range(250):
        if server.metric("tidings_connections") == value:
            return True
        await asyncio.sleep(0.02)
    return False


async def next_packet(ws: ClientConnection) -> str:
    """The next Engine.IO packet from the server that is not a PING (answered here)."""
    while True:
        message = await asyncio.wait_for(ws.recv(), EVENT_TIMEOUT)
        assert isinstance(message, str)
        if message != "2":
            return message
        await ws.send("3")


async def test_leaving_the_namespace_keeps_the_session_for_a_new_connect(
    server: RunningServer,
) -> None:
    # As Node's socket.io and python-socketio do (the socket.io-protocol suite's "should
    # disconnect from the main namespace"): DISCONNECT of `/` leaves the namespace, and the
    # Engine.IO session stays, free to CONNECT again.
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    auth = "40" + json.dumps({"token": server.token("alice")})
    async with ws_connect(url, compression=None) as ws:
        assert (await next_packet(ws)).startswith("0{")
        await ws.send(auth)
        first = json.loads((await next_packet(ws))[2:])["sid"]
        assert json.loads((await next_packet(ws))[2:])[0] == "connectionStatus"
        await ws.send("41")
        assert await gauge_settles(server, 0)
        assert server.services.gateway.transport.members("user:alice") == []
        await ws.send(auth)  # the same Engine.IO session, a new socket
        answer = await next_packet(ws)
        assert answer.startswith("40{") and json.loads(answer[2:])["sid"] != first
        assert json.loads((await next_packet(ws))[2:]) == [
            "connectionStatus", {"status": "connected", "user_id": "alice"}]
        assert await gauge_settles(server, 1)
        note = await create(server, user_id="alice")
        assert json.loads((await next_packet(ws))[2:])[1]["id"] == note["id"]
