"""A client that stops reading, on a real loopback connection: when its session ends, the
server's side of the TCP connection goes with it, and so does what the kernel still held
for the client (megabytes, kept for minutes by a socket merely closed). Both transports.

The client is a raw socket with a small receive buffer: it speaks just enough WebSocket to
open a session and connect namespace `/`, then reads nothing until the session has ended.
The server's side is looked up in the kernel's table of TCP sockets (`/proc/net/tcp`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import EVENT_TIMEOUT, RunningServer, make_settings, start_server
from tidings.realtime.lean import server as lean_server
from tidings.services.tokens import LEEWAY_S

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/net/tcp")

CHUNK = 50_000
# Sent before the session ends: more than the client's receive buffer takes, less than the
# lean transport's bound for a lagging client (whose close is tested elsewhere).
BACKLOG = 30 * CHUNK


@pytest.fixture(params=["lean", "python-socketio"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["token expiry", "ping timeout"])
def ending(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server(transport: str, ending: str, tmp_path: Path, sqlite_template: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    fast = ending == "ping timeout"  # else the pings come after the token has expired
    if fast:  # every 0.3 s, 0.3 s to answer
        monkeypatch.setattr(lean_server, "PING_INTERVAL", 0.3)
        monkeypatch.setattr(lean_server, "PING_TIMEOUT", 0.3)
    path = tmp_path / "tidings.db"
    shutil.copy(sqlite_template, path)
    running = await start_server(make_settings(f"sqlite+aiosqlite:///{path}",
                                               realtime_transport=transport))
    sio = getattr(running.services.gateway.transport, "server", None)
    if sio is not None and fast:  # python-socketio's, before any session opens
        sio.eio.ping_interval, sio.eio.ping_timeout = 0.3, 0.3
    try:
        yield running
    finally:
        await running.stop()


def server_side(server: RunningServer, client: socket.socket) -> list[str]:
    """The states of the server's sockets of this connection that the kernel still has."""
    server_port = int(server.url.rsplit(":", 1)[1])
    client_port = client.getsockname()[1]
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
                server_port, client_port):
            states.append(fields[3])
    return states


def frame(text: str) -> bytes:
    """One masked text frame, as a client sends it."""
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x81, 0x80 | size]) if size < 126 else \
        bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


async def slow_client(server: RunningServer, token: str) -> socket.socket:
    """Opens a WebSocket session and connects `/` with `token`; reads nothing after."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    host, port = server.url.removeprefix("http://").split(":")
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += await loop.sock_recv(sock, 1)  # byte by byte: no frame is read past it
    assert answer.startswith(b"HTTP/1.1 101"), answer
    await loop.sock_sendall(sock, frame("40" + json.dumps({"token": token})))
    return sock


async def connected_sid(server: RunningServer) -> str:
    transport = server.services.gateway.transport
    for _ in range(250):
        members = transport.members("user:alice")
        if members:
            return members[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the slow client never connected")


async def until_gone(server: RunningServer, client: socket.socket) -> list[str]:
    for _ in range(int(EVENT_TIMEOUT / 0.05)):
        states = server_side(server, client)
        if not states:
            return states
        await asyncio.sleep(0.05)
    return server_side(server, client)


async def gauge_settles(server: RunningServer, value: float) -> bool:
    for _ in range(int(EVENT_TIMEOUT / 0.02)):
        if server.metric("tidings_connections") == value:
            return True
        await asyncio.sleep(0.02)
    return False


async def read_to_the_end(client: socket.socket) -> tuple[int, BaseException | None]:
    """Reads what reached the client; (bytes read, the error that ended it or None: EOF)."""
    loop = asyncio.get_running_loop()
    total = 0
    try:
        while chunk := await asyncio.wait_for(loop.sock_recv(client, 65536), EVENT_TIMEOUT):
            total += len(chunk)
    except OSError as exc:
        return total, exc
    return total, None


async def test_a_session_that_ends_drops_the_connection_of_a_client_that_does_not_read(
    server: RunningServer, ending: str,
) -> None:
    # The token lives ~3 s (it is honoured LEEWAY_S past `exp`): time to fill the buffers.
    ttl = 3 - LEEWAY_S if ending == "token expiry" else 600
    client = await slow_client(server, server.token("alice", ttl=ttl))
    try:
        sid = await connected_sid(server)
        transport = server.services.gateway.transport
        for _ in range(BACKLOG // CHUNK):
            await transport.send([sid], "big", {"x": "y" * CHUNK})
        assert server_side(server, client) == ["01"]  # established, megabytes queued
        # The session ends (the server's own doing); the client still reads nothing.
        assert await until_gone(server, client) == []
        assert await gauge_settles(server, 0)  # the session ended, and the gateway knows
        read, error = await read_to_the_end(client)
        # Reset, not closed behind the data: the client gets what its buffer held only.
        assert isinstance(error, ConnectionResetError), (read, error)
        assert read < BACKLOG
    finally:
        client.close()
