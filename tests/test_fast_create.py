"""The lean create path (`api/fast_create.py`) answers exactly what the FastAPI route
answers (both go through the one create edge, `api/create_edge.py`), and serves every
JSON create without reaching FastAPI."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.conftest import RunningServer, make_settings, start_server
from tidings.api.create_edge import bearer as _bearer
from tidings.api.fast_create import FastCreate, _declares_json

pytestmark = pytest.mark.both_databases

NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}
# FastAPI decodes any `application/*+json` body as JSON; the lean path takes only
# `application/json` and hands this one to the FastAPI route: the same request, either way.
LEAN = "application/json"
ROUTE = "application/x.tidings+json"

CASES: list[tuple[str, bytes, str | None]] = [
    # (what, body, whose token: "svc" a service, "user" a plain user, "bad", None)
    ("one user", json.dumps({**NOTE, "user_id": "alice"}).encode(), "svc"),
    ("some users", json.dumps({**NOTE, "user_ids": ["a", "b"]}).encode(), "svc"),
    ("a channel", json.dumps({**NOTE, "channel": "news"}).encode(), "svc"),
    ("non-ASCII", json.dumps({**NOTE, "user_id": "zoë", "data": {"€": [1.5, None]}},
                             ensure_ascii=False).encode(), "svc"),
    ("numbers", b'{"type": "t", "title": "t", "message": "m", "user_id": "a", "data": '
     b'{"big": 123456789012345678901234567890, "small": 1e-7, "neg": -0.0, "e": 1E2}}', "svc"),
    ("a repeated key", b'{"type": "t", "title": "t", "message": "m", "user_id": "a", '
     b'"user_id": "b"}', "svc"),
    ("a BOM", b'\xef\xbb\xbf' + json.dumps({**NOTE, "user_id": "a"}).encode(), "svc"),
    ("UTF-16", json.dumps({**NOTE, "user_id": "a"}).encode("utf-16"), "svc"),
    ("NaN", b'{"type": "t", "title": "t", "message": "m", "data": {"x": NaN}}', "svc"),
    ("1e400", b'{"type": "t", "title": "t", "message": "m", "data": {"x": 1e400}}', "svc"),
    ("a lone surrogate", b'{"type": "t", "title": "t", "message": "\\ud800"}', "svc"),
    ("not JSON", b'{"type": ', "svc"),
    ("not UTF-8", b'{"type": "\xff"}', "svc"),
    ("empty", b"", "svc"),
    ("null", b"null", "svc"),
    ("a list", b"[]", "svc"),
    ("nested too deep", b"[" * 50_000 + b"]" * 50_000, "svc"),
    ("missing type", json.dumps({"user_id": "a", "title": "t", "message": "m"}).encode(),
     "svc"),
    ("unknown field", json.dumps({**NOTE, "user_id": "a", "colour": "red"}).encode(), "svc"),
    ("two audiences", json.dumps({**NOTE, "user_id": "a", "user_ids": ["b"]}).encode(),
     "svc"),
    ("no title", json.dumps({"type": "t", "message": "m", "user_id": "a"}).encode(), "svc"),
    ("sensitive, no keys", json.dumps({**NOTE, "user_id": "a", "sensitive": ["title"]})
     .encode(), "svc"),
    ("a NUL", json.dumps({**NOTE, "user_id": "a\u0000"}).encode(), "svc"),
    ("no token", json.dumps({**NOTE, "user_id": "a"}).encode(), None),
    ("no token, not JSON", b"{", None),
    ("no token, invalid", b"{}", None),
    ("bad token", json.dumps({**NOTE, "user_id": "a"}).encode(), "bad"),
    ("not a producer", json.dumps({**NOTE, "user_id": "a"}).encode(), "user"),
]


def headers(server: RunningServer, token: str | None, content_type: str) -> dict[str, str]:
    values = {"Content-Type": content_type}
    if token == "svc":
        values["Authorization"] = f"Bearer {server.token('svc', 'service')}"
    elif token == "user":
        values["Authorization"] = f"Bearer {server.token('alice')}"
    elif token == "bad":
        values["Authorization"] = "Bearer not-a-jwt"
    return values


def comparable(response: httpx.Response) -> dict[str, Any]:
    """The answer without what differs between two creations (ids, instants)."""
    body = response.json()
    if response.status_code == 201:
        body = {**body, "id": None, "created_at": None,
                "deliveries": [(d["medium"], d["status"]) for d in body["deliveries"]]}
    return {"status": response.status_code, "body": body,
            "content-type": response.headers.get("content-type"),
            "www-authenticate": response.headers.get("www-authenticate"),
            "retry-after": response.headers.get("retry-after"),
            "vary": response.headers.get("vary")}


@pytest.mark.parametrize(("what", "body", "token"), CASES, ids=[c[0] for c in CASES])
async def test_lean_and_route_answer_alike(server: RunningServer, what: str, body: bytes,
                                           token: str | None) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        lean = await http.post("/api/notifications", content=body,
                               headers=headers(server, token, LEAN))
        route = await http.post("/api/notifications", content=body,
                                headers=headers(server, token, ROUTE))
    assert comparable(lean) == comparable(route), what
    assert lean.status_code in (201, 202, 400, 401, 403, 422), lean.text


# The answers FastAPI gave when it admitted creates itself, in its order: the body decoded
# (400), then the token (401), then the draft (422). The create edge keeps them.
REFUSALS: list[tuple[str, bytes, str | None, str | None, int, str, str | None]] = [
    # (what, body, whose token, content type, status, error code, field)
    ("not JSON", b"{", "svc", LEAN, 400, "invalid_json", "body"),
    ("not JSON before no token", b"{", None, ROUTE, 400, "invalid_json", "body"),
    ("not UTF-8", b'{"type": "\xff"}', None, LEAN, 400, "invalid_json", "body"),
    ("no token before invalid", b"{}", None, LEAN, 401, "authentication_failed", None),
    ("bad token, text", b"{}", "bad", "text/plain", 401, "authentication_failed", None),
    ("empty", b"", "svc", LEAN, 422, "validation_error", "body"),
    ("empty, no type", b"", "svc", None, 422, "validation_error", "body"),
    ("JSON as text", json.dumps({**NOTE, "user_id": "a"}).encode(), "svc", "text/plain",
     422, "validation_error", "body"),
    ("JSON without a type", json.dumps({**NOTE, "user_id": "a"}).encode(), "svc", None,
     422, "validation_error", "body"),
    ("null", b"null", "svc", ROUTE, 422, "validation_error", "body"),
    ("missing type", json.dumps({"user_id": "a", "title": "t", "message": "m"}).encode(),
     "svc", LEAN, 422, "validation_error", "type"),
]


@pytest.mark.parametrize(("what", "body", "token", "content_type", "status", "code", "field"),
                         REFUSALS, ids=[c[0] for c in REFUSALS])
async def test_refusals_keep_fastapis_order(server: RunningServer, what: str, body: bytes,
                                            token: str | None, content_type: str | None,
                                            status: int, code: str,
                                            field: str | None) -> None:
    sent = headers(server, token, content_type or "")
    if content_type is None:
        del sent["Content-Type"]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answer = await http.post("/api/notifications", content=body, headers=sent)
    assert answer.status_code == status, what
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"].get("field") == field
    assert (answer.headers.get("www-authenticate") == "Bearer") == (status == 401)


async def test_lean_and_route_answer_alike_with_cors_on(database_url: str) -> None:
    """With CORS on, the route's answers carry the CORS middleware's `Vary: Origin`, and
    so do the lean path's (the cross-origin requests themselves go to the route)."""
    running = await start_server(make_settings(database_url, cors_origins=["https://x.test"]))
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            for what, body, token in CASES[:3] + CASES[11:12] + CASES[-4:]:
                lean = await http.post("/api/notifications", content=body,
                                       headers=headers(running, token, LEAN))
                route = await http.post("/api/notifications", content=body,
                                        headers=headers(running, token, ROUTE))
                assert comparable(lean) == comparable(route), what
                assert lean.headers.get("vary") == "Origin", what
    finally:
        await running.stop()


