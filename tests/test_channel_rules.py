"""Channel rules end to end: `subscribe` answers what the operator's rules allow, a channel
notification reaches only those subscribers, and bad rules stop `tidings serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EVENT_TIMEOUT, SECRET, Client, RunningServer, make_settings, start_server
from tidings.cli import main

RULES = [
    {"pattern": "user.{sub}.*"},
    {"pattern": "user.*", "allow": False},
    {"pattern": "orders.*", "roles": ["staff"]},
    {"pattern": "*", "allow": True},
]
NOTE = {"type": "news", "title": "Hello", "message": "World"}


async def connect(server: RunningServer, user: str, *roles: str) -> Client:
    client = Client()
    await client.sio.connect(server.url, auth={"token": server.token(user, *roles)},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    await client.next("connectionStatus")
    return client


async def to_channel(server: RunningServer, channel: str) -> int:
    async with server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, "channel": channel})
    assert response.status_code == 202, response.text
    return int(response.json()["count"])


async def test_subscribe_answers_what_the_rules_allow(database_url: str) -> None:
    server = await start_server(make_settings(database_url, channel_rules=json.dumps(RULES)))
    alice = await connect(server, "alice")
    carol = await connect(server, "carol", "staff")
    try:
        answer = await alice.call("subscribe", {"channels": [
            "news", "orders.eu", "user.alice.inbox", "user.bob.inbox", "user:bob"]})
        assert answer == {"ok": True, "subscribed": ["news", "user.alice.inbox"],
                          "denied": ["orders.eu", "user.bob.inbox", "user:bob"]}
        assert (await carol.call("subscribe", {"channels": ["orders.eu"]}))["subscribed"] == [
            "orders.eu"]

        assert await to_channel(server, "orders.eu") == 1
        assert (await carol.next("notification"))["channel"] == "orders.eu"
        assert await to_channel(server, "user.bob.inbox") == 0
        assert await to_channel(server, "user.alice.inbox") == 1
        assert (await alice.next("notification"))["channel"] == "user.alice.inbox"
    finally:
        await alice.close()
        await carol.close()
        await server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_subscription_made_before_rules_were_tightened_stands(
    database_url: str,
) -> None:
    """Rules are checked when a subscription is made, not at every channel notification."""
    open_server = await start_server(make_settings(database_url))
    alice = await connect(open_server, "alice")
    assert (await alice.call("subscribe", {"channels": ["orders.eu"]}))["ok"]
    await alice.close()
    await open_server.stop()

    strict = await start_server(make_settings(database_url, channel_rules=json.dumps(RULES)))
    try:
        assert await to_channel(strict, "orders.eu") == 1
        alice = await connect(strict, "alice")
        again = await alice.call("subscribe", {"channels": ["orders.eu"]})
        assert again == {"ok": True, "subscribed": [], "denied": ["orders.eu"]}
        await alice.call("unsubscribe", {"channels": ["orders.eu"]})
        assert await to_channel(strict, "orders.eu") == 0
        await alice.close()
    finally:
        await strict.stop()


def test_a_bad_rules_file_stops_serve_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"pattern": "orders.*", "roles": ["staff"], "allow": True}]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("CHANNEL_RULES_FILE", str(path))
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tidings: invalid configuration:")
    assert f"CHANNEL_RULES_FILE ({path}): " in err
    assert 'a rule has "roles" or "allow", not both (rule 1)' in err
