"""Nothing is lost across disconnects and restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Client, RunningServer, make_settings, start_server


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


async def test_sqlite_checkpoints_run_off_the_service_connection(
    server: RunningServer,
) -> None:
    if server.services.db.dialect != "sqlite":
        return  # PostgreSQL checkpoints by itself
    async with server.http("svc", "service") as http:
        for i in range(20):
            response = await http.post("/api/notifications", json={
                "user_id": "alice", "type": "t", "title": f"n{i}", "message": "m"})
            assert response.status_code == 201
    busy, frames, done = await server.services.db.checkpoint()
    assert busy == 0
    assert frames == done  # everything written so far is now in the database file
    async with server.http("alice") as http:
        assert len((await http.get("/api/notifications", params={"limit": 50})).json()[
            "items"]) == 20
