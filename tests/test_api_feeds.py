"""Admin HTTP API for team feeds: set, read (the URL shown by its origin only), replace and
remove a channel's incoming webhook, and every refusal."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tidings.config.settings import Settings

pytestmark = pytest.mark.both_databases

ADMIN = ("ops", "admin")
# A literal public address: checked without a DNS lookup, never contacted.
SLACK = "https://93.184.215.14/services/T000/B000/XXXXXXXX"
DISCORD = "https://93.184.215.14/api/webhooks/1/abc"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, workers_in_serve=False)


async def test_a_feed_is_set_read_replaced_and_removed(server: RunningServer) -> None:
    async with server.http(*ADMIN) as http:
        put = await http.put("/api/admin/channels/billing/feed",
                             json={"kind": "slack", "webhook_url": SLACK})
        assert put.status_code == 200, put.text
        assert put.json()["webhook_url"] == SLACK  # shown to the admin who sent it
        got = await http.get("/api/admin/channels/billing/feed")
        assert got.status_code == 200
        assert got.json() == {**put.json(), "webhook_url": "https://93.184.215.14/\u2026"}
        again = await http.put("/api/admin/channels/billing/feed",
                               json={"kind": "discord", "webhook_url": DISCORD})
        assert again.json()["kind"] == "discord"
        assert again.json()["created_at"] == put.json()["created_at"]
        gone = await http.delete("/api/admin/channels/billing/feed")
        assert gone.status_code == 204
        missing = await http.get("/api/admin/channels/billing/feed")
        assert missing.status_code == 404
        twice = await http.delete("/api/admin/channels/billing/feed")
        assert twice.status_code == 404


async def test_only_an_admin_manages_feeds(server: RunningServer) -> None:
    body = {"kind": "slack", "webhook_url": SLACK}
    async with server.http() as anonymous:
        assert (await anonymous.put("/api/admin/channels/c/feed", json=body)).status_code == 401
    async with server.http("svc", "service") as service:
        assert (await service.put("/api/admin/channels/c/feed", json=body)).status_code == 403
        assert (await service.get("/api/admin/channels/c/feed")).status_code == 403
        assert (await service.delete("/api/admin/channels/c/feed")).status_code == 403


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/admin/channels/c/feed", {"kind": "irc", "webhook_url": SLACK}, "kind"),
    ("/api/admin/channels/c/feed", {"kind": "slack", "webhook_url": "ftp://x/y"},
     "webhook_url"),
    ("/api/admin/channels/c/feed", {"kind": "slack"}, "webhook_url"),
    ("/api/admin/channels/c/feed", {"kind": "slack", "webhook_url": SLACK, "x": 1}, "x"),
    # A private address is refused: the server would post inside its own network.
    ("/api/admin/channels/c/feed", {"kind": "slack", "webhook_url": "http://127.0.0.1/h"},
     "webhook_url"),
    ("/api/admin/channels/user:bob/feed", {"kind": "slack", "webhook_url": SLACK}, "channel"),
])
async def test_bad_input_is_a_422_naming_the_field(server: RunningServer, path: str,
                                                   body: dict[str, object],
                                                   field: str) -> None:
    async with server.http(*ADMIN) as http:
        response = await http.put(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["field"]


async def test_private_targets_are_accepted_when_allowed(database_url: str) -> None:
    running = await start_server(make_settings(database_url, workers_in_serve=False,
                                               allow_private_targets=True))
    try:
        async with running.http(*ADMIN) as http:
            response = await http.put("/api/admin/channels/c/feed",
                                      json={"kind": "mattermost",
                                            "webhook_url": "http://127.0.0.1:8065/hooks/x"})
        assert response.status_code == 200, response.text
    finally:
        await running.stop()
