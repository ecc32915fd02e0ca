"""Inbox states (DESIGN section 12): read all, seen, archive and unarchive, cancel by id
and by Idempotency-Key, expiry, links and actions on a create; the list's `unseen_count`
and archived view; `inboxChanged` to the user's other sockets (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications

pytestmark = pytest.mark.both_databases

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}
BASE = "/api/notifications"


def instant(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


async def create(server: RunningServer, key: str | None = None, **fields: Any) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    async with server.http("orders-svc", "service") as http:
        response = await http.post(BASE, json={**NOTE, "user_id": "alice", **fields},
                                   headers=headers)
    assert response.status_code in (201, 202), response.text
    return response.json()


async def listed(server: RunningServer, user: str = "alice", **params: str) -> Any:
    async with server.http(user) as http:
        response = await http.get(BASE, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_create_carries_expiry_url_and_actions(server: RunningServer) -> None:
    expires = instant(hours=1)
    actions = [{"label": "Track", "url": "https://shop.example/t/7"},
               {"label": "Help", "url": "http://help.example/"}]
    note = await create(server, url="https://shop.example/o/7", actions=actions,
                        expires_at=expires)
    assert note["url"] == "https://shop.example/o/7"
    assert note["actions"] == actions
    assert note["expires_at"].startswith(expires[:19])
    assert (note["seen_at"], note["archived_at"], note["clicked_at"]) == (None, None, None)
    async with server.http("alice") as http:
        fetched = (await http.get(f"{BASE}/{note['id']}")).json()
    assert (fetched["url"], fetched["actions"]) == (note["url"], actions)
    plain = await create(server)
    assert (plain["url"], plain["actions"], plain["expires_at"]) == (None, None, None)


@pytest.mark.parametrize(("fields", "field"), [
    ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
    ({"scheduled_at": "2998-01-02T00:00:00Z", "expires_at": "2998-01-01T00:00:00Z"},
     "expires_at"),
    ({"scheduled_at": "2998-01-01T00:00:00Z", "expires_at": "2998-01-01T00:00:00Z"},
     "expires_at"),
    ({"expires_at": 5}, "expires_at"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "ftp://files.example/x"}, "url"),
    ({"url": "https://"}, "url"),
    ({"actions": [{"label": "x", "url": "https://a.example"}] * 4}, "actions"),
    ({"actions": [{"label": "x", "url": "data:text/html,hi"}]}, "actions.0.url"),
    ({"actions": [{"label": "", "url": "https://a.example"}]}, "actions.0.label"),
    ({"actions": [{"url": "https://a.example"}]}, "actions.0.label"),
    ({"actions": [{"label": "x", "url": "https://a.example", "style": "red"}]},
     "actions.0.style"),
])
async def test_a_create_with_a_bad_expiry_or_link_is_refused_naming_the_field(
    server: RunningServer, fields: dict[str, Any], field: str
) -> None:
    async with server.http("orders-svc", "service") as http:
        single = await http.post(BASE, json={**NOTE, "user_id": "alice", **fields})
        batch = await http.post(f"{BASE}/batch",
                                json={"items": [{**NOTE, "user_id": "alice", **fields}]})
    assert single.status_code == 422, single.text
    assert single.json()["error"]["field"] == field
    assert batch.status_code == 200
    (result,) = batch.json()["results"]
    assert (result["status"], result["error"]["field"]) == (422, field)
    assert (await listed(server))["items"] == []


async def test_read_all_reads_the_unread_of_a_channel_and_type_and_counts_them(
    server: RunningServer, connect: Any
) -> None:
    orders = [await create(server, channel="orders") for _ in range(2)]
    other = await create(server, channel="billing")
    await create(server, user_id="bob", channel="orders")
    tab = await connect("alice")
    async with server.http("alice") as http:
        await http.put(f"{BASE}/{orders[0]['id']}/read")
        first = await http.post(f"{BASE}/read-all", json={"channel": "orders"})
        again = await http.post(f"{BASE}/read-all", json={"channel": "orders"})
        bad = await http.post(f"{BASE}/read-all", json={"channel": "no spaces"})
    assert (first.status_code, first.json()) == (200, {"count": 1})
    assert again.json() == {"count": 0}  # counts are what the call changed
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "channel")
    change = await tab.next("inboxChanged")
    assert change["action"] == "read_all" and change["channel"] == "orders"
    assert "type" not in change and change["before"].endswith("Z")
    page = await listed(server)
    statuses = {item["id"]: item["status"] for item in page["items"]}
    assert statuses[orders[1]["id"]] == "read" and statuses[other["id"]] == "pending"
    assert page["unread_count"] == 1
    assert (await listed(server, "bob"))["unread_count"] == 1  # bob's are his own
    async with server.http("alice") as http:
        everything = await http.post(f"{BASE}/read-all")
    assert everything.json() == {"count": 1}


async def test_seen_by_ids_or_all_and_the_unseen_count(
    server: RunningServer, connect: Any
) -> None:
    notes = [await create(server) for _ in range(3)]
    bobs = await create(server, user_id="bob")
    assert (await listed(server))["unseen_count"] == 3
    tab = await connect("alice")
    async with server.http("alice") as http:
        some = await http.post(f"{BASE}/seen", json={
            "ids": [notes[0]["id"], bobs["id"], "not-an-id"]})
        assert some.json() == {"count": 1}  # bob's is not hers: not counted
        assert await tab.next("inboxChanged") == {"action": "seen", "ids": [notes[0]["id"]]}
        rest = await http.post(f"{BASE}/seen")
        assert rest.json() == {"count": 2}
        change = await tab.next("inboxChanged")
        assert change["action"] == "seen" and "ids" not in change and "before" in change
        assert (await http.post(f"{BASE}/seen", json={})).json() == {"count": 0}
        bad = await http.post(f"{BASE}/seen", json={"ids": "all"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "ids")
    page = await listed(server)
    assert page["unseen_count"] == 0 and page["unread_count"] == 3
    assert all(item["seen_at"] is not None for item in page["items"])
    assert (await listed(server, "bob"))["unseen_count"] == 1


async def test_archive_hides_from_the_list_and_unarchive_brings_back(
    server: RunningServer, connect: Any
) -> None:
    kept, archived = await create(server), await create(server)
    tab = await connect("alice")
    async with server.http("alice") as http:
        answer = await http.post(f"{BASE}/{archived['id']}/archive")
        assert answer.status_code == 200 and answer.json()["archived_at"] is not None
        assert await tab.next("inboxChanged") == {"action": "archived",
                                                  "ids": [archived["id"]]}
        again = await http.post(f"{BASE}/{archived['id']}/archive")  # idempotent
        assert again.json()["archived_at"] == answer.json()["archived_at"]
    assert [i["id"] for i in (await listed(server))["items"]] == [kept["id"]]
    only = await listed(server, archived="true")
    assert [i["id"] for i in only["items"]] == [archived["id"]]
    assert only["unread_count"] == 1
    async with server.http("alice") as http:
        back = await http.post(f"{BASE}/{archived['id']}/unarchive")
    assert back.status_code == 200 and back.json()["archived_at"] is None
    assert await tab.next("inboxChanged") == {"action": "unarchived", "ids": [archived["id"]]}
    assert tab.queue("inboxChanged").empty()  # the repeated archive changed nothing
    assert len((await listed(server))["items"]) == 2


async def test_inbox_routes_refuse_without_token_and_for_another_users_notification(
    server: RunningServer
) -> None:
    bobs = await create(server, user_id="bob")
    async with server.http() as anon:
        for path in ("read-all", "seen", f"{bobs['id']}/archive", f"{bobs['id']}/unarchive",
                     f"{bobs['id']}/cancel", "cancel"):
            assert (await anon.post(f"{BASE}/{path}")).status_code == 401, path
    async with server.http("alice") as http:
        for action in ("archive", "unarchive"):
            assert (await http.post(f"{BASE}/{bobs['id']}/{action}")).status_code == 404
            assert (await http.post(f"{BASE}/nope/{action}")).status_code == 404
        assert (await http.post(f"{BASE}/seen", json={"ids": [bobs["id"]]})).json() == {
            "count": 0}
    assert (await listed(server, "bob"))["items"][0]["archived_at"] is None


async def test_cancel_a_scheduled_notification(server: RunningServer, connect: Any) -> None:
    later = await create(server, scheduled_at=instant(hours=1), media=["in_app", "email"])
    due = await create(server)
    async with server.http("orders-svc", "service") as svc:
        canceled = await svc.post(f"{BASE}/{later['id']}/cancel")
        twice = await svc.post(f"{BASE}/{later['id']}/cancel")
        too_late = await svc.post(f"{BASE}/{due['id']}/cancel")
        unknown = await svc.post(f"{BASE}/01930000-0000-7000-8000-000000000000/cancel")
        not_an_id = await svc.post(f"{BASE}/nope/cancel")
    async with server.http("alice") as alice:
        forbidden = await alice.post(f"{BASE}/{later['id']}/cancel")
        hidden = await alice.get(f"{BASE}/{later['id']}")
        not_deleted = await alice.delete(f"{BASE}/{later['id']}")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert {d["medium"]: d["status"] for d in canceled.json()["deliveries"]} == {
        "in_app": "skipped", "email": "skipped"}
    assert twice.status_code == 409 and too_late.status_code == 409
    assert unknown.status_code == 404 and not_an_id.status_code == 404
    assert forbidden.status_code == 403
    assert hidden.status_code == 404 and not_deleted.status_code == 404  # as if deleted
    # Even once its time has come, nothing releases it and nothing lists it.
    await make_due(server, later["id"])
    assert await server.services.scheduler.release_due() == 0
    tab = await connect("alice")
    replay = await tab.call("requestMissedNotifications", {"since": instant(days=-1)})
    assert replay == {"ok": True, "count": 1}
    assert (await tab.next("notification"))["id"] == due["id"]
    assert [i["id"] for i in (await listed(server))["items"]] == [due["id"]]


async def make_due(server: RunningServer, note_id: str, **values: Any) -> None:
    """As if its time had come: the notification visible, its deliveries due."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with server.services.db.begin() as conn:
        await conn.execute(notifications.update().where(notifications.c.id == note_id)
                           .values(visible_at=past, scheduled_at=past, **values))
        await conn.execute(deliveries.update().where(deliveries.c.notification_id == note_id)
                           .values(next_attempt_at=past))


