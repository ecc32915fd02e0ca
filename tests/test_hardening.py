"""Hostile and clumsy input that once answered 500 or poisoned an inbox: each answers a
clear 4xx now, on SQLite and PostgreSQL, and never harms another request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Client, RunningServer
from tidings.domain.inputs import MAX_DATA_DEPTH

pytestmark = pytest.mark.both_databases

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def raw(body: dict[str, Any]) -> bytes:
    # json.dumps writes lone surrogates as "\ud800" escapes, as a hostile client would.
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NOTE, "user_id": "alice", "title": "a\u0000b"}, "title"),
        ({**NOTE, "user_id": "alice", "message": "\u0000"}, "message"),
        ({**NOTE, "user_id": "al\u0000ice"}, "user_id"),
        ({**NOTE, "user_ids": ["bob", "al\u0000ice"]}, "user_ids.1"),
        ({**NOTE, "user_id": "alice", "data": {"k": "v\u0000"}}, "data"),
        ({**NOTE, "user_id": "alice", "data": {"k\u0000": 1}}, "data"),
        ({**NOTE, "user_id": "alice", "data": {"k": "\ud800"}}, "data"),
        ({**NOTE, "user_id": "alice", "title": "\udfff"}, "title"),
        ({**NOTE, "user_id": "alice", "data": nested(MAX_DATA_DEPTH + 2)}, "data"),
        ({**NOTE, "user_id": "alice", "scheduled_at": "0001-01-01T00:00:00+01:00"},
         "scheduled_at"),
    ],
)
async def test_what_cannot_be_stored_or_read_back_is_a_422(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    async with server.http("svc", "service") as http:
        response = await http.post("/api/notifications", content=raw(body),
                                   headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        # Nothing was stored, and alice's inbox still reads.
        async with server.http("alice") as alice:
            inbox = await alice.get("/api/notifications")
        assert inbox.status_code == 200 and inbox.json()["items"] == []


async def test_non_finite_numbers_in_data_are_a_422(server: RunningServer) -> None:
    body = b'{"user_id": "alice", "type": "t", "title": "x", "message": "", "data": {"n": NaN}}'
    async with server.http("svc", "service") as http:
        response = await http.post("/api/notifications", content=body,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "data"


async def test_data_as_deep_as_allowed_round_trips(server: RunningServer) -> None:
    data = nested(MAX_DATA_DEPTH)
    async with server.http("svc", "service") as http:
        created = await http.post("/api/notifications",
                                  json={**NOTE, "user_id": "alice", "data": data})
    assert created.status_code == 201
    async with server.http("alice") as alice:
        listed = await alice.get("/api/notifications")
    assert listed.json()["items"][0]["data"] == data


@pytest.mark.parametrize("query", [{"channel": "a\u0000"}, {"type": "\u0000"},
                                   {"channel": "user:bob"}])
async def test_list_filters_that_are_not_names_are_a_422(
    server: RunningServer, query: dict[str, str]
) -> None:
    async with server.http("alice") as alice:
        response = await alice.get("/api/notifications", params=query)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == next(iter(query))


async def test_one_failing_create_does_not_fail_its_neighbours(server: RunningServer) -> None:
    """A create the database refuses (a trigger stands in for any database-side failure
    that validation cannot foresee) shares a group commit with innocent ones: only the
    guilty request fails, every other one is stored."""
    engine = server.services.db.engine
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(sa.text(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            await conn.execute(sa.text(
                "CREATE TRIGGER poison BEFORE INSERT ON notifications "
                "FOR EACH ROW EXECUTE FUNCTION poison()"))
        else:
            await conn.execute(sa.text(
                "CREATE TRIGGER poison BEFORE INSERT ON notifications "
                "WHEN NEW.title = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"))
    titles = [f"innocent {i}" for i in range(30)]
    titles.insert(15, "poison")
    async with server.http("svc", "service") as http:
        answers = await asyncio.gather(*(
            http.post("/api/notifications", json={**NOTE, "user_id": "alice", "title": t})
            for t in titles
        ))
    by_title = dict(zip(titles, answers, strict=True))
    assert by_title.pop("poison").status_code == 500
    assert {a.status_code for a in by_title.values()} == {201}
    async with server.http("alice") as alice:
        listed = (await alice.get("/api/notifications", params={"limit": 100})).json()
    assert sorted(n["title"] for n in listed["items"]) == sorted(by_title)


async def test_an_idempotency_key_reused_for_another_request_is_a_422(
    server: RunningServer,
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    async with server.http("svc", "service") as http:
        first = await http.post("/api/notifications", json={**NOTE, "user_id": "alice"},
                                headers=headers)
        again = await http.post("/api/notifications", json={**NOTE, "user_id": "alice"},
                                headers=headers)
        other = await http.post("/api/notifications", json={**NOTE, "user_id": "bob"},
                                headers=headers)
        control = await http.post("/api/notifications", json={**NOTE, "user_id": "bob"},
                                  headers={"Idempotency-Key": "k" * 256})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.json()["error"] == {
        "code": "idempotency_key_reused", "field": "Idempotency-Key",
        "message": "this Idempotency-Key was first used with a different request"}
    assert control.status_code == 422


async def test_concurrent_preference_updates_keep_every_flag(server: RunningServer) -> None:
    flags = ["email_enabled", "push_enabled", "in_app_enabled"]
    async with server.http("alice") as alice:
        for trial in range(10):
            channel = f"c{trial}"
            answers = await asyncio.gather(*(
                alice.put("/api/notifications/preferences",
                          json={"channel": channel, "notification_type": "t", flag: False})
                for flag in flags
            ))
            assert {a.status_code for a in answers} == {200}
            stored = (await alice.get("/api/notifications/preferences")).json()["items"]
            row = next(r for r in stored if r["channel"] == channel)
            assert [row[flag] for flag in flags] == [False, False, False], trial


async def test_a_socket_is_closed_when_its_token_expires(server: RunningServer) -> None:
    # Verification allows 30 s of clock skew: a token that expired 29 s ago is still
    # accepted, and its socket must go about a second later.
    token = server.tokens.mint("alice", (), -29)
    client = Client()
    disconnected = asyncio.Event()
    client.sio.on("disconnect", lambda *_: disconnected.set())
    await client.sio.connect(server.url, auth={"token": token}, transports=["websocket"])
    assert (await client.next("connectionStatus"))["user_id"] == "alice"
    error = await client.next("error")
    assert error["code"] == "token_expired"
    await asyncio.wait_for(disconnected.wait(), 5)
    assert not client.sio.connected
    for _ in range(100):
        if server.metric("tidings_connections") == 0:
            break
        await asyncio.sleep(0.02)
    assert server.metric("tidings_connections") == 0


async def test_replay_since_the_edge_of_time_is_an_error_event(server: RunningServer,
                                                               connect) -> None:
    alice = await connect("alice")
    answer = await alice.call("requestMissedNotifications",
                              {"since": "0001-01-01T00:00:00+01:00"})
    assert answer["ok"] is False and answer["error"]["field"] == "since"
    assert (await alice.next("error"))["code"] == "validation_error"
