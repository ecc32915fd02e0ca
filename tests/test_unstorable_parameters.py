"""A NUL or a lone surrogate in what a request names (a path segment, a cursor, the
token's subject) is a 4xx, never a 500: PostgreSQL refuses NUL in any text it is asked
to compare, and no driver can send a lone surrogate (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import socketio

from tests.conftest import RunningServer

pytestmark = pytest.mark.both_databases


def cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


WHEN = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/admin/templates/%00", 404),
    ("GET", "/api/admin/templates/a%00b?version=1", 404),
    ("DELETE", "/api/admin/templates/%00", 404),
    ("POST", "/api/admin/templates/%00/preview", 404),
    # The template list's cursor is a key itself.
    ("GET", "/api/admin/templates?cursor=a%00b", 422),
    ("GET", "/api/admin/templates?cursor=a%ED%A0%80b", 422),
    ("GET", f"/api/notifications?cursor={cursor(WHEN, chr(0))}", 422),
    ("GET", f"/api/notifications?cursor={cursor(WHEN, 'a' + chr(0xD800))}", 422),
    ("GET", f"/api/admin/webhooks?cursor={cursor(WHEN, chr(0))}", 422),
    ("GET", f"/api/admin/webhooks?cursor={cursor(WHEN, chr(0xD800))}", 422),
    ("GET", f"/api/admin/deliveries?cursor={cursor(WHEN, chr(0))}", 422),
    ("GET", "/api/admin/deliveries/%00", 404),
    ("POST", "/api/admin/deliveries/%00/replay", 404),
    ("DELETE", "/api/admin/webhooks/%00", 404),
    ("GET", "/api/admin/deliveries?user_id=%00", 422),
    ("GET", "/api/notifications/%00", 404),
    ("PUT", "/api/notifications/%00/read", 404),
    ("DELETE", "/api/notifications/%00", 404),
    ("GET", "/api/users/%00/contact", 422),
    ("DELETE", "/api/devices/%00", 404),
])
async def test_a_nul_or_lone_surrogate_in_a_parameter_is_a_4xx(
    server: RunningServer, method: str, path: str, status: int
) -> None:
    body = {"variables": {}} if path.endswith("/preview") else None
    async with server.http("root", "admin") as http:
        response = await http.request(method, path, json=body)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("sub", ["a\u0000b", "a\ud800b"], ids=["nul", "surrogate"])
@pytest.mark.parametrize("path", ["/api/notifications", "/api/devices",
                                  "/api/notifications/preferences",
                                  "/api/users/me/contact"])
async def test_a_signed_token_whose_subject_holds_a_nul_is_refused(
    server: RunningServer, sub: str, path: str
) -> None:
    async with server.http(sub) as http:
        response = await http.get(path)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize("sub", ["a\u0000b", "a\ud800b"], ids=["nul", "surrogate"])
async def test_a_socket_whose_token_subject_holds_a_nul_is_refused_like_a_bad_token(
    server: RunningServer, sub: str
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[dict[str, str]] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth={"token": server.token(sub)},
                             transports=["websocket"], wait_timeout=5)
    assert errors and errors[0]["message"] == "Authentication failed"


async def test_a_channel_name_with_a_nul_is_denied_or_unsubscribed_like_any_bad_name(
    server: RunningServer, connect: Any
) -> None:
    client = await connect("alice")
    joined = await client.call("subscribe", {"channels": ["a\u0000b", "news"]})
    assert (joined["subscribed"], joined["denied"]) == (["news"], ["a\u0000b"])
    answer = await client.call("unsubscribe", {"channels": ["a\u0000b", "news"]})
    assert answer == {"ok": True, "unsubscribed": ["a\u0000b", "news"]}
