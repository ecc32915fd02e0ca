"""The replay of missed notifications read for many sockets at once (`ReplayReader`):
each socket gets exactly its own notifications, in order, whatever else shares its batch;
a batch that fails answers every waiting socket with an error. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import Client, RunningServer
from tidings.domain.model import utcnow
from tidings.services.replay import ReplayReader

pytestmark = pytest.mark.both_databases

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


async def _create(server: RunningServer, user_id: str, title: str) -> dict:
    async with server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_id": user_id, "title": title})
    assert response.status_code in (201, 202), response.text
    return response.json()


async def _seed(server: RunningServer, counts: dict[str, int]) -> dict[str, list[dict]]:
    """Notifications created round-robin across the users, so their rows interleave."""
    made: dict[str, list[dict]] = {user: [] for user in counts}
    for round_ in range(max(counts.values())):
        for user, count in counts.items():
            if round_ < count:
                made[user].append(await _create(server, user, f"{user}-{round_}"))
    return made


async def _replay(client: Client, since: str, expected: int) -> tuple[dict, list[str]]:
    answer = await client.call("requestMissedNotifications", {"since": since})
    ids = [(await client.next("notification"))["id"] for _ in range(expected)]
    return answer, ids


async def test_many_sockets_replaying_at_once_get_exactly_their_own(
    server: RunningServer, connect
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    counts = {f"user{i}": i % 5 for i in range(12)}
    made = await _seed(server, counts)
    # A second socket of one user asks from a later cursor, in the same storm.
    later_since = made["user4"][1]["created_at"]
    clients = {user: await connect(user) for user in counts}
    second_tab = await connect("user4")
    server.services.inbox.replays.chunk = 2  # most replays take several chunks
    results = await asyncio.gather(
        *(_replay(clients[user], since, counts[user]) for user in counts),
        _replay(second_tab, later_since, 2),
    )
    for user, (answer, ids) in zip(counts, results, strict=False):
        assert answer == {"ok": True, "count": counts[user]}
        assert ids == [note["id"] for note in made[user]]
    answer, ids = results[-1]
    assert answer == {"ok": True, "count": 2}
    assert ids == [note["id"] for note in made["user4"][2:]]
    for client in [*clients.values(), second_tab]:  # nothing more, nobody else's
        assert client.queue("notification").empty()


async def test_concurrent_reads_share_one_statement(server: RunningServer) -> None:
    made = await _seed(server, {"ann": 3, "ben": 1, "cid": 0})
    reader = ReplayReader(server.services.db, 2, window=60.0, max_batch=4)
    start = (datetime.now(UTC) - timedelta(minutes=1), "~")
    now = utcnow()
    first_of_ann = (datetime.fromisoformat(made["ann"][0]["created_at"]),
                    made["ann"][0]["id"])
    chunks = await asyncio.gather(  # the fourth ask fills the batch: no window wait
        reader.read("ann", start, now), reader.read("ben", start, now),
        reader.read("cid", start, now), reader.read("ann", first_of_ann, now),
    )
    assert reader.batches == 1
    assert [[note.id for note in chunk] for chunk in chunks] == [
        [note["id"] for note in made["ann"][:2]],
        [made["ben"][0]["id"]],
        [],
        [note["id"] for note in made["ann"][1:3]],
    ]
    assert all(note.deliveries for chunk in chunks for note in chunk)
    # A lone ask waits out its batch's window: a reader with a short one.
    alone = ReplayReader(server.services.db, 2, window=0.01, max_batch=4)
    past = await alone.read("ann", start, datetime.fromisoformat(made["ann"][0]["created_at"])
                            - timedelta(seconds=1))
    assert past == []  # `until` bounds what counts as missed


async def test_an_asker_that_leaves_does_not_stop_the_batch(server: RunningServer) -> None:
    made = await _seed(server, {"ann": 1})
    reader = ReplayReader(server.services.db, 10, window=60.0, max_batch=2)
    start = (datetime.now(UTC) - timedelta(minutes=1), "~")
    gone = asyncio.ensure_future(reader.read("ann", start, utcnow()))
    await asyncio.sleep(0)
    gone.cancel()
    chunk = await reader.read("ann", start, utcnow())
    assert [note.id for note in chunk] == [made["ann"][0]["id"]]
    # Both left before their batch ran: no statement at all.
    left = [asyncio.ensure_future(reader.read("ann", start, utcnow())) for _ in range(2)]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    assert reader.batches == 1


async def test_a_cancelled_batch_cancels_its_askers(server: RunningServer) -> None:
    reader = ReplayReader(server.services.db, 10, window=60.0, max_batch=2)
    start = (datetime.now(UTC), "~")
    asks = [asyncio.ensure_future(reader.read(user, start, utcnow())) for user in "ab"]
    await asyncio.sleep(0)
    for batch in list(reader._running):  # what a shutdown does to the loop's tasks
        batch.cancel()
    outcomes = await asyncio.gather(*asks, return_exceptions=True)
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)


async def test_a_failing_batch_answers_every_socket_with_an_error(
    server: RunningServer, connect
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await _seed(server, {"ann": 1, "ben": 1})
    clients = [await connect(user) for user in ("ann", "ben", "cid", "ann")]
    async with server.services.db.begin() as conn:  # the statement now fails for real
        await conn.execute(sa.text("ALTER TABLE notifications RENAME TO notifications_away"))
    try:
        answers = await asyncio.gather(*(
            client.call("requestMissedNotifications", {"since": since}) for client in clients))
        for client, answer in zip(clients, answers, strict=True):
            assert answer["ok"] is False
            error = await client.next("error")
            assert error == answer["error"] and error["code"] in ("unavailable",
                                                                  "internal_error")
            assert client.queue("notification").empty() and client.sio.connected
    finally:
        async with server.services.db.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE notifications_away RENAME TO notifications"))
    answer = await clients[0].call("requestMissedNotifications", {"since": since})
    assert answer == {"ok": True, "count": 1}


async def test_asks_beyond_the_batches_in_flight_wait_for_the_next(
    server: RunningServer,
) -> None:
    made = await _seed(server, {"ann": 2, "ben": 1, "cid": 1})
    reader = ReplayReader(server.services.db, 10, window=0.0, max_batch=1, parallel=1)
    start = (datetime.now(UTC) - timedelta(minutes=1), "~")
    now = utcnow()
    chunks = await asyncio.gather(*(reader.read(user, start, now)
                                    for user in ("ann", "ben", "cid")))
    assert reader.batches == 3  # one at a time, each started when the previous finished
    assert [[note.id for note in chunk] for chunk in chunks] == [
        [note["id"] for note in made[user]] for user in ("ann", "ben", "cid")]
