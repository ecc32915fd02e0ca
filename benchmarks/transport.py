"""HTTP transports of the sender: how a create reaches the server.

Two HTTP transports: ``raw`` (HTTP/1.1 keep-alive over asyncio streams, the default)
and ``httpx``. On this machine httpx.AsyncClient costs ~0.5 ms of CPU per request,
which caps one core at ~1.5-2k/s; the raw transport does several times that.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from .loopback import Target


class Transport(Protocol):
    async def post(self, path: str, body: bytes) -> tuple[int, bytes]: ...
    async def close(self) -> None: ...


class _StaleConnection(ConnectionError):
    """The server had closed a kept-alive connection before reading the request."""


class _RawConnection:
    __slots__ = ("last_used", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        """Send one request, read one response; third item: may the connection be reused."""
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise _StaleConnection("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, keep = 0, False, True
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and value == b"close":
                keep = False
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            return status, b"".join(parts), keep
        return status, await self.reader.readexactly(length) if length else b"", keep


class RawTransport:
    """A pool of at most ``connections`` keep-alive HTTP/1.1 connections."""

    MAX_IDLE_S = 2.0

    def __init__(self, target: Target, token: str, connections: int = 32) -> None:
        self.target = target
        self._auth = f"Authorization: Bearer {token}\r\n".encode()
        self._host = f"Host: {target.host}:{target.port}\r\n".encode()
        self._idle: list[_RawConnection] = []
        self._slots = asyncio.Semaphore(connections)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.send("POST", path, body)

    async def send(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """One request with a JSON body on a pooled keep-alive connection."""
        head = (
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self._host
            + self._auth
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        async with self._slots:
            conn = self._take_idle()
            try:
                if conn is None:
                    conn = await self._open()
                    status, payload, keep = await conn.request(head, body)
                else:
                    try:
                        status, payload, keep = await conn.request(head, body)
                    except _StaleConnection:
                        # Closed by the server's keep-alive timeout while idle: nothing
                        # was read, so one retry on a fresh connection is safe.
                        conn.writer.close()
                        conn = await self._open()
                        status, payload, keep = await conn.request(head, body)
            except BaseException:
                if conn is not None:
                    conn.writer.close()
                raise
            if keep:
                conn.last_used = time.monotonic()
                self._idle.append(conn)
            else:
                conn.writer.close()
            return status, payload

    def _take_idle(self) -> _RawConnection | None:
        while self._idle:
            conn = self._idle.pop()
            # Servers drop idle keep-alive connections after a few seconds (uvicorn: 5 s).
            if time.monotonic() - conn.last_used < self.MAX_IDLE_S:
                return conn
            conn.writer.close()
        return None

    async def _open(self) -> _RawConnection:
        host = self.target.host.strip("[]")
        reader, writer = await asyncio.open_connection(host, self.target.port, limit=1 << 20)
        return _RawConnection(reader, writer)

    async def close(self) -> None:
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()


class HttpxTransport:
    def __init__(self, target: Target, token: str, connections: int = 32) -> None:
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(
            base_url=target.http_url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            limits=limits,
            timeout=30.0,
            trust_env=False,  # never route loopback traffic through an environment proxy
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self._client.post(path, content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


def make_transport(kind: str, target: Target, token: str, connections: int) -> Transport:
    if kind == "httpx":
        return HttpxTransport(target, token, connections)
    return RawTransport(target, token, connections)

