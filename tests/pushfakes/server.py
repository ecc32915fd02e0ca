"""Serving a fake provider: a tiny ASGI base class with scripted replies, run by hypercorn
on a loopback port (HTTP/1.1, or HTTP/2 over TLS with a trustme certificate)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes | dict[str, Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)


HANG = Reply(0)  # never answer (until the server stops): the client's timeout fires


class BadRequest(Exception):
    """The request breaks the provider's rules; answered 400 with the reason as text, so
    a failing test shows why."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    http_version: str

    def json(self) -> Any:
        return json.loads(self.body)


class FakeProvider:
    """Checks each request with `check`; a request that passes gets the next scripted
    reply, or `ok()` when the script is empty."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.released = asyncio.Event()

    def then(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = Seen(
            method=scope["method"],
            path=scope["path"],
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            http_version=scope["http_version"],
        )
        self.seen.append(request)
        try:
            reply = self.check(request)
        except BadRequest as exc:
            reply = Reply(400, f"fake provider: {exc}".encode())
        if reply is None:
            reply = self.script.popleft() if self.script else self.ok(request)
        if reply is HANG:
            await self.released.wait()
            return
        await respond(send, reply)

    def check(self, request: Seen) -> Reply | None:
        """Raise BadRequest for a malformed request; a Reply answers it outright (an
        endpoint the script is not about); None lets the script answer."""
        raise NotImplementedError

    def ok(self, request: Seen) -> Reply:
        raise NotImplementedError


async def respond(send: Send, reply: Reply) -> None:
    body = reply.body
    headers = {k.lower(): v for k, v in reply.headers.items()}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def running(
    app: FakeProvider, tls: tuple[trustme.CA, Path] | None = None
) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (TLS with a certificate of `tls`'s CA written under its
    path, when given) and yield its base URL; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue here until hypercorn accepts them
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 1.0
    config.errorlog = None
    scheme = "http"
    if tls is not None:
        ca, folder = tls
        pem = folder / "fake-provider.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
        config.certfile = config.keyfile = str(pem)
        scheme = "https"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        app.released.set()
        stop.set()
        await asyncio.wait_for(task, 10)
