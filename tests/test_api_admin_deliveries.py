"""Admin HTTP API: browsing deliveries, one delivery's history, replaying dead letters.

Notifications are created through the API with `"media": ["email"]` (no email provider is
configured, so their email deliveries stay pending); the states a worker would leave behind
(dead letters with their attempts, failed notifications) are then written with SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings
from tidings.config.settings import Settings
from tidings.delivery.outcome import Outcome
from tidings.domain.cursor import encode_cursor
from tidings.domain.dead_letters import ReplayFilter
from tidings.services.dead_letters import DeadLetterService
from tidings.store.tables import delivery_attempts as attempts
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications
from tidings.wakeup import Waiters
from tidings.wakeup.local import LocalSignal

pytestmark = pytest.mark.both_databases


@pytest.fixture
def settings(database_url: str) -> Settings:
    """No delivery workers in these servers: the deliveries stay in the states the tests
    put them in. Email and push are configured (never reached), so their deliveries are
    written `pending` rather than `skipped`."""
    return make_settings(database_url, workers_in_serve=False, smtp_host="127.0.0.1",
                         smtp_port=9, push_service_url="http://127.0.0.1:9/push")

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = ("ops", "admin")


async def notify(server: RunningServer, user: str, count: int = 1) -> list[str]:
    ids = []
    async with server.http("orders-svc", "service") as http:
        for _ in range(count):
            response = await http.post("/api/notifications",
                                       json={**NOTE, "user_id": user, "media": ["email"]})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


async def email_delivery(server: RunningServer, notification_id: str) -> int:
    async with server.services.db.begin() as conn:
        found = await conn.execute(sa.select(deliveries.c.id).where(
            deliveries.c.notification_id == notification_id, deliveries.c.medium == "email"))
        return int(found.scalar_one())


async def set_delivery(server: RunningServer, delivery_id: int, **values: Any) -> None:
    async with server.services.db.begin() as conn:
        await conn.execute(deliveries.update().where(deliveries.c.id == delivery_id)
                           .values(**values))


async def kill(server: RunningServer, notification_id: str, *, at: datetime = BASE,
               tries: int = 3, medium: str = "email") -> int:
    """What the queue leaves when it gives up: a dead row (a stale lease on it, to show a
    replay clears it), its attempts, and the notification `failed`."""
    delivery_id = await email_delivery(server, notification_id)
    async with server.services.db.begin() as conn:
        await conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(
            status="dead", attempts=tries, last_error="550 no such user", updated_at=at,
            next_attempt_at=at, locked_until=at, lease_token="stale-lease", medium=medium))
        await conn.execute(attempts.insert(), [
            {"delivery_id": delivery_id, "notification_id": notification_id,
             "at": at - timedelta(minutes=tries - n),
             "outcome": (Outcome.TRANSIENT if n < tries - 1 else Outcome.PERMANENT).value,
             "code": f"45{n}" if n < tries - 1 else "550", "error": f"try {n}",
             "elapsed_ms": 10 + n}
            for n in range(tries)
        ])
        await conn.execute(notifications.update().where(notifications.c.id == notification_id)
                           .values(status="failed"))
    return delivery_id


async def status_of(server: RunningServer, user: str, notification_id: str) -> str:
    async with server.http(user) as http:
        response = await http.get(f"/api/notifications/{notification_id}")
    assert response.status_code == 200
    return str(response.json()["status"])


async def all_pages(server: RunningServer, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    async with server.http(*ADMIN) as http:
        for _ in range(100):  # bounded: far more pages than any test makes
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await http.get("/api/admin/deliveries", params=query)
            assert response.status_code == 200, response.text
            body = response.json()
            seen.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return seen
    raise AssertionError("paging did not end")


async def test_admin_routes_need_the_admin_role(server: RunningServer) -> None:
    routes = [("GET", "/api/admin/deliveries"), ("GET", "/api/admin/deliveries/1"),
              ("POST", "/api/admin/deliveries/1/replay"),
              ("POST", "/api/admin/deliveries/replay"), ("GET", "/api/admin/webhooks"),
              ("POST", "/api/admin/webhooks"), ("DELETE", "/api/admin/webhooks/x")]
    async with server.http() as anon, server.http("alice") as user, \
            server.http("svc", "service") as service:
        for method, path in routes:
            assert (await anon.request(method, path)).status_code == 401
            assert (await user.request(method, path)).status_code == 403
            denied = await service.request(method, path)
            assert denied.status_code == 403
            assert denied.json()["error"]["code"] == "forbidden"


async def test_list_filters_by_status_medium_user_and_since(server: RunningServer) -> None:
    alice = await notify(server, "alice", 3)
    bob = await notify(server, "bob", 2)
    dead_alice = await kill(server, alice[0], at=BASE)
    dead_bob = await kill(server, bob[0], at=BASE + timedelta(hours=2))
    pushed = await kill(server, bob[1], at=BASE + timedelta(hours=3), medium="push")

    def ids(items: list[dict[str, Any]]) -> list[int]:
        return [item["id"] for item in items]

    assert ids(await all_pages(server, status="dead")) == [pushed, dead_bob, dead_alice]
    assert ids(await all_pages(server, status="dead", medium="email")) == [dead_bob, dead_alice]
    assert ids(await all_pages(server, status="dead", user_id="alice")) == [dead_alice]
    since = (BASE + timedelta(hours=1)).isoformat()
    assert ids(await all_pages(server, status="dead", since=since)) == [pushed, dead_bob]
    pending = await all_pages(server, status="pending")
    assert {item["notification_id"] for item in pending} == {alice[1], alice[2]}
    assert await all_pages(server, medium="webhook") == []
    item = (await all_pages(server, user_id="alice", status="dead"))[0]
    assert item == {
        "id": dead_alice, "notification_id": alice[0], "user_id": "alice", "medium": "email",
        "status": "dead", "attempts": 3, "last_error": "550 no such user",
        "next_attempt_at": "2026-11-01T12:00:00Z", "updated_at": "2026-11-01T12:00:00Z",
        "provider_message_id": None, "step": 0,
    }


async def test_paging_walks_every_delivery_once_newest_first(server: RunningServer) -> None:
    made = await notify(server, "carol", 7)
    rows = [await email_delivery(server, note) for note in made]
    # Three rows share one instant: the id breaks the tie, so none is skipped or repeated.
    for n, delivery_id in enumerate(rows):
        await set_delivery(server, delivery_id, updated_at=BASE + timedelta(seconds=min(n, 3)))
    async with server.http(*ADMIN) as http:
        first = (await http.get("/api/admin/deliveries", params={"limit": 3})).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    walked = await all_pages(server, limit=3)
    order = [(item["updated_at"], item["id"]) for item in walked]
    assert [item["id"] for item in walked] == sorted(rows, key=lambda r: (
        min(rows.index(r), 3), r), reverse=True)
    assert order == sorted(order, reverse=True)
    assert len({item["id"] for item in walked}) == len(walked) == 7
    assert await all_pages(server, limit=100) == walked


async def test_bad_list_queries_answer_422_naming_the_field(server: RunningServer) -> None:
    foreign = encode_cursor((BASE, "not-a-delivery"))
    cases = [({"since": "yesterday"}, "since"), ({"status": "lost"}, "status"),
             ({"medium": "fax"}, "medium"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
             ({"cursor": "garbage!"}, "cursor"), ({"cursor": foreign}, "cursor"),
             ({"user_id": ""}, "user_id"), ({"user_id": "a\x00b"}, "user_id"),
             ({"user_id": "x" * 256}, "user_id"), ({"since": "2026-13-01"}, "since"),
             ({"since": "0001-01-01T00:00:00+01:00"}, "since")]
    async with server.http(*ADMIN) as http:
        for params, field in cases:
            response = await http.get("/api/admin/deliveries", params=params)
            assert response.status_code == 422, (params, response.text)
            assert response.json()["error"]["field"] == field


async def test_one_delivery_shows_its_attempt_count_and_history(server: RunningServer) -> None:
    [note] = await notify(server, "dave")
    delivery_id = await kill(server, note, tries=3)
    async with server.http(*ADMIN) as http:
        body = (await http.get(f"/api/admin/deliveries/{delivery_id}")).json()
        for missing in ("999999", "abc", "-1", "1e3", "99999999999999999999", "\u0663"):
            response = await http.get(f"/api/admin/deliveries/{missing}")
            assert response.status_code == 404, missing
    assert body["attempts"] == 3 and body["status"] == "dead"
    assert [entry["error"] for entry in body["history"]] == ["try 0", "try 1", "try 2"]
    assert body["history"][0] == {
        "at": "2026-11-01T11:57:00Z", "outcome": "transient", "code": "450",
        "error": "try 0", "provider_id": None, "device_id": None, "elapsed_ms": 10,
        "provider": None,
    }
    assert body["history"][-1]["outcome"] == "permanent"


async def test_replaying_a_dead_letter_requeues_it_and_reopens_its_notification(
    server: RunningServer, connect: Any
) -> None:
    [note] = await notify(server, "erin")
    delivery_id = await kill(server, note)
    assert await status_of(server, "erin", note) == "failed"
    socket = await connect("erin")
    before = datetime.now(UTC)
    async with server.http(*ADMIN) as http:
        response = await http.post(f"/api/admin/deliveries/{delivery_id}/replay")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending" and body["attempts"] == 0
    assert len(body["history"]) == 3  # kept
    assert body["last_error"] == "550 no such user"  # kept until the next attempt
    due = datetime.fromisoformat(body["next_attempt_at"])
    assert before <= due <= datetime.now(UTC)
    async with server.services.db.begin() as conn:
        lease = (await conn.execute(sa.select(deliveries.c.locked_until, deliveries.c.lease_token)
                                    .where(deliveries.c.id == delivery_id))).one()
    assert tuple(lease) == (None, None)
    assert await status_of(server, "erin", note) == "pending"
    change = await socket.next("notificationStatus")
    assert change == {"id": note, "status": "pending", "delivered_at": None, "read_at": None}


async def test_only_dead_letters_can_be_replayed(server: RunningServer) -> None:
    [note] = await notify(server, "frank")
    delivery_id = await email_delivery(server, note)
    async with server.http(*ADMIN) as http:
        pending = await http.post(f"/api/admin/deliveries/{delivery_id}/replay")
        missing = await http.post("/api/admin/deliveries/424242/replay")
        not_an_id = await http.post("/api/admin/deliveries/x1/replay")
        await kill(server, note)
        first = await http.post(f"/api/admin/deliveries/{delivery_id}/replay")
        again = await http.post(f"/api/admin/deliveries/{delivery_id}/replay")
    assert pending.status_code == 409
    assert pending.json()["error"]["code"] == "conflict"
    assert missing.status_code == 404 and not_an_id.status_code == 404
    assert first.status_code == 200
    assert again.status_code == 409


async def test_replay_by_filter_counts_first_then_replays_what_matches(
    server: RunningServer
) -> None:
    notes = await notify(server, "gina", 5)
    old = [await kill(server, note, at=BASE) for note in notes[:2]]
    new = await kill(server, notes[2], at=BASE + timedelta(days=1))
    pushed = await kill(server, notes[3], at=BASE + timedelta(days=1), medium="push")
    window = {"status": "dead", "medium": "email",
              "since": (BASE + timedelta(hours=1)).isoformat(),
              "until": (BASE + timedelta(days=2)).isoformat().replace("+00:00", "Z")}
    async with server.http(*ADMIN) as http:
        dry = await http.post("/api/admin/deliveries/replay", json={**window, "dry_run": True})
        assert dry.json() == {"count": 1, "more": False, "dry_run": True}
        assert [i["id"] for i in (await all_pages(server, status="dead"))] == [
            pushed, new, *sorted(old, reverse=True)]
        done = await http.post("/api/admin/deliveries/replay", json=window)
        assert done.json() == {"count": 1, "more": False, "dry_run": False}
        assert [i["id"] for i in await all_pages(server, status="dead")] == [
            pushed, *sorted(old, reverse=True)]
        everything = await http.post("/api/admin/deliveries/replay", json={"status": "dead"})
        assert everything.json() == {"count": 3, "more": False, "dry_run": False}
    assert await all_pages(server, status="dead") == []
    for note in notes[:4]:
        assert await status_of(server, "gina", note) == "pending"


async def test_bad_replay_bodies_answer_422_naming_the_field(server: RunningServer) -> None:
    cases = [({"status": "pending"}, "status"), ({}, "status"),
             ({"status": "dead", "since": "soon"}, "since"),
             ({"status": "dead", "until": 17}, "until"),
             ({"status": "dead", "medium": "pigeon"}, "medium"),
             ({"status": "dead", "dry_run": "yes"}, "dry_run"),
             ({"status": "dead", "everything": True}, "everything")]
    async with server.http(*ADMIN) as http:
        for body, field in cases:
            response = await http.post("/api/admin/deliveries/replay", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["field"] == field


async def test_one_replay_call_takes_at_most_ten_thousand(server: RunningServer) -> None:
    [note] = await notify(server, "hank")
    rows = [{"notification_id": note, "user_id": "hank", "medium": "email", "status": "dead",
             "attempts": 4, "next_attempt_at": BASE, "created_at": BASE, "updated_at": BASE}
            for _ in range(10_001)]
    async with server.services.db.begin() as conn:
        await conn.execute(deliveries.insert(), rows)
    async with server.http(*ADMIN) as http:
        dry = await http.post("/api/admin/deliveries/replay",
                              json={"status": "dead", "dry_run": True})
        assert dry.json() == {"count": 10_000, "more": True, "dry_run": True}
        first = await http.post("/api/admin/deliveries/replay", json={"status": "dead"})
        assert first.json() == {"count": 10_000, "more": True, "dry_run": False}
        rest = await http.post("/api/admin/deliveries/replay", json={"status": "dead"})
        assert rest.json() == {"count": 1, "more": False, "dry_run": False}


async def test_replay_wakes_the_workers_after_each_committed_batch(
    server: RunningServer
) -> None:
    notes = await notify(server, "iris", 5)
    for note in notes:
        await kill(server, note)
    wakes: list[int] = []
    signal = LocalSignal(Waiters(queued=[lambda: wakes.append(1)]))
    service = DeadLetterService(server.services.db, server.services.fanout, signal,
                                batch_size=2)
    outcome = await service.replay_many(ReplayFilter(), dry_run=False)
    assert (outcome.count, outcome.more) == (5, False)
    assert len(wakes) == 3  # batches of 2, 2 and 1
    nothing = await service.replay_many(ReplayFilter(), dry_run=False)
    assert nothing.count == 0 and len(wakes) == 3  # nothing replayed: nobody woken
    [one] = await notify(server, "iris")
    await service.replay(str(await kill(server, one)))
    assert len(wakes) == 4