async def test_cancel_by_key_cancels_every_copy_not_yet_due(server: RunningServer) -> None:
    at = instant(hours=1)
    many = await create(server, key="campaign-7", user_id=None, user_ids=["ann", "ben"],
                        scheduled_at=at)
    assert many == {"count": 2, "channel": "default"}
    await create(server, key="campaign-8", scheduled_at=at)
    async with server.http("other-svc", "service") as other:
        # The key is the producer's own: another producer's same key is another key.
        assert (await other.post(f"{BASE}/cancel",
                                 json={"idempotency_key": "campaign-7"})).json() == {"count": 0}
    async with server.http("orders-svc", "service") as svc:
        first = await svc.post(f"{BASE}/cancel", json={"idempotency_key": "campaign-7"})
        repeat = await svc.post(f"{BASE}/cancel", json={"idempotency_key": "campaign-7"})
        missing = await svc.post(f"{BASE}/cancel", json={})
        bad = await svc.post(f"{BASE}/cancel", json={"idempotency_key": ""})
    async with server.http("ann") as ann:
        forbidden = await ann.post(f"{BASE}/cancel", json={"idempotency_key": "campaign-8"})
    assert (first.status_code, first.json()) == (200, {"count": 2})
    assert repeat.json() == {"count": 0}
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "idempotency_key")
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "idempotency_key")
    assert forbidden.status_code == 403
    async with server.services.db.begin() as conn:
        rows = (await conn.execute(sa.select(notifications.c.idempotency_key,
                                             notifications.c.status))).all()
    assert sorted(rows) == [("campaign-7", "canceled"), ("campaign-7", "canceled"),
                            ("campaign-8", "pending")]


