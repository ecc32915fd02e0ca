"""Nothing is lost across disconnects and restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import Client, make_settings, start_server
from tidings.store.database import Database
from tidings.store.reference_tables import subscriptions


async def test_restart_loses_nothing_and_replay_still_works(database_url: str) -> None:
    settings = make_settings(database_url)
    first = await start_server(settings)
    since = datetime.now(UTC).isoformat()
    async with first.http("svc", "service") as http:
        ids = [(await http.post("/api/notifications", json={
            "user_id": "alice", "type": "t", "title": f"n{i}", "message": "m"})).json()["id"]
            for i in range(5)]
        scheduled = (await http.post("/api/notifications", json={
            "user_id": "alice", "type": "t", "title": "later", "message": "m",
            "scheduled_at": (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat(),
        })).json()
    await first.stop()

    second = await start_server(make_settings(database_url))
    try:
        alice = Client()
        await alice.sio.connect(second.url, auth={"token": second.token("alice")},
                                transports=["websocket"])
        answer = await alice.sio.call("requestMissedNotifications", {"since": since})
        assert answer == {"ok": True, "count": 5}
        replayed = [(await alice.next("notification"))["id"] for _ in ids]
        assert replayed == ids
        # The scheduled one was due after the restart: the new process releases it.
        assert (await alice.next("notification", timeout=10))["id"] == scheduled["id"]
        await alice.close()
    finally:
        await second.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_commits_leave_checkpoints_to_the_checkpointer(database_url: str) -> None:
    """Commits never checkpoint (that fsyncs on the service's only connection); the
    checkpointer, on its own connection, copies every WAL frame into the database."""
    db = Database(database_url)  # not started: no background checkpoints in this test
    try:
        async with db.begin() as conn:
            assert (await conn.execute(sa.text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            await conn.execute(subscriptions.insert(), [
                {"user_id": f"u{i}", "channel": "news", "created_at": datetime.now(UTC)}
                for i in range(500)])
        busy, frames, done = await db.checkpoint()
        assert busy == 0 and frames > 0 and done == frames
    finally:
        await db.dispose()
