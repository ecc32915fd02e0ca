"""Peer: a bare python-socketio AsyncServer on uvicorn, with Tidings' routing, no storage.

Tuned as PERF-BASELINE.md found best: uvloop + httptools + ws="websockets-sansio",
no per-message deflate, and ``gc.freeze()`` after start-up with raised GC thresholds
(default GC's full collections stall the loop ~85 us per connection).

    python -m benchmarks.peers.pysio_server --port 3102 [--history]

``--history`` keeps an in-memory list per user, only so the ``recovery`` scenario can be
exercised against a peer; the comparisons run without it.

``--redis-url`` (or ``PEER_REDIS_URL``) makes it one node of many: python-socketio's
``AsyncRedisManager`` on that Redis, so an emit to a room reaches the room's sockets on
every process (the ``nodes`` scenario's reference).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import socketio
import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def build_app(secret: str, keep_history: bool, redis_url: str = "") -> socketio.ASGIApp:
    # Every emit is published on the manager's one channel; every process reads them all.
    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    sio = socketio.AsyncServer(
        client_manager=manager,
        async_mode="asgi",
        transports=["websocket"],
        http_compression=False,
        websocket_compression=False,
        cors_allowed_origins=[],
    )
    history: dict[str, list[dict[str, Any]]] = {}

    def verify(token: Any) -> dict[str, Any] | None:
        try:
            claims = jwt.decode(str(token or ""), secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        return claims if isinstance(claims.get("sub"), str) else None

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        claims = verify(auth.get("token") if isinstance(auth, dict) else None)
        if claims is None:
            raise socketio.exceptions.ConnectionRefusedError("Authentication failed")
        user = claims["sub"]
        await sio.save_session(sid, {"user": user})
        await sio.enter_room(sid, f"user:{user}")
        await sio.emit("connectionStatus", {"status": "connected", "user_id": user}, to=sid)

    @sio.event
    async def subscribe(sid: str, payload: Any) -> dict[str, Any]:
        wanted = payload.get("channels", []) if isinstance(payload, dict) else []
        ok = [c for c in wanted if isinstance(c, str) and CHANNEL_NAME.match(c)]
        for channel in ok:
            await sio.enter_room(sid, f"channel:{channel}")
        return {"ok": True, "subscribed": ok, "denied": [c for c in wanted if c not in ok]}

    @sio.event
    async def requestMissedNotifications(sid: str, payload: Any) -> dict[str, Any]:
        user = (await sio.get_session(sid))["user"]
        since = payload.get("since", "") if isinstance(payload, dict) else ""
        missed = [n for n in history.get(user, []) if n["created_at"] > since]
        for notification in missed:
            await sio.emit("notification", notification, to=sid)
        return {"ok": True, "count": len(missed)}

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST" or scope["path"] != "/api/notifications":
            return await _answer(send, 404, {"error": "not found"})
        headers = dict(scope["headers"])
        claims = verify(headers.get(b"authorization", b"").decode().removeprefix("Bearer "))
        if claims is None:
            return await _answer(send, 401, {"error": "unauthorized"})
        if not {"service", "admin"} & set(claims.get("roles", [])):
            return await _answer(send, 403, {"error": "forbidden"})
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            body = json.loads(b"".join(chunks))
        except ValueError:
            return await _answer(send, 422, {"error": "invalid JSON"})
        notification = {
            "id": str(uuid.uuid4()),
            "user_id": body.get("user_id"),
            "type": body.get("type"),
            "title": body.get("title"),
            "message": body.get("message"),
            "channel": body.get("channel") or "default",
            "priority": body.get("priority") or "medium",
            "status": "pending",
            "scheduled_at": None,
            "created_at": _now_iso(),
            "delivered_at": None,
            "read_at": None,
            "data": body.get("data") or {},
        }
        user = body.get("user_id")
        if user:
            if keep_history:
                history.setdefault(user, []).append(notification)
            await sio.emit("notification", notification, room=f"user:{user}")
            return await _answer(send, 201, notification)
        room = f"channel:{notification['channel']}"
        count = sum(1 for _ in sio.manager.get_participants("/", room))
        await sio.emit("notification", notification, room=room)
        return await _answer(send, 202, {"count": count})

    return socketio.ASGIApp(sio, other_asgi_app=api, socketio_path="socket.io")


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class _FrozenGcServer(uvicorn.Server):
    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        # After start-up everything alive is long-lived: freeze it out of the collector
        # and make full collections rare (PERF-BASELINE: removes the loop pauses).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50000, 50, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3102)
    parser.add_argument("--history", action="store_true")
    parser.add_argument("--redis-url", default=os.environ.get("PEER_REDIS_URL", ""))
    args = parser.parse_args()
    secret = os.environ.get("JWT_SECRET") or "bench-secret-for-loopback-load-tests-only"
    config = uvicorn.Config(
        build_app(secret, args.history, args.redis_url),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )
    _FrozenGcServer(config).run()


if __name__ == "__main__":
    main()