async def test_expired_and_canceled_are_neither_listed_nor_replayed(
    server: RunningServer, connect: Any
) -> None:
    kept = await create(server)
    expiring = await create(server, expires_at=instant(hours=1))
    async with server.services.db.begin() as conn:  # as if the hour had passed
        await conn.execute(notifications.update().where(notifications.c.id == expiring["id"])
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    page = await listed(server)
    assert [i["id"] for i in page["items"]] == [kept["id"]]
    assert (page["unread_count"], page["unseen_count"]) == (1, 1)
    tab = await connect("alice")
    assert await tab.call("requestMissedNotifications", {"since": instant(days=-1)}) == {
        "ok": True, "count": 1}
    assert (await tab.next("notification"))["id"] == kept["id"]


async def test_deleted_and_inbox_changes_reach_every_socket_of_the_user(
    server: RunningServer, connect: Any
) -> None:
    note = await create(server)
    first, second = await connect("alice"), await connect("alice")
    other = await connect("bob")
    async with server.http("alice") as http:
        await http.post(f"{BASE}/{note['id']}/archive")
        await http.delete(f"{BASE}/{note['id']}")
    for tab in (first, second):
        assert (await tab.next("inboxChanged"))["action"] == "archived"
        assert await tab.next("inboxChanged") == {"action": "deleted", "ids": [note["id"]]}
    assert other.queue("inboxChanged").empty()


async def test_the_python_client_calls_the_inbox_state_and_cancel_routes(
    server: RunningServer
) -> None:
    from tidings.client import AsyncTidingsClient
    from tidings.client.errors import Conflict
    from tidings.client.models import Action

    token = server.token("orders-svc", "service")
    async with AsyncTidingsClient(server.url, token) as producer:
        sent = await producer.notify(**NOTE, user_id="alice", url="https://shop.example/o",
                                     actions=[{"label": "Open", "url": "https://x.example"}],
                                     expires_at=instant(hours=1))
        later = await producer.notify(**NOTE, user_id="alice", scheduled_at=instant(hours=1),
                                      idempotency_key="k-later")
        assert await producer.cancel_by_key("k-later") == 1
        assert await producer.cancel_by_key("k-later") == 0
        with pytest.raises(Conflict):
            await producer.cancel(sent.id)  # type: ignore[union-attr]
    assert sent.actions == (Action("Open", "https://x.example"),)  # type: ignore[union-attr]
    assert later.status == "pending"  # type: ignore[union-attr]
    async with AsyncTidingsClient(server.url, server.token("alice")) as alice:
        assert (await alice.page()).unseen_count == 1
        assert await alice.mark_seen([sent.id]) == 1  # type: ignore[union-attr]
        assert await alice.read_all(channel="default") == 1
        archived = await alice.archive(sent.id)  # type: ignore[union-attr]
        assert archived.archived_at is not None
        assert [n.id async for n in alice.list_notifications(archived=True)] == [archived.id]
        assert (await alice.unarchive(archived.id)).archived_at is None
        assert (await alice.page()).unseen_count == 0
