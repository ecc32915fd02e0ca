"""Admin HTTP API for team feeds: set, read (the URL shown by its origin only), replace and
remove a channel's incoming webhook, list them all by channel, and every refusal; the
Python client's feed methods against the same routes."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tidings.client import AsyncTidingsClient, NotFound, PermissionDenied, ValidationError
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


async def test_the_list_goes_by_channel_page_by_page_with_urls_masked(
    server: RunningServer,
) -> None:
    # Lower-case names: their order is the same under every collation.
    channels = ["ops", "billing", "alerts", "sales.eu", "sales-us"]
    async with server.http(*ADMIN) as http:
        empty = await http.get("/api/admin/feeds")
        assert empty.status_code == 200
        assert empty.json() == {"items": [], "next_cursor": None}
        for name in channels:
            put = await http.put(f"/api/admin/channels/{name}/feed",
                                 json={"kind": "discord", "webhook_url": DISCORD})
            assert put.status_code == 200, put.text
        seen: list[dict[str, object]] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = await http.get("/api/admin/feeds", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["items"]) <= 2
            seen += body["items"]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        one = (await http.get("/api/admin/channels/ops/feed")).json()
    assert pages == 3
    assert [item["channel"] for item in seen] == sorted(channels)
    assert {item["webhook_url"] for item in seen} == {"https://93.184.215.14/\u2026"}
    assert {item["kind"] for item in seen} == {"discord"}
    assert next(item for item in seen if item["channel"] == "ops") == one


async def test_a_cursor_past_the_last_feed_is_an_empty_page(server: RunningServer) -> None:
    async with server.http(*ADMIN) as http:
        await http.put("/api/admin/channels/billing/feed",
                       json={"kind": "teams", "webhook_url": SLACK})
        after = await http.get("/api/admin/feeds", params={"cursor": "zzz"})
        before = await http.get("/api/admin/feeds", params={"cursor": "a"})
    assert after.json() == {"items": [], "next_cursor": None}
    assert [item["channel"] for item in before.json()["items"]] == ["billing"]


async def test_only_an_admin_manages_feeds(server: RunningServer) -> None:
    body = {"kind": "slack", "webhook_url": SLACK}
    async with server.http() as anonymous:
        assert (await anonymous.put("/api/admin/channels/c/feed", json=body)).status_code == 401
        assert (await anonymous.get("/api/admin/feeds")).status_code == 401
    async with server.http("svc", "service") as service:
        assert (await service.put("/api/admin/channels/c/feed", json=body)).status_code == 403
        assert (await service.get("/api/admin/channels/c/feed")).status_code == 403
        assert (await service.delete("/api/admin/channels/c/feed")).status_code == 403
        assert (await service.get("/api/admin/feeds")).status_code == 403
    async with server.http("alice") as user:
        assert (await user.get("/api/admin/feeds")).status_code == 403


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"cursor": "user:bob"}, "cursor"),
    ({"cursor": "-leading"}, "cursor"),
    ({"cursor": "x" * 101}, "cursor"),
])
async def test_a_bad_limit_or_cursor_is_a_422_naming_it(server: RunningServer,
                                                        params: dict[str, object],
                                                        field: str) -> None:
    async with server.http(*ADMIN) as http:
        response = await http.get("/api/admin/feeds", params=params)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["field"]


async def test_the_client_sets_lists_reads_and_deletes_feeds(server: RunningServer) -> None:
    async with AsyncTidingsClient(server.url, server.token(*ADMIN)) as client:
        put = await client.put_feed("billing", kind="slack", webhook_url=SLACK)
        assert (put.channel, put.kind, put.webhook_url) == ("billing", "slack", SLACK)
        await client.put_feed("alerts", kind="mattermost", webhook_url=DISCORD)
        first = await client.feeds(limit=1)
        assert [feed.channel for feed in first.items] == ["alerts"]
        assert first.next_cursor is not None
        rest = await client.feeds(cursor=first.next_cursor)
        assert [feed.channel for feed in rest.items] == ["billing"]
        assert rest.next_cursor is None
        got = await client.get_feed("billing")
        assert got.webhook_url == "https://93.184.215.14/\u2026"
        assert got.created_at == put.created_at
        await client.delete_feed("billing")
        with pytest.raises(NotFound):
            await client.get_feed("billing")
        with pytest.raises(NotFound):
            await client.delete_feed("billing")
        with pytest.raises(ValidationError):
            await client.put_feed("alerts", kind="irc", webhook_url=SLACK)
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as client:
        with pytest.raises(PermissionDenied):
            await client.feeds()


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
