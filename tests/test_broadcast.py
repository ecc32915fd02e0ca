"""Broadcasts (DESIGN section 13): one stored notification that every user lists, replays
and acts on with a state of their own: live on every connected socket, in every list from
its `created_at` on, read per user, deleted per user; admins only; in-app only; refused
with a 422 naming the field when combined with an audience (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer
from tidings.client import AsyncTidingsClient, Broadcast, Notification
from tidings.domain.model import utcnow
from tidings.jobs import maintenance
from tidings.store.tables import broadcast_states, broadcasts, notifications

pytestmark = pytest.mark.both_databases

BASE = "/api/notifications"
NEWS = {"broadcast": True, "type": "maintenance", "title": "Maintenance tonight",
        "message": "From 22:00 UTC the service may pause for ten minutes."}


async def broadcast(server: RunningServer, key: str | None = None,
                    **fields: Any) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    async with server.http("ops", "admin") as http:
        response = await http.post(BASE, json={**NEWS, **fields}, headers=headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def listed(server: RunningServer, user: str, **params: str) -> dict[str, Any]:
    async with server.http(user) as http:
        response = await http.get(BASE, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def direct(server: RunningServer, user: str, title: str) -> dict[str, Any]:
    async with server.http("orders", "service") as http:
        response = await http.post(BASE, json={"user_id": user, "type": "order",
                                               "title": title, "message": "m"})
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    return note


async def test_a_broadcast_is_one_row_every_user_lists_with_a_state_of_their_own(
        server: RunningServer) -> None:
    older = await direct(server, "alice", "older")
    answer = await broadcast(server)
    assert set(answer) == {"broadcast", "id"} and answer["broadcast"] is True
    newer = await direct(server, "alice", "newer")

    alice = await listed(server, "alice")
    assert [item["id"] for item in alice["items"]] == [newer["id"], answer["id"], older["id"]]
    shared = alice["items"][1]
    assert (shared["title"], shared["user_id"], shared["status"]) == (
        "Maintenance tonight", "alice", "pending")
    assert [d["medium"] for d in shared["deliveries"]] == ["in_app"]
    assert (alice["unread_count"], alice["unseen_count"]) == (3, 3)
    # A user who has nothing of their own (nor any row anywhere) lists it too.
    carol = await listed(server, "carol")
    assert [item["id"] for item in carol["items"]] == [answer["id"]]

    async with server.http("alice") as http:
        read = await http.put(f"{BASE}/{answer['id']}/read")
        assert read.status_code == 200, read.text
        assert read.json()["status"] == "read" and read.json()["read_at"] is not None
        again = await http.put(f"{BASE}/{answer['id']}/read")
        assert again.json()["read_at"] == read.json()["read_at"]  # idempotent
        fetched = (await http.get(f"{BASE}/{answer['id']}")).json()
        assert fetched["status"] == "read"
    # Carol's state is her own.
    async with server.http("carol") as http:
        assert (await http.get(f"{BASE}/{answer['id']}")).json()["status"] == "pending"
    assert (await listed(server, "alice", unread="true"))["unread_count"] == 2

    async with server.http("carol") as http:
        assert (await http.delete(f"{BASE}/{answer['id']}")).status_code == 204
        assert (await http.get(f"{BASE}/{answer['id']}")).status_code == 404
        assert (await http.delete(f"{BASE}/{answer['id']}")).status_code == 404
    assert (await listed(server, "carol"))["items"] == []
    assert [i["id"] for i in (await listed(server, "alice"))["items"]][1] == answer["id"]

    async with server.services.db.begin() as conn:
        rows = (await conn.execute(sa.select(notifications.c.user_id).where(
            notifications.c.id == answer["id"]))).scalars().all()
        assert rows == [""]  # stored once, for no user in particular
        states = (await conn.execute(sa.select(
            broadcast_states.c.user_id, broadcast_states.c.status, broadcast_states.c.deleted_at,
        ).order_by(broadcast_states.c.user_id))).all()
    assert [(user, status, deleted is not None) for user, status, deleted in states] == [
        ("alice", "read", False), ("carol", "pending", True)]


async def test_seen_read_all_and_archive_cover_broadcasts(server: RunningServer) -> None:
    first, second = await broadcast(server), await broadcast(server, title="Second")
    own = await direct(server, "alice", "own")
    async with server.http("alice") as http:
        seen = await http.post(f"{BASE}/seen", json={"ids": [first["id"]]})
        assert seen.json() == {"count": 1}, seen.text
        assert (await http.post(f"{BASE}/seen", json={"ids": [first["id"]]})).json() == {
            "count": 0}
        assert (await http.post(f"{BASE}/seen", json={})).json() == {"count": 2}
        archived = await http.post(f"{BASE}/{second['id']}/archive")
        assert archived.status_code == 200 and archived.json()["archived_at"] is not None
        assert (await http.post(f"{BASE}/{second['id']}/archive")).status_code == 200
    page = await listed(server, "alice")
    assert [i["id"] for i in page["items"]] == [own["id"], first["id"]]
    assert page["unseen_count"] == 0
    assert [i["id"] for i in (await listed(server, "alice", archived="true"))["items"]] == [
        second["id"]]
    async with server.http("alice") as http:
        assert (await http.post(f"{BASE}/read-all", json={})).json() == {"count": 3}
        assert (await http.post(f"{BASE}/read-all", json={})).json() == {"count": 0}
        back = await http.post(f"{BASE}/{second['id']}/unarchive")
        assert back.status_code == 200 and back.json()["status"] == "read"
    # Bob read nothing: everything is unread for him.
    assert (await listed(server, "bob"))["unread_count"] == 2


async def test_sockets_receive_a_broadcast_live_and_replay_it_after_its_created_at(
        server: RunningServer, connect: Any) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    answer = await broadcast(server)
    for tab in (alice, bob):
        got = await tab.next("notification")
        assert (got["id"], got["title"]) == (answer["id"], "Maintenance tonight")
    assert (await alice.call("markAsRead", {"id": answer["id"]}))["ok"] is True
    status = await alice.next("notificationStatus")
    assert (status["id"], status["status"]) == (answer["id"], "read")
    assert bob.queue("notificationStatus").empty()

    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    later = await connect("dave")  # connects after the broadcast: replay brings it
    assert await later.call("requestMissedNotifications", {"since": since}) == {
        "ok": True, "count": 1}
    assert (await later.next("notification"))["id"] == answer["id"]
    future = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert await later.call("requestMissedNotifications", {"since": future}) == {
        "ok": True, "count": 0}


async def test_a_scheduled_broadcast_is_nobodys_until_due_and_can_be_canceled(
        server: RunningServer) -> None:
    answer = await broadcast(server, key="launch-1",
                             scheduled_at="2998-01-01T00:00:00Z")
    assert await broadcast(server, key="launch-1",
                           scheduled_at="2998-01-01T00:00:00Z") == answer  # a repeat
    assert (await listed(server, "alice"))["items"] == []
    async with server.http("alice") as http:
        assert (await http.put(f"{BASE}/{answer['id']}/read")).status_code == 404
    async with server.http("ops", "admin") as http:
        canceled = await http.post(f"{BASE}/{answer['id']}/cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        assert (await http.post(f"{BASE}/cancel", json={"idempotency_key": "launch-1"})
                ).json() == {"count": 0}


@pytest.mark.parametrize(("fields", "field"), [
    ({"user_id": "alice"}, "user_id"),
    ({"user_ids": ["alice", "bob"]}, "user_ids"),
    ({"channel": "default"}, "channel"),
    ({"media": ["in_app", "email"]}, "media"),
    ({"escalation": [{"after_seconds": 60, "media": ["email"]}]}, "escalation"),
    ({"digest": {"window_seconds": 60}}, "digest"),
    ({"broadcast": "yes"}, "broadcast"),
])
async def test_a_broadcast_with_an_audience_or_another_medium_is_a_422_naming_it(
        server: RunningServer, fields: dict[str, Any], field: str) -> None:
    async with server.http("ops", "admin") as http:
        response = await http.post(BASE, json={**NEWS, **fields})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].split(".")[0] == field.split(".")[0]
    async with server.services.db.begin() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(broadcasts))
                ).scalar_one() == 0


async def test_only_an_admin_may_broadcast(server: RunningServer) -> None:
    async with server.http("orders", "service") as http:
        response = await http.post(BASE, json=NEWS)
    assert response.status_code == 403, response.text
    async with server.http("alice") as http:
        assert (await http.post(BASE, json=NEWS)).status_code == 403
    async with server.http() as http:
        assert (await http.post(BASE, json=NEWS)).status_code == 401


async def test_a_batch_may_hold_a_broadcast(server: RunningServer) -> None:
    async with server.http("ops", "admin") as http:
        response = await http.post(f"{BASE}/batch", json={"items": [
            NEWS, {**NEWS, "user_id": "alice"}]})
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["status"] == 202 and first["broadcast"] is True
    assert second["status"] == 422 and second["error"]["field"] == "user_id"
    assert [i["id"] for i in (await listed(server, "zoe"))["items"]] == [first["id"]]


async def test_the_python_client_answers_a_broadcast_with_its_id(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token("ops", "admin")) as client:
        sent = await client.notify(type="news", title="Hello all", message="m",
                                   broadcast=True)
        assert isinstance(sent, Broadcast)
        both = await client.notify_many([{**NEWS, "title": "In a batch"},
                                         {"type": "x", "title": "t", "message": "m",
                                          "user_id": "alice"}])
    assert isinstance(both[0], Broadcast) and isinstance(both[1], Notification)
    async with AsyncTidingsClient(server.url, server.token("erin")) as client:
        mine = [note.id async for note in client.list_notifications()]
    assert mine == [both[0].id, sent.id]


async def test_retention_takes_broadcasts_and_everyones_states_of_them(
        server: RunningServer) -> None:
    answer = await broadcast(server)
    async with server.http("alice") as http:
        assert (await http.put(f"{BASE}/{answer['id']}/read")).status_code == 200
    db = server.services.db
    report = await maintenance.apply_retention(db, utcnow() + timedelta(days=400),
                                               retention_days=1)
    assert report.partitions or report.notifications
    async with db.begin() as conn:
        for table in (broadcasts, broadcast_states):
            count = sa.select(sa.func.count()).select_from(table)
            assert (await conn.execute(count)).scalar_one() == 0
    assert (await listed(server, "alice"))["items"] == []


async def test_a_scheduled_broadcast_reaches_every_socket_when_due(
        server: RunningServer, connect: Any) -> None:
    alice, bob = await connect("alice"), await connect("bob")
    # Far enough ahead that a busy machine still lists nothing before it is due.
    due = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    answer = await broadcast(server, scheduled_at=due)
    assert (await listed(server, "alice"))["items"] == []  # not before its time
    for tab in (alice, bob):
        assert (await tab.next("notification", timeout=20))["id"] == answer["id"]
    assert [i["id"] for i in (await listed(server, "bob"))["items"]] == [answer["id"]]


async def test_an_expired_broadcast_leaves_lists_and_bulk_changes_as_an_own_one_does(
        server: RunningServer) -> None:
    answer = await broadcast(server, expires_at=(datetime.now(UTC) + timedelta(hours=1))
                             .isoformat())
    async with server.http("alice") as http:
        assert (await http.put(f"{BASE}/{answer['id']}/read")).status_code == 200
    async with server.services.db.begin() as conn:  # as if its hour had passed
        await conn.execute(notifications.update().where(notifications.c.id == answer["id"])
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    async with server.http("alice") as http:
        # Like a user's own expired notification: not archived, seen or read in bulk...
        assert (await http.post(f"{BASE}/{answer['id']}/archive")).status_code == 404
        assert (await http.post(f"{BASE}/seen", json={})).json() == {"count": 0}
        assert (await http.post(f"{BASE}/read-all", json={})).json() == {"count": 0}
        # ...still there by id, and deleted by id.
        assert (await http.get(f"{BASE}/{answer['id']}")).status_code == 200
        assert (await http.delete(f"{BASE}/{answer['id']}")).status_code == 204
        assert (await http.get(f"{BASE}/{answer['id']}")).status_code == 404
    assert (await listed(server, "alice"))["items"] == []
    assert (await listed(server, "bob"))["items"] == []


async def test_a_broadcast_already_out_cannot_be_canceled(server: RunningServer) -> None:
    answer = await broadcast(server)
    async with server.http("ops", "admin") as http:
        assert (await http.post(f"{BASE}/{answer['id']}/cancel")).status_code == 409
    async with server.http("alice") as http:
        assert (await http.get(f"{BASE}/{answer['id']}")).json()["status"] == "pending"
