"""Runs the ASGI app on uvicorn, tuned the way PERF-BASELINE.md measured to be fastest:
uvloop, httptools, the sans-I/O websockets implementation, no per-message deflate unless
asked for, and a garbage collector that does not stall the loop at 10,000+ connections."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import Callable

import uvicorn
import uvloop

from tidings.app import create_app
from tidings.config.settings import Settings
from tidings.realtime.lean.uvicorn_ws import LeanWebSocketProtocol

log = logging.getLogger("tidings")

# With ~10k long-lived connection objects, CPython's default thresholds run full
# collections often enough to pause the loop for hundreds of ms. Fewer young collections,
# and objects from start-up frozen out of the collector's view, removed those pauses.
GC_THRESHOLDS = (50_000, 50, 1000)


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` resolves to ("localhost": 127.0.0.1 and
    ::1), all on the same port (the first one picks it when `port` is 0)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen = set()
    for family, kind, proto, _name, address in infos:
        if (family, address[0]) in seen:
            continue
        seen.add((family, address[0]))
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if sockets:
            address = (address[0], sockets[0].getsockname()[1], *address[2:])
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            if not sockets and len(infos) == 1:
                raise
            continue  # e.g. no IPv6 on this host: serve on what does exist
        sock.listen(2048)
        sock.setblocking(False)
        sockets.append(sock)
    if not sockets:
        raise OSError(f"could not listen on {host}:{port}")
    return sockets


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        http="httptools",
        # uvicorn's websockets-sansio protocol, with lighter per-connection state.
        ws=LeanWebSocketProtocol,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        # A frame over the event limit is refused from its header, before authentication,
        # instead of being buffered (uvicorn's default is 16 MB).
        ws_max_size=settings.max_event_bytes,
        # uvicorn rewrites the client address and scheme from forwarded headers only for
        # these peers; by default none (its own default trusts 127.0.0.1).
        forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
        proxy_headers=bool(settings.trusted_proxies),
        # Engine.IO already pings every client; uvicorn's own WebSocket keepalive would be
        # a second timer per connection for the same job.
        ws_ping_interval=None,
        lifespan="on",
        access_log=False,
        # uvicorn logs every WebSocket open and close at INFO: at 10k connections that is
        # a log line per connect, so its own logs stay at WARNING unless debugging.
        log_level="debug" if settings.log_level.lower() == "debug" else "warning",
        timeout_graceful_shutdown=5,
        # uvicorn's own logging set-up would print its lines apart from ours (and never as
        # JSON); without it, they go through the handler of `tidings.config.logs`.
        log_config=None,
        ssl_certfile=settings.tls_cert_file or None,
        ssl_keyfile=settings.tls_key_file or None,
    )


async def serve(
    settings: Settings,
    sockets: list[socket.socket],
    on_ready: Callable[[list[socket.socket]], None] | None = None,
) -> None:
    server = uvicorn.Server(uvicorn_config(settings))
    gc.set_threshold(*GC_THRESHOLDS)

    async def when_started() -> None:
        # uvicorn exposes no start-up event, only this flag.
        while not server.started and not server.should_exit:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        gc.collect()
        gc.freeze()
        if on_ready is not None:
            on_ready(sockets)

    watcher = asyncio.create_task(when_started())
    try:
        await server.serve(sockets=sockets)
    finally:
        watcher.cancel()


def run(settings: Settings, host: str, port: int) -> None:
    sockets = bind_sockets(host, port)

    scheme = "https" if settings.tls else "http"

    def announce(bound: list[socket.socket]) -> None:
        for sock in bound:
            addr, bound_port = sock.getsockname()[:2]
            shown = f"[{addr}]" if ":" in addr else addr
            log.info("Tidings listening on %s://%s:%d (API docs at /docs)",
                     scheme, shown, bound_port)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, sockets, announce))
