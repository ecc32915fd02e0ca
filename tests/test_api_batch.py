"""`POST /api/notifications/batch` (contract section 10): items answered in order, valid
ones stored even when others are invalid, one idempotency key for the whole request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.both_databases

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


async def batch(server: RunningServer, items: list[Any], **headers: str) -> Any:
    async with server.http("svc", "service") as http:
        return await http.post("/api/notifications/batch", json={"items": items},
                               headers=headers)


async def test_items_are_answered_in_order_and_invalid_ones_fail_alone(
    server: RunningServer, connect
) -> None:
    alice = await connect("alice")
    await alice.call("subscribe", {"channels": ["sales"]})
    response = await batch(server, [
        {**NOTE, "user_id": "alice"},
        {**NOTE, "user_id": "bob", "title": ""},  # invalid
        {**NOTE, "user_ids": ["bob", "carol"]},
        {**NOTE, "channel": "sales"},
        "not an object",
        {**NOTE, "user_id": "alice", "title": "a\u0000b"},  # invalid
    ])
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 202, 202, 422, 422]
    assert results[0]["notification"]["user_id"] == "alice"
    assert results[1]["error"]["field"] == "title"
    assert results[2]["count"] == 2 and results[3] == {"status": 202, "count": 1,
                                                        "channel": "sales"}
    assert results[5]["error"]["code"] == "validation_error"
    live = {(await alice.next("notification"))["id"] for _ in range(2)}
    assert results[0]["notification"]["id"] in live
    async with server.http("bob") as http:
        assert len((await http.get("/api/notifications")).json()["items"]) == 1


async def test_one_key_answers_the_whole_first_answer_and_creates_nothing_more(
    server: RunningServer,
) -> None:
    items = [{**NOTE, "user_id": "alice"}, {**NOTE, "user_id": "bob", "title": ""}]
    first = await batch(server, items, **{"Idempotency-Key": "nightly-42"})
    again = await batch(server, items, **{"Idempotency-Key": "nightly-42"})
    other = await batch(server, items[:1], **{"Idempotency-Key": "nightly-42"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    async with server.http("alice") as http:
        assert len((await http.get("/api/notifications")).json()["items"]) == 1


async def test_concurrent_batches_all_land(server: RunningServer) -> None:
    answers = await asyncio.gather(*(
        batch(server, [{**NOTE, "user_id": f"u{b}-{i}"} for i in range(50)])
        for b in range(4)))
    assert all(a.status_code == 200 for a in answers)
    assert sum(r["status"] == 201 for a in answers for r in a.json()["results"]) == 200


async def test_over_a_thousand_items_is_413_and_bad_shapes_are_4xx(
    server: RunningServer,
) -> None:
    too_many = await batch(server, [{**NOTE, "user_id": "a"}] * 1001)
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "payload_too_large"
    assert (await batch(server, [])).status_code == 422
    async with server.http("svc", "service") as http:
        assert (await http.post("/api/notifications/batch", json={"x": 1})).status_code == 422
    async with server.http("alice") as http:
        refused = await http.post("/api/notifications/batch",
                                  json={"items": [{**NOTE, "user_id": "b"}]})
    assert refused.status_code == 403
