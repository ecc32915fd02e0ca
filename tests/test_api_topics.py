"""Producer-managed topics: `PUT/GET /api/channels/{channel}/subscribers`, `GET
/api/channels`, `GET /api/subscriptions`; their counts, pages and refusals; the per-user
cap; the channel rules left out; and a producer-made subscription reaching a connected
socket live (and a removed one no longer)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import EVENT_TIMEOUT, Client, RunningServer, make_settings, start_server
from tidings.domain.model import utcnow
from tidings.services.subscriptions import MAX_SUBSCRIPTIONS
from tidings.store import subscriptions as store

pytestmark = pytest.mark.both_databases

NOTE = {"type": "news", "title": "Hello", "message": "World", "media": ["in_app"]}


async def put(server: RunningServer, channel: str, body: Any, *roles: str,
              sub: str = "orders-svc") -> Any:
    async with server.http(sub, *(roles or ("service",))) as http:
        return await http.put(f"/api/channels/{channel}/subscribers", json=body)


async def get(server: RunningServer, path: str, sub: str = "orders-svc",
              *roles: str, **params: Any) -> Any:
    async with server.http(sub, *roles) as http:
        return await http.get(path, params=params)


async def to_channel(server: RunningServer, channel: str, title: str = "Hello") -> int:
    async with server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "channel": channel, "title": title})
    assert response.status_code == 202, response.text
    return int(response.json()["count"])


async def test_a_change_answers_what_it_changed_and_a_repeat_answers_zero(
        server: RunningServer) -> None:
    first = await put(server, "orders", {"add": ["alice", "bob", "alice"]})
    assert first.status_code == 200, first.text
    assert first.json() == {"added": 2, "removed": 0}
    again = await put(server, "orders", {"add": ["alice", "bob"]})
    assert again.json() == {"added": 0, "removed": 0}
    both = await put(server, "orders", {"add": ["carol"], "remove": ["bob", "dave"]})
    assert both.json() == {"added": 1, "removed": 1}
    assert (await put(server, "orders", {"remove": ["bob"]})).json() == {"added": 0,
                                                                       "removed": 0}
    # An admin may do it too.
    admin = await put(server, "orders", {"remove": ["carol"]}, "admin", sub="ops")
    assert admin.status_code == 200 and admin.json() == {"added": 0, "removed": 1}
    listed = await get(server, "/api/channels/orders/subscribers", "svc", "service")
    assert [item["user_id"] for item in listed.json()["items"]] == ["alice"]


async def test_subscribers_are_listed_by_user_id_a_page_at_a_time(
        server: RunningServer) -> None:
    users = [f"user-{n:02d}" for n in range(7)] + ["é/ü ?&=", "Zed"]
    assert (await put(server, "news", {"add": users})).json()["added"] == len(users)
    await put(server, "other", {"add": ["nobody-else"]})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        response = await get(server, "/api/channels/news/subscribers", "svc", "service",
                             **params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert all(set(item) == {"user_id", "since"} and item["since"].endswith("Z")
                   for item in body["items"])
        seen += [item["user_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # Each once, in the database's order of user ids (its collation's, on PostgreSQL).
    assert sorted(seen) == sorted(users) and len(seen) == len(users) and pages == 3
    empty = await get(server, "/api/channels/nothing-here/subscribers", "svc", "service")
    assert empty.json() == {"items": [], "next_cursor": None}


async def test_channels_are_listed_with_their_subscriber_counts(
        server: RunningServer) -> None:
    await put(server, "b-news", {"add": ["u1", "u2", "u3"]})
    await put(server, "a-orders", {"add": ["u1"]})
    await put(server, "c-deploys", {"add": ["u2", "u4"]})
    await put(server, "d-empty", {"add": ["u9"]})
    await put(server, "d-empty", {"remove": ["u9"]})
    first = (await get(server, "/api/channels", "ops", "admin", limit=2)).json()
    assert first["items"] == [{"channel": "a-orders", "subscribers": 1},
                              {"channel": "b-news", "subscribers": 3}]
    rest = (await get(server, "/api/channels", "ops", "admin", limit=2,
                      cursor=first["next_cursor"])).json()
    assert rest == {"items": [{"channel": "c-deploys", "subscribers": 2}],
                    "next_cursor": None}


async def test_a_user_lists_their_own_subscriptions_whoever_made_them(
        server: RunningServer, connect: Any) -> None:
    await put(server, "orders", {"add": ["alice", "bob"]})
    alice = await connect("alice")
    assert (await alice.call("subscribe", {"channels": ["deploys"]}))["ok"] is True
    response = await get(server, "/api/subscriptions", "alice")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["channel"] for item in items] == ["deploys", "orders"]
    assert all(set(item) == {"channel", "since"} for item in items)
    assert (await get(server, "/api/subscriptions", "carol")).json() == {"items": []}


async def test_every_route_needs_a_token(server: RunningServer) -> None:
    async with server.http() as http:
        answers = [
            await http.put("/api/channels/orders/subscribers", json={"add": ["a"]}),
            await http.get("/api/channels/orders/subscribers"),
            await http.get("/api/channels"),
            await http.get("/api/subscriptions"),
        ]
    assert [answer.status_code for answer in answers] == [401] * 4
    assert all(answer.json()["error"]["code"] == "authentication_failed"
               for answer in answers)


async def test_a_plain_user_may_not_manage_or_list_topics(server: RunningServer) -> None:
    changed = await put(server, "orders", {"add": ["alice"]}, "reader", sub="alice")
    subscribers = await get(server, "/api/channels/orders/subscribers", "alice")
    channels = await get(server, "/api/channels", "alice")
    assert [r.status_code for r in (changed, subscribers, channels)] == [403] * 3
    assert changed.json()["error"]["code"] == "forbidden"
    assert (await get(server, "/api/subscriptions", "alice")).json() == {"items": []}


@pytest.mark.parametrize(("body", "field"), [
    ({}, "add"),
    ({"add": [], "remove": []}, "add"),
    ({"add": [""]}, "add.0"),
    ({"add": ["ok", "x" * 256]}, "add.1"),
    ({"add": [7]}, "add.0"),
    ({"remove": ["nul\u0000"]}, "remove.0"),
    ({"add": "alice"}, "add"),
    ({"add": ["a"], "also": 1}, "also"),
    ({"add": [f"u{n}" for n in range(10_001)]}, "add"),
    ({"add": [f"u{n}" for n in range(6_000)], "remove": [f"r{n}" for n in range(4_001)]},
     "remove"),
    ({"add": ["alice", "bob"], "remove": ["bob"]}, "remove"),
    ([], "body"),
])
async def test_a_bad_change_is_a_422_naming_the_field(
        server: RunningServer, body: Any, field: str) -> None:
    response = await put(server, "orders", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert (await get(server, "/api/channels", "ops", "admin")).json()["items"] == []


async def test_ten_thousand_ids_in_all_are_accepted(server: RunningServer) -> None:
    body = {"add": [f"u{n}" for n in range(6_000)],
            "remove": [f"r{n}" for n in range(4_000)]}
    response = await put(server, "big", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"added": 6_000, "removed": 0}


@pytest.mark.parametrize("channel", ["user:bob", "channel:x", "-lead", "a" * 101, "sp ace"])
async def test_channel_names_are_judged_as_in_subscribe(
        server: RunningServer, channel: str) -> None:
    answers = [
        await put(server, channel, {"add": ["alice"]}),
        await get(server, f"/api/channels/{channel}/subscribers", "svc", "service"),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "channel"


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/api/channels", {"cursor": "not a cursor"}, "cursor"),
    ("/api/channels", {"cursor": "%%%"}, "cursor"),
    ("/api/channels", {"cursor": "abcde"}, "cursor"),  # 4n + 1 characters decode to none
    ("/api/channels/orders/subscribers", {"cursor": "A"}, "cursor"),
    ("/api/channels/orders/subscribers", {"cursor": "YQ=="}, "cursor"),  # no padding
    ("/api/channels/orders/subscribers", {"cursor": "Y" * 1364}, "cursor"),
    ("/api/channels/orders/subscribers", {"limit": 0}, "limit"),
    ("/api/channels", {"limit": 101}, "limit"),
    ("/api/channels", {"limit": "x"}, "limit"),
])
async def test_bad_list_parameters_are_a_422_naming_them(
        server: RunningServer, path: str, params: dict[str, Any], field: str) -> None:
    response = await get(server, path, "svc", "service", **params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_well_formed_cursor_is_a_place_in_the_list(server: RunningServer) -> None:
    await put(server, "orders", {"add": ["alice", "bob"]})
    # "Ym9i" is base64url of "bob": the list after it holds nothing; "YQ" ("a") both.
    after = await get(server, "/api/channels/orders/subscribers", "svc", "service",
                      cursor="Ym9i")
    assert after.json() == {"items": [], "next_cursor": None}
    for cursor in ("YQ", "AA"):  # "a"; a NUL (read as nothing: the start)
        page = await get(server, "/api/channels/orders/subscribers", "svc", "service",
                         cursor=cursor)
        assert [item["user_id"] for item in page.json()["items"]] == ["alice", "bob"]
    # A byte that is no UTF-8 reads as U+FFFD: a place too (where, the collation says).
    odd = await get(server, "/api/channels/orders/subscribers", "svc", "service",
                    cursor="_w")
    assert odd.status_code == 200, odd.text


async def fill_up(server: RunningServer, user: str, count: int) -> None:
    async with server.services.db.begin() as conn:
        await store.add(conn, [(user, f"topic-{n}") for n in range(count)], utcnow())


async def test_a_change_past_the_subscription_cap_is_a_409_naming_the_users(
        server: RunningServer) -> None:
    await fill_up(server, "full", MAX_SUBSCRIPTIONS)
    await fill_up(server, "nearly", MAX_SUBSCRIPTIONS - 1)
    await put(server, "orders", {"add": ["bob"]})
    response = await put(server, "orders", {"add": ["alice", "full", "nearly"],
                                            "remove": ["bob"]})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "subscription_limit" and error["field"] == "add"
    assert error["user_ids"] == ["full"] and error["over"] == 1
    # Nothing of it was done: neither the adds nor the remove.
    listed = await get(server, "/api/channels/orders/subscribers", "svc", "service")
    assert [item["user_id"] for item in listed.json()["items"]] == ["bob"]
    # A user already subscribed is not counted against the cap again.
    await fill_up(server, "full-and-in", MAX_SUBSCRIPTIONS - 1)
    assert (await put(server, "orders", {"add": ["full-and-in"]})).json()["added"] == 1
    repeat = await put(server, "orders", {"add": ["full-and-in", "nearly"]})
    assert repeat.json() == {"added": 1, "removed": 0}


async def test_producer_subscriptions_skip_the_channel_rules(database_url: str) -> None:
    rules = [{"pattern": "*", "allow": False}]
    server = await start_server(make_settings(database_url, channel_rules=json.dumps(rules)))
    try:
        alice = Client()
        await alice.sio.connect(server.url, auth={"token": server.token("alice")},
                                transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
        await alice.next("connectionStatus")
        denied = await alice.call("subscribe", {"channels": ["orders"]})
        assert denied["denied"] == ["orders"]
        assert (await put(server, "orders", {"add": ["alice"]})).json()["added"] == 1
        assert await to_channel(server, "orders", "past the rules") == 1
        assert (await alice.next("notification"))["title"] == "past the rules"
        await alice.close()
    finally:
        await server.stop()


@pytest.mark.parametrize("transport", ["lean", "python-socketio"])
async def test_a_producer_s_add_reaches_connected_sockets_live_and_a_remove_stops_it(
        database_url: str, transport: str) -> None:
    server = await start_server(make_settings(database_url, realtime_transport=transport))
    tabs = [Client(), Client()]
    try:
        for tab in tabs:
            await tab.sio.connect(server.url, auth={"token": server.token("alice")},
                                  transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
            await tab.next("connectionStatus")
        assert await to_channel(server, "launches", "before") == 0
        assert (await put(server, "launches", {"add": ["alice"]})).json()["added"] == 1
        assert await to_channel(server, "launches", "added") == 1
        for tab in tabs:
            got = await tab.next("notification")
            assert got["title"] == "added" and got["channel"] == "launches"
        assert (await put(server, "launches", {"remove": ["alice"]})).json()["removed"] == 1
        assert await to_channel(server, "launches", "removed") == 0
        # What follows on the same sockets arrives, the removed channel's create does not.
        async with server.http("svc", "service") as http:
            direct = await http.post("/api/notifications",
                                     json={**NOTE, "user_id": "alice", "title": "direct"})
        assert direct.status_code == 201
        for tab in tabs:
            assert (await tab.next("notification"))["title"] == "direct"
    finally:
        for tab in tabs:
            await tab.close()
        await server.stop()


async def test_the_lists_read_the_channel_index_on_postgresql(
        server: RunningServer, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's")
    async with server.services.db.begin() as conn:
        await store.add(conn, [(f"u{n}", f"c{n % 50}") for n in range(2_000)], utcnow())
    async with server.services.db.begin() as conn:
        await conn.execute(sa.text("ANALYZE subscriptions"))
        # The table is small here: the planner is told to take an ordered index path
        # where one exists, which proves that one does (no Seq Scan, no Sort left).
        for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await conn.execute(sa.text(f"SET LOCAL {knob} = off"))
        plans = []
        for query in (store.subscribers_page_query("c7", "u1", 51),
                      store.channels_page_query("c1", 51)):
            compiled = query.compile(conn.sync_connection,  # type: ignore[union-attr]
                                     compile_kwargs={"literal_binds": True})
            rows = await conn.execute(sa.text(f"EXPLAIN {compiled}"))
            plans.append("\n".join(row[0] for row in rows))
    for plan in plans:
        assert "ix_subscriptions_channel" in plan, plan
        assert "Seq Scan" not in plan and "Sort" not in plan, plan


async def test_concurrent_changes_count_each_subscription_once(
        server: RunningServer) -> None:
    users = [f"u{n}" for n in range(50)]
    answers = await asyncio.gather(*(put(server, "race", {"add": users})
                                     for _ in range(4)))
    assert all(answer.status_code == 200 for answer in answers)
    assert sum(answer.json()["added"] for answer in answers) == len(users)


async def test_a_producer_s_subscription_is_the_user_s_own_to_end_and_counts_to_the_cap(
        server: RunningServer, connect: Any) -> None:
    await fill_up(server, "alice", MAX_SUBSCRIPTIONS - 1)
    assert (await put(server, "orders", {"add": ["alice"]})).json()["added"] == 1
    alice = await connect("alice")
    # The producer's add took the last place: her own subscribe is denied.
    assert (await alice.call("subscribe", {"channels": ["deploys"]}))["denied"] == ["deploys"]
    assert (await alice.call("unsubscribe", {"channels": ["orders"]}))["ok"] is True
    listed = await get(server, "/api/channels/orders/subscribers", "svc", "service")
    assert listed.json()["items"] == []
    assert await to_channel(server, "orders") == 0
