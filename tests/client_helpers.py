"""Test helpers of the Python client's tests: a loopback proxy that can lose answers, and
a Tidings server started on a chosen port (to restart it where clients expect it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from tests.conftest import RunningServer
from tidings.app import create_app
from tidings.config.settings import Settings
from tidings.container import build_services
from tidings.server import bind_sockets, uvicorn_config
from tidings.services.tokens import TokenService

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    status: int
    retry_after: str | None


@dataclass
class FlakyProxy:
    """Forwards every request to `upstream`; the first `lose` answers are replaced by a
    503 of the contract's shape, after the request reached Tidings (the answer was lost,
    not the request), or before it when `forward_lost` is False."""

    upstream: str
    lose: int = 0
    forward_lost: bool = True
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]
                   if k.decode().lower() not in ("host", "content-length")}
        losing = self.lose > 0
        self.lose -= 1 if losing else 0
        status, out, answer_headers = 503, b'{"error": {"code": "unavailable", ' \
            b'"message": "lost on the way"}}', {"content-type": "application/json"}
        if not losing or self.forward_lost:
            async with httpx.AsyncClient(base_url=self.upstream, timeout=10) as client:
                response = await client.request(
                    scope["method"], scope["path"], content=body, headers=headers,
                    params=scope["query_string"].decode())
            if not losing:
                status, out = response.status_code, response.content
                answer_headers = {k: v for k, v in response.headers.items()
                                  if k.lower() in ("content-type", "retry-after")}
        self.seen.append(Seen(scope["method"], scope["path"],
                              headers.get("idempotency-key"), status,
                              answer_headers.get("retry-after")))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in answer_headers.items()]})
        await send({"type": "http.response.body", "body": out})


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=10)


async def serve_asgi(app: Any) -> Served:
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    sockets = bind_sockets("127.0.0.1", 0)
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return Served(f"http://127.0.0.1:{sockets[0].getsockname()[1]}", server, task)


async def start_at(settings: Settings, port: int) -> RunningServer:
    """A Tidings server as `start_server` starts one, on `port` (0: any free port)."""
    services = build_services(settings)
    config = uvicorn_config(settings)
    config.app = create_app(settings, services)
    server = uvicorn.Server(config)
    sockets = bind_sockets("127.0.0.1", port)
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{sockets[0].getsockname()[1]}", settings,
                         services, TokenService(settings), server, task)
