"""HTTP preference endpoints and the media decision they drive."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer, stored_media
from tidings.domain.model import utcnow
from tidings.store import subscriptions

pytestmark = pytest.mark.both_databases


async def test_preferences_start_empty_and_put_stores_one(server: RunningServer) -> None:
    async with server.http("alice") as http:
        assert (await http.get("/api/notifications/preferences")).json() == {"items": []}
        put = await http.put("/api/notifications/preferences", json={
            "channel": "orders", "notification_type": "shipped", "email_enabled": False,
            "push_enabled": True, "in_app_enabled": True})
        listed = (await http.get("/api/notifications/preferences")).json()
    assert put.status_code == 200
    assert put.json() == {"channel": "orders", "notification_type": "shipped",
                          "email_enabled": False, "push_enabled": True, "in_app_enabled": True,
                          "sms_enabled": True, "chat_enabled": True}
    assert listed == {"items": [put.json()]}
    async with server.http("bob") as http:
        assert (await http.get("/api/notifications/preferences")).json() == {"items": []}


async def test_put_defaults_to_wildcards_and_updates_in_place(server: RunningServer) -> None:
    async with server.http("alice") as http:
        await http.put("/api/notifications/preferences", json={"push_enabled": False})
        updated = await http.put("/api/notifications/preferences", json={"email_enabled": False})
        listed = (await http.get("/api/notifications/preferences")).json()["items"]
    assert updated.json() == {"channel": "*", "notification_type": "*", "email_enabled": False,
                              "push_enabled": False, "in_app_enabled": True,
                              "sms_enabled": True, "chat_enabled": True}
    assert listed == [updated.json()]


async def test_bulk_is_all_or_nothing(server: RunningServer) -> None:
    async with server.http("alice") as http:
        good = await http.post("/api/notifications/preferences/bulk", json={"items": [
            {"channel": "orders", "email_enabled": False},
            {"channel": "billing", "push_enabled": False},
        ]})
        bad = await http.post("/api/notifications/preferences/bulk", json={"items": [
            {"channel": "news", "email_enabled": False},
            {"channel": "bad channel", "email_enabled": False},
        ]})
        listed = (await http.get("/api/notifications/preferences")).json()["items"]
    assert good.status_code == 200 and len(good.json()["items"]) == 2
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "items.1.channel"
    assert sorted(item["channel"] for item in listed) == ["billing", "orders"]


@pytest.mark.parametrize("body", [
    {"channel": "orders", "email_enabled": "no"},
    {"channel": "orders", "email_enabled": 0},
    {"channel": "orders", "colour": "red"},
    {"notification_type": "a b"},
    [],
])
async def test_invalid_preference_answers_422(server: RunningServer, body: object) -> None:
    async with server.http("alice") as http:
        response = await http.put("/api/notifications/preferences", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def _media_of(server: RunningServer, notification_id: str) -> set[str]:
    return await stored_media(server, notification_id)


async def test_most_specific_preference_row_wins(server: RunningServer) -> None:
    async with server.http("alice") as http:
        await http.post("/api/notifications/preferences/bulk", json={"items": [
            {"channel": "*", "notification_type": "*", "email_enabled": False,
             "push_enabled": False, "in_app_enabled": True},
            {"channel": "*", "notification_type": "alert", "push_enabled": True,
             "email_enabled": False},
            {"channel": "orders", "notification_type": "*", "email_enabled": True,
             "push_enabled": False},
            {"channel": "orders", "notification_type": "alert", "email_enabled": True,
             "push_enabled": True, "in_app_enabled": False},
        ]})
    # The rows name no SMS or chat flag: those stay enabled.
    cases = {
        ("news", "digest"): {"in_app", "sms", "chat"},
        ("news", "alert"): {"in_app", "push", "sms", "chat"},
        ("orders", "digest"): {"in_app", "email", "sms", "chat"},
        ("orders", "alert"): {"email", "push", "sms", "chat"},
    }
    async with server.http("svc", "service") as http:
        for (channel, type_), expected in cases.items():
            note = (await http.post("/api/notifications", json={
                "user_id": "alice", "channel": channel, "type": type_, "title": "t",
                "message": "m"})).json()
            assert await _media_of(server, note["id"]) == expected, (channel, type_)


async def test_without_preferences_every_medium_is_chosen(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        note = (await http.post("/api/notifications", json={
            "user_id": "newcomer", "type": "t", "title": "t", "message": "m"})).json()
        chosen = (await http.post("/api/notifications", json={
            "user_id": "newcomer", "type": "t", "title": "t", "message": "m",
            "media": ["email"]})).json()
    assert await _media_of(server, note["id"]) == {"in_app", "email", "push", "sms", "chat"}
    assert await _media_of(server, chosen["id"]) == {"email"}


async def test_a_create_naming_media_never_overrides_an_opt_out(server: RunningServer) -> None:
    """Contract section 11: `media` narrows what is considered, preferences still apply,
    on every way a create is written: alone, with a key, to a channel, in a batch."""
    async with server.http("alice") as http:
        await http.put("/api/notifications/preferences", json={
            "channel": "orders", "notification_type": "*", "email_enabled": False})
    async with server.services.db.begin() as conn:
        await subscriptions.add(conn, [("alice", "orders")], utcnow())
    asked = {"type": "shipped", "title": "t", "message": "m", "channel": "orders",
             "media": ["email", "push"]}
    async with server.http("svc", "service") as http:
        alone = (await http.post("/api/notifications", json={**asked, "user_id": "alice"}))
        keyed = (await http.post("/api/notifications", json={**asked, "user_id": "alice"},
                                 headers={"Idempotency-Key": "k-1"}))
        listed = (await http.post("/api/notifications", json={**asked,
                                                              "user_ids": ["alice", "bob"]}))
        to_channel = (await http.post("/api/notifications", json=asked))
        batch = (await http.post("/api/notifications/batch", json={"items": [
            {**asked, "user_id": "alice"}, {**asked, "user_id": "bob"}]}))
    assert (alone.status_code, keyed.status_code, listed.status_code,
            to_channel.status_code, batch.status_code) == (201, 201, 202, 202, 200)
    assert await _media_of(server, alone.json()["id"]) == {"push"}
    assert await _media_of(server, keyed.json()["id"]) == {"push"}
    first, second = batch.json()["results"]
    assert await _media_of(server, first["notification"]["id"]) == {"push"}
    assert await _media_of(server, second["notification"]["id"]) == {"email", "push"}
    async with server.http("alice") as http:
        items = (await http.get("/api/notifications")).json()["items"]
    # the user_ids and channel copies of alice (listed by the inbox even without in-app)
    others = [item["id"] for item in items
              if item["id"] not in (alone.json()["id"], keyed.json()["id"],
                                    first["notification"]["id"])]
    assert len(others) == 2
    for note_id in others:
        assert await _media_of(server, note_id) == {"push"}
