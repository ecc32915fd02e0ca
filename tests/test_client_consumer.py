"""The Python inbox client (`tidings.client.Inbox`) against a real Tidings server: live
notifications, acks and reads seen over HTTP, replay after a restart with nothing lost
or doubled, refused tokens; and the example of docs/CLIENTS.md run as written."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.client_helpers import start_at
from tests.conftest import EVENT_TIMEOUT, RunningServer, make_settings
from tidings.client import (
    AsyncTidingsClient,
    AuthenticationError,
    Inbox,
    InboxChange,
    NotFound,
    Notification,
    Preference,
    StatusChange,
    inbox,
)
from tidings.client.recent import RecentIds

CLIENTS_DOC = Path(__file__).resolve().parent.parent / "docs" / "CLIENTS.md"


async def _notify(server: RunningServer, user: str, title: str) -> Notification:
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as client:
        sent = await client.notify(user_id=user, type="t", title=title, message="m")
    assert isinstance(sent, Notification)
    return sent


async def _next(box: Inbox) -> Notification:
    return await asyncio.wait_for(anext(box), EVENT_TIMEOUT)


async def test_live_notifications_and_ack_and_read_are_seen_over_http(
    server: RunningServer
) -> None:
    statuses: asyncio.Queue[StatusChange] = asyncio.Queue()
    async with Inbox(server.url, server.token("alice"), on_status=statuses.put) as box:
        await asyncio.wait_for(box.wait_connected(), EVENT_TIMEOUT)
        sent = await _notify(server, "alice", "live")
        received = await _next(box)
        assert received.id == sent.id and received.title == "live"
        await box.ack(received.id)
        delivered = await asyncio.wait_for(statuses.get(), EVENT_TIMEOUT)
        assert (delivered.id, delivered.status) == (sent.id, "delivered")
        async with AsyncTidingsClient(server.url, server.token("alice")) as reader:
            assert (await reader.get(sent.id)).status == "delivered"
            await box.mark_read(received.id)
            stored = await reader.get(sent.id)
        assert stored.status == "read" and stored.read_at is not None
        assert (await asyncio.wait_for(statuses.get(), EVENT_TIMEOUT)).status == "read"
        with pytest.raises(NotFound):
            await box.ack("0192f000-0000-7000-8000-000000000000")


async def test_a_deletion_elsewhere_is_handed_to_on_change(server: RunningServer) -> None:
    changes: asyncio.Queue[InboxChange] = asyncio.Queue()
    async with Inbox(server.url, server.token("alice"), on_change=changes.put) as box:
        await asyncio.wait_for(box.wait_connected(), EVENT_TIMEOUT)
        sent = await _notify(server, "alice", "to delete")
        async with AsyncTidingsClient(server.url, server.token("alice")) as other_device:
            await other_device.delete(sent.id)
        change = await asyncio.wait_for(changes.get(), EVENT_TIMEOUT)
    assert change == InboxChange(action="deleted", ids=(sent.id,))


async def test_channels_are_subscribed_on_connect(server: RunningServer) -> None:
    async with Inbox(server.url, server.token("eve"), channels=["orders"]) as box:
        await asyncio.wait_for(box.wait_connected(), EVENT_TIMEOUT)
        assert box.connected
        async with AsyncTidingsClient(server.url, server.token("svc", "service")) as client:
            accepted = await client.notify(channel="orders", type="sale", title="Sale",
                                           message="m")
        received = await _next(box)
    assert accepted.count == 1  # type: ignore[union-attr]
    assert (received.user_id, received.channel, received.title) == ("eve", "orders", "Sale")


async def test_preferences_updated_over_the_socket_are_stored(server: RunningServer) -> None:
    async with Inbox(server.url, lambda: server.token("bob")) as box:
        stored = await box.update_preferences(Preference(channel="orders",
                                                         email_enabled=False))
    assert [(p.channel, p.email_enabled) for p in stored] == [("orders", False)]
    async with AsyncTidingsClient(server.url, server.token("bob")) as reader:
        assert Preference(channel="orders", notification_type="*", email_enabled=False,
                          push_enabled=True, in_app_enabled=True, sms_enabled=True,
                          chat_enabled=True) in await reader.preferences()


async def test_since_replays_what_came_before_the_first_connect(
    server: RunningServer
) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    first = await _notify(server, "carol", "one")
    second = await _notify(server, "carol", "two")
    received = []
    async for n in inbox(server.url, server.token("carol"), since=before):
        received.append(n.id)
        if len(received) == 2:
            break
    assert received == [first.id, second.id]


async def test_a_refused_token_ends_the_iteration_with_authentication_error(
    server: RunningServer
) -> None:
    async with Inbox(server.url, "not-a-token") as box:
        with pytest.raises(AuthenticationError):
            await _next(box)
    # The inbox is closed: iterating again ends at once.
    assert [n async for n in box] == []


async def test_the_inbox_survives_a_restart_with_nothing_lost_or_doubled(
    database_url: str
) -> None:
    settings = make_settings(database_url)
    first = await start_at(settings, 0)
    port = int(first.url.rsplit(":", 1)[1])
    token = first.token("dana")
    async with Inbox(first.url, token, initial_backoff=0.05, max_backoff=0.5) as box:
        await asyncio.wait_for(box.wait_connected(), EVENT_TIMEOUT)
        live = await _notify(first, "dana", "before")
        assert (await _next(box)).id == live.id
        await first.stop()
        # While the inbox is away, another node on the same database takes two.
        other = await start_at(settings, 0)
        missed = [await _notify(other, "dana", "missed 1"),
                  await _notify(other, "dana", "missed 2")]
        await other.stop()
        again = await start_at(settings, port)
        try:
            replayed = [await _next(box), await _next(box)]
            assert [n.id for n in replayed] == [n.id for n in missed]
            after = await _notify(again, "dana", "after")
            # The replay overlapped `before` (same seconds): it is not yielded again.
            assert (await _next(box)).id == after.id
            assert box.connections == 2
        finally:
            await again.stop()


def test_recent_ids_forget_the_oldest_first() -> None:
    recent = RecentIds(2)
    assert recent.add("a") and recent.add("b") and not recent.add("a")
    assert recent.add("c") and "b" not in recent and "a" in recent and len(recent) == 2
    with pytest.raises(ValueError):
        RecentIds(0)


def _clients_doc_example() -> str:
    section = CLIENTS_DOC.read_text().split("## The Python client", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/CLIENTS.md's Python client section has no python example"
    return match.group(1)


async def test_the_clients_doc_example_runs_as_written(server: RunningServer,
                                                       tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_clients_doc_example())
    env = {**os.environ, "TIDINGS_URL": server.url,
           "TIDINGS_SERVICE_TOKEN": server.token("billing", "service"),
           "TIDINGS_USER_TOKEN": server.token("alice")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "Your order shipped" in out.decode()
    async with AsyncTidingsClient(server.url, server.token("alice")) as reader:
        assert [n.status async for n in reader.list_notifications()] == ["delivered"]
