"""HTTP API: creating, listing, reading, marking and deleting notifications."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.both_databases

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


async def create(server: RunningServer, **fields: object) -> dict:
    async with server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_returns_the_stored_notification(server: RunningServer) -> None:
    body = await create(server, user_id="alice", channel="orders", priority="high",
                        data={"order": 7})
    assert set(body) >= {"id", "user_id", "type", "title", "message", "channel", "priority",
                         "status", "scheduled_at", "created_at", "delivered_at", "read_at",
                         "data"}
    assert body["user_id"] == "alice"
    assert body["channel"] == "orders"
    assert body["priority"] == "high"
    assert body["status"] == "pending"
    assert body["created_at"].endswith("Z")
    assert body["delivered_at"] is None and body["read_at"] is None
    async with server.http("alice") as http:
        fetched = await http.get(f"/api/notifications/{body['id']}")
    assert fetched.status_code == 200
    # The deliveries move on by themselves (the workers claim email and push at once).
    assert {**fetched.json(), "deliveries": None} == {**body, "deliveries": None}
    assert [d["medium"] for d in body["deliveries"]] == [
        "chat", "email", "in_app", "push", "sms"]


async def test_admin_may_create_and_plain_user_may_not(server: RunningServer) -> None:
    async with server.http("root", "admin") as http:
        ok = await http.post("/api/notifications", json={**NOTE, "user_id": "bob"})
    async with server.http("mallory") as http:
        denied = await http.post("/api/notifications", json={**NOTE, "user_id": "bob"})
    assert ok.status_code == 201
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("header", [
    None,
    "Bearer not-a-jwt",
    "Basic dXNlcjpwYXNz",
    "Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "wrong-secret-" * 3,
                           algorithm="HS256"),
    "Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) - 3600}, SECRET,
                           algorithm="HS256"),
    "Bearer " + jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
])
async def test_missing_malformed_expired_or_foreign_tokens_get_401(
    server: RunningServer, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    async with server.http() as http:
        for method, path in [("GET", "/api/notifications"),
                             ("POST", "/api/notifications"),
                             ("GET", "/api/notifications/preferences")]:
            response = await http.request(method, path, headers=headers, json=NOTE)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == "authentication_failed"


async def test_user_ids_create_one_copy_each_and_answer_202(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_ids": ["u1", "u2", "u2", "u3"]})
    assert response.status_code == 202
    assert response.json()["count"] == 3
    for user in ("u1", "u2", "u3"):
        async with server.http(user) as http:
            items = (await http.get("/api/notifications")).json()["items"]
        assert len(items) == 1 and items[0]["user_id"] == user


async def test_list_is_newest_first_with_cursor_pages_and_unread_count(
    server: RunningServer,
) -> None:
    created = [await create(server, user_id="alice", title=f"n{i}") for i in range(5)]
    await create(server, user_id="bob")
    async with server.http("alice") as http:
        first = (await http.get("/api/notifications", params={"limit": 2})).json()
        second = (await http.get("/api/notifications",
                                 params={"limit": 2, "cursor": first["next_cursor"]})).json()
        third = (await http.get("/api/notifications",
                                params={"limit": 2, "cursor": second["next_cursor"]})).json()
    titles = [item["title"] for page in (first, second, third) for item in page["items"]]
    assert titles == ["n4", "n3", "n2", "n1", "n0"]
    assert third["next_cursor"] is None
    assert first["unread_count"] == 5
    assert {item["id"] for page in (first, second, third) for item in page["items"]} == {
        item["id"] for item in created
    }


async def test_list_filters_by_status_unread_channel_and_type(server: RunningServer) -> None:
    a = await create(server, user_id="alice", channel="orders", type="shipped")
    b = await create(server, user_id="alice", channel="billing", type="invoice")
    async with server.http("alice") as http:
        await http.put(f"/api/notifications/{a['id']}/read")

        async def ids(**params: str) -> list[str]:
            page = (await http.get("/api/notifications", params=params)).json()
            return [item["id"] for item in page["items"]]

        assert await ids(status="read") == [a["id"]]
        assert await ids(unread="true") == [b["id"]]
        assert await ids(channel="billing") == [b["id"]]
        assert await ids(type="shipped") == [a["id"]]
        page = (await http.get("/api/notifications")).json()
        assert page["unread_count"] == 1


async def test_mark_read_sets_status_and_time_and_is_idempotent(server: RunningServer) -> None:
    note = await create(server, user_id="alice")
    async with server.http("alice") as http:
        first = await http.put(f"/api/notifications/{note['id']}/read")
        second = await http.put(f"/api/notifications/{note['id']}/read")
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["status"] == "read"
    assert first.json()["read_at"] is not None
    assert first.json()["delivered_at"] is not None
    assert second.json()["read_at"] == first.json()["read_at"]


async def test_other_users_notifications_answer_404(server: RunningServer) -> None:
    note = await create(server, user_id="alice")
    async with server.http("bob") as http:
        for method, path in [("GET", f"/api/notifications/{note['id']}"),
                             ("PUT", f"/api/notifications/{note['id']}/read"),
                             ("DELETE", f"/api/notifications/{note['id']}"),
                             ("GET", "/api/notifications/not-a-uuid"),
                             ("GET", "/api/notifications/01a21873-2585-7090-aefe-aaf197d430f1")]:
            response = await http.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] == "not_found"
    async with server.http("alice") as http:
        still = await http.get(f"/api/notifications/{note['id']}")
    assert still.json()["status"] == "pending"


async def test_delete_answers_204_then_404(server: RunningServer) -> None:
    note = await create(server, user_id="alice")
    async with server.http("alice") as http:
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 204
        assert (await http.delete(f"/api/notifications/{note['id']}")).status_code == 404
        assert (await http.get(f"/api/notifications/{note['id']}")).status_code == 404
        assert (await http.get("/api/notifications")).json()["items"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"user_id": "a", "title": "t", "message": "m"}, "type"),
    ({"user_id": "a", "type": "t", "message": "m"}, "title"),
    ({"user_id": "a", "type": "t", "title": "", "message": "m"}, "title"),
    ({**NOTE, "user_id": "a", "user_ids": ["b"]}, "body"),
    ({**NOTE, "user_ids": []}, "user_ids"),
    ({**NOTE, "user_id": "a", "priority": "urgent"}, "priority"),
    ({**NOTE, "user_id": "a", "channel": "user:bob"}, "channel"),
    ({**NOTE, "user_id": "a", "media": ["pigeon"]}, "media.0"),
    ({**NOTE, "user_id": "a", "media": ["email", "email"]}, "body"),
    ({**NOTE, "user_id": "a", "scheduled_at": "tomorrow"}, "scheduled_at"),
    ({**NOTE, "user_id": "a", "data": [1, 2]}, "data"),
    ({**NOTE, "user_id": "a", "unknown": 1}, "unknown"),
    ({**NOTE, "user_id": 5}, "user_id"),
    ({**NOTE, "user_id": "a", "template": "welcome"}, "template"),
])
async def test_invalid_create_answers_422_naming_the_field(
    server: RunningServer, body: dict, field: str
) -> None:
    async with server.http("svc", "service") as http:
        response = await http.post("/api/notifications", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field
    async with server.http("a") as http:
        assert (await http.get("/api/notifications")).json()["items"] == []


async def test_malformed_json_and_wrong_types_answer_4xx(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        broken = await http.post("/api/notifications", content=b"{not json",
                                 headers={"content-type": "application/json"})
        listed = await http.get("/api/notifications", params={"limit": "0"})
        bad_status = await http.get("/api/notifications", params={"status": "lost"})
        bad_cursor = await http.get("/api/notifications", params={"cursor": "!!!"})
        wrong_method = await http.patch("/api/notifications")
        unknown = await http.get("/api/nothing-here")
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_json"
    assert listed.status_code == 422 and listed.json()["error"]["field"] == "limit"
    assert bad_status.status_code == 422 and bad_status.json()["error"]["field"] == "status"
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404


async def test_oversized_body_answers_413_and_stores_nothing(server: RunningServer) -> None:
    huge = {**NOTE, "user_id": "alice", "message": "x" * (server.settings.max_body_bytes + 1)}
    async with server.http("svc", "service") as http:
        declared = await http.post("/api/notifications", json=huge)

        async def chunks():
            yield b'{"user_id": "alice", "message": "'
            for _ in range(server.settings.max_body_bytes // 65536 + 1):
                yield b"x" * 65536
            yield b'"}'

        streamed = await http.post("/api/notifications", content=chunks(),
                                   headers={"content-type": "application/json"})
        small_streamed = await http.post(
            "/api/notifications",
            content=_once(b'{"user_id": "alice", "type": "t", "title": "t", "message": "m"}'),
            headers={"content-type": "application/json"},
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    assert small_streamed.status_code == 201
    async with server.http("alice") as http:
        assert len((await http.get("/api/notifications")).json()["items"]) == 1


async def _once(data: bytes):
    yield data


async def test_idempotency_key_answers_the_first_result_and_creates_nothing(
    server: RunningServer,
) -> None:
    async with server.http("svc", "service") as http:
        headers = {"Idempotency-Key": "order-7-shipped"}
        first = await http.post("/api/notifications", json={**NOTE, "user_id": "alice"},
                                headers=headers)
        again = await http.post("/api/notifications", json={**NOTE, "user_id": "alice"},
                                headers=headers)
        racing = await asyncio.gather(*[
            http.post("/api/notifications", json={**NOTE, "user_ids": ["x", "y"]},
                      headers={"Idempotency-Key": "batch-1"})
            for _ in range(5)
        ])
        too_long = await http.post("/api/notifications", json={**NOTE, "user_id": "alice"},
                                   headers={"Idempotency-Key": "k" * 300})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert {r.status_code for r in racing} == {202}
    assert {r.json()["count"] for r in racing} == {2}
    assert too_long.status_code == 422
    assert too_long.json()["error"]["field"] == "Idempotency-Key"
    async with server.http("alice") as http:
        assert len((await http.get("/api/notifications")).json()["items"]) == 1
    async with server.http("x") as http:
        assert len((await http.get("/api/notifications")).json()["items"]) == 1


async def test_scheduled_notification_stays_hidden_until_due_then_arrives_live(
    server: RunningServer, connect
) -> None:
    alice = await connect("alice")
    # Far enough ahead that a busy machine still reads the list before it is due.
    due = datetime.now(UTC) + timedelta(seconds=4)
    note = await create(server, user_id="alice", scheduled_at=due.isoformat())
    assert note["scheduled_at"] is not None
    async with server.http("alice") as http:
        assert (await http.get("/api/notifications")).json()["items"] == []
        assert (await http.get(f"/api/notifications/{note['id']}")).status_code == 404
    received = await alice.next("notification", timeout=20)
    assert received["id"] == note["id"]
    assert datetime.fromisoformat(received["scheduled_at"]) <= datetime.now(UTC)
    async with server.http("alice") as http:
        items = (await http.get("/api/notifications")).json()["items"]
    assert [item["id"] for item in items] == [note["id"]]


async def test_scheduled_in_the_past_is_delivered_at_once(
    server: RunningServer, connect
) -> None:
    alice = await connect("alice")
    past = datetime.now(UTC) - timedelta(hours=1)
    note = await create(server, user_id="alice", scheduled_at=past.isoformat())
    assert (await alice.next("notification"))["id"] == note["id"]


async def test_openapi_document_lists_the_contract_routes(server: RunningServer) -> None:
    async with server.http() as http:
        spec = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert docs.status_code == 200
    paths = spec["paths"]
    assert {"post", "get"} <= set(paths["/api/notifications"])
    assert {"get", "delete"} <= set(paths["/api/notifications/{notification_id}"])
    assert "put" in paths["/api/notifications/{notification_id}/read"]
    assert {"get", "put"} <= set(paths["/api/notifications/preferences"])
    assert "post" in paths["/api/notifications/preferences/bulk"]