async def test_idempotency_key_is_honoured_on_both_paths(server: RunningServer) -> None:
    body = json.dumps({**NOTE, "user_id": "alice"}).encode()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answers = []
        for content_type in (LEAN, ROUTE, LEAN):
            answers.append(await http.post("/api/notifications", content=body, headers={
                **headers(server, "svc", content_type), "Idempotency-Key": "order-1"}))
        too_long = [await http.post("/api/notifications", content=body, headers={
            **headers(server, "svc", content_type), "Idempotency-Key": "k" * 256})
            for content_type in (LEAN, ROUTE)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 1  # one notification, answered thrice
    assert too_long[0].status_code == 422
    assert too_long[0].json() == too_long[1].json()


class Recorder:
    """The app behind the lean path: records the body that reached it and what the
    client sent after it, answers 418."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.after: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        self.after.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call(app: FastCreate, server: RunningServer, chunks: list[bytes],
               extra: list[tuple[bytes, bytes]] | None = None,
               content_type: str = LEAN, disconnect: bool = False) -> list[Message]:
    token = server.token("svc", "service").encode()
    scope = {"type": "http", "method": "POST", "path": "/api/notifications",
             "headers": [(b"content-type", content_type.encode()),
                         (b"authorization", b"Bearer " + token), *(extra or [])]}
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)]
    incoming.append({"type": "http.disconnect"})  # once the client has its answer
    if disconnect:
        incoming = [{"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_the_common_case_never_reaches_fastapi(server: RunningServer) -> None:
    inner = Recorder()
    app = FastCreate(inner, server.services.api, cors=True)
    body = json.dumps({**NOTE, "user_id": "alice"}).encode()
    created = await call(app, server, [body[:10], body[10:]])  # a body in two chunks
    assert created[0]["status"] == 201 and inner.bodies == []
    assert json.loads(created[1]["body"])["user_id"] == "alice"
    # Refused here too, as the route refuses it: an invalid draft.
    refused = await call(app, server, [b'{"type": 1}'])
    assert refused[0]["status"] == 422 and inner.bodies == []
    assert json.loads(refused[1]["body"])["error"]["field"] == "type"
    # Handed on unread: a cross-origin request when CORS is on, another content type.
    assert (await call(app, server, [body], [(b"origin", b"https://x.test")]))[0][
        "status"] == 418
    assert (await call(app, server, [body], [], "application/x.tidings+json"))[0][
        "status"] == 418
    assert inner.bodies == [body, body]
    assert inner.after == ["http.disconnect"] * 2  # after the body, the client's own
    # A client gone before its body: nothing is answered, nothing reaches FastAPI.
    assert await call(app, server, [], disconnect=True) == []
    assert len(inner.bodies) == 2


def test_what_counts_as_json_and_as_a_bearer_token() -> None:
    assert _declares_json(b"application/json")
    assert _declares_json(b"Application/JSON ; charset=utf-8")
    assert not _declares_json(b"application/problem+json")
    assert not _declares_json(b"text/plain")
    assert not _declares_json(b"")
    assert _bearer("Bearer abc") == "abc"
    assert _bearer("bearer   abc  ") == "abc"
    assert _bearer("Basic abc") is None
    assert _bearer("Bearer ") is None
    assert _bearer("") is None
    assert _bearer(None) is None
