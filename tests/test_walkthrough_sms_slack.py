"""docs/WALKTHROUGHS.md's SMS and Slack tour, run as written: the stand-in script as its own
process on loopback, a server with the tour's settings, the tour's requests, and what the
stand-in prints."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, make_settings, start_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StandIn:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.seen: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT_S)
        found: dict[str, Any] = json.loads(line)
        self.seen.append(found)
        return found


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "provider_standin.py"), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    started = await asyncio.wait_for(process.stderr.readline(), TIMEOUT_S)
    assert b"listening" in started
    try:
        yield StandIn(process, port)
    finally:
        process.terminate()
        await process.wait()


@pytest.fixture
async def tour(database_url: str, stand_in: StandIn) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        database_url, twilio_account_sid="AC0123", twilio_auth_token="secret",
        twilio_from="+15005550006", twilio_endpoint=stand_in.url,
        slack_bot_token="xoxb-walkthrough", slack_endpoint=stand_in.url,
        allow_private_targets=True)
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop()


async def test_an_sms_and_a_slack_message_then_a_team_feed(tour: RunningServer,
                                                           stand_in: StandIn) -> None:
    async with tour.http("billing", "service") as billing, tour.http("ops", "admin") as ops:
        contact = await billing.put("/api/users/alice/contact", json={
            "phone": "+41 44 668 18 00", "slack_user_id": "U024BE7LH"})
        assert contact.status_code == 200 and contact.json()["phone"] == "+41446681800"
        created = await billing.post("/api/notifications", json={
            "user_id": "alice", "type": "login", "title": "New sign-in",
            "message": "A new device signed in to your account", "channel": "security",
            "media": ["sms", "chat"], "url": "https://example.com/security"})
        assert created.status_code == 201, created.text
        first = {request["request"]: request for request in
                 [await stand_in.next(), await stand_in.next()]}
        assert first["twilio"]["to"] == "+41446681800"
        assert first["twilio"]["body"] == "New sign-in: A new device signed in to your account"
        assert first["slack"]["channel"] == "U024BE7LH"
        assert first["slack"]["blocks"] == ["header", "section", "actions", "context"]

        feed = await ops.put("/api/admin/channels/security/feed", json={
            "kind": "slack", "webhook_url": f"{stand_in.url}/hooks/T0/B0/security"})
        assert feed.status_code == 200, feed.text
        added = await billing.put("/api/channels/security/subscribers",
                                  json={"add": ["alice", "bob", "carol"]})
        assert added.json() == {"added": 3, "removed": 0}
        channel = await billing.post("/api/notifications", json={
            "channel": "security", "type": "advisory", "title": "Rotate your keys",
            "message": "Keys older than a year stop working on 1 March", "media": ["in_app"]})
        assert channel.status_code == 202 and channel.json()["count"] == 3
        post = await stand_in.next()
        assert post["request"] == "feed" and post["path"] == "/hooks/T0/B0/security"
        assert post["body"]["blocks"][0]["text"]["text"] == "Rotate your keys"
    # One post for three subscribers: nothing more arrives.
    with pytest.raises(TimeoutError):
        assert stand_in.process.stdout is not None
        await asyncio.wait_for(stand_in.process.stdout.readline(), 0.5)
