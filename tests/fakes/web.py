"""A real HTTP server (aiohttp) on loopback that records each request and answers from a
script: a status with headers and a JSON body, or no answer at all (to test timeouts)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HANG = object()  # a scripted answer: accept the request and never answer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    text: str | None = None  # a plain-text body instead (some services answer errors so)


@dataclass
class ScriptedHTTP:
    """Answers each request with the next scripted reply, then `default`. `check` may
    replace a scripted answer after looking at the request (a receiver verifying it)."""

    replies: deque[Reply | object] = field(default_factory=deque)
    default: Reply = field(default_factory=Reply)
    requests: list[Recorded] = field(default_factory=list)
    check: Callable[[Recorded], Reply | None] | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(request.method, request.path_qs, dict(request.headers),
                            await request.read())
        self.requests.append(recorded)
        reply = self.replies.popleft() if self.replies else self.default
        if reply is HANG:
            await self.release.wait()
            return web.Response(status=504)
        assert isinstance(reply, Reply)
        if self.check is not None:
            reply = self.check(recorded) or reply
        if reply.text is not None:
            return web.Response(status=reply.status, headers=reply.headers, text=reply.text)
        if reply.json is None:
            return web.Response(status=reply.status, headers=reply.headers)
        return web.json_response(reply.json, status=reply.status, headers=reply.headers)


@asynccontextmanager
async def http_server(script: ScriptedHTTP) -> AsyncIterator[str]:
    """Serve `script` on 127.0.0.1; yields the base URL."""
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]] = script.handle
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        script.release.set()
        await runner.cleanup()
