"""A lean Socket.IO v5 / Engine.IO v4 client over one WebSocket, for load generation.

Why not python-socketio's client: it costs several tasks, timers and ~100 KB per
connection, so one load-generator core holds only a few thousand of them. This client
speaks just what the benchmarks need, directly on the wire:

    server -> 0{"sid":..,"pingInterval":..}       Engine.IO open
    client -> 40{"token": "<jwt>"}                 Socket.IO CONNECT to "/" with auth
    server -> 40{"sid":..} | 44{"message":..}      connected | connect_error
    server -> 2            client -> 3             Engine.IO ping / pong
    server -> 42["event", payload]                 event
    client -> 42<id>["event", payload]             event expecting an ack
    server -> 43<id>[answer]                       the ack

One reader task per connection and nothing else: no keepalive task (Engine.IO v4 has
the server ping), no task per message, ``__slots__`` everywhere.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class ConnectError(Exception):
    """The server refused the Socket.IO CONNECT (``44``) or broke the handshake."""


class Receipts:
    """What every client of one process received; one shared object, not one per client.

    A notification is matched by ``data.bench_key``, a key the sender puts in (the
    notification id is recorded too, but a channel notification has one id per
    recipient in Tidings, so the id alone cannot tell what was sent).
    """

    __slots__ = ("duplicates", "misrouted", "other_events", "records", "seen", "unmatched")

    def __init__(self) -> None:
        # (bench_key, user, latency_ms, notification id)
        self.records: list[tuple[str, str, float, str]] = []
        self.seen: set[tuple[str, str]] = set()
        self.duplicates = 0
        self.unmatched = 0  # notifications without a bench_key (not sent by this run)
        self.misrouted = 0  # targeted to another user, yet received here
        self.other_events = 0

    def notification(self, user: str, payload: Any, received_at: float) -> None:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or data.get("bench_key") is None:
            self.unmatched += 1
            return
        key = str(data["bench_key"])
        target = data.get("bench_user")
        if target is not None and target != user:
            self.misrouted += 1
        if (key, user) in self.seen:
            # At-least-once delivery: a replay may repeat a live notification.
            self.duplicates += 1
            return
        self.seen.add((key, user))
        sent_at = float(data.get("bench_sent_at", received_at))
        self.records.append(
            (key, user, (received_at - sent_at) * 1000.0, str(payload.get("id", "")))
        )

    def reset(self) -> None:
        self.records.clear()
        self.seen.clear()
        self.duplicates = self.unmatched = self.misrouted = self.other_events = 0


class LeanClient:
    """One user's Socket.IO connection. ``connect`` may be called again after a close."""

    __slots__ = (
        "_acks",
        "_next_ack",
        "closing",
        "dropped",
        "pings",
        "reader",
        "receipts",
        "token",
        "user",
        "ws",
    )

    def __init__(self, user: str, token: str, receipts: Receipts) -> None:
        self.user = user
        self.token = token
        self.receipts = receipts
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.pings = 0
        self.dropped = 0  # connections the server (or the network) ended, not us
        self.closing = False
        self._acks: dict[int, asyncio.Future[Any]] | None = None  # made on first use
        self._next_ack = 0

    @property
    def connected(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def connect(
        self, ws_url: str, local_addr: str | None = None, timeout_s: float = 15.0
    ) -> float:
        """Open the WebSocket, authenticate, start the reader; return seconds taken."""
        started = time.perf_counter()
        self.closing = False
        extra: dict[str, Any] = {"local_addr": (local_addr, 0)} if local_addr else {}
        ws = await connect(
            ws_url,
            compression=None,  # browsers negotiate deflate; the server figures here are without it
            proxy=None,  # loopback only; proxy detection re-reads os.environ per connect (~0.5 ms)
            ping_interval=None,  # Engine.IO v4: the server pings, the client only answers
            open_timeout=timeout_s,
            close_timeout=1,
            max_size=None,
            user_agent_header=None,
            **extra,
        )
        try:
            async with asyncio.timeout(timeout_s):
                opening = await ws.recv()
                if not isinstance(opening, str) or not opening.startswith("0"):
                    raise ConnectError(f"expected an Engine.IO open packet, got {opening!r:.80}")
                await ws.send('40{"token":' + json.dumps(self.token) + "}")
                while True:
                    answer = await ws.recv()
                    if not isinstance(answer, str):
                        continue
                    if answer.startswith("40"):
                        break
                    if answer.startswith("44"):
                        raise ConnectError(_connect_error_message(answer[2:]))
                    if answer == "2":
                        await ws.send("3")
        except BaseException:
            await ws.close()
            raise
        self.ws = ws
        self.reader = asyncio.get_running_loop().create_task(self._read(ws))
        return time.perf_counter() - started

    async def emit(self, event: str, payload: Any) -> None:
        assert self.ws is not None
        await self.ws.send("42" + json.dumps([event, payload], separators=(",", ":")))

    async def call(self, event: str, payload: Any, timeout_s: float = 30.0) -> Any:
        """Emit with an acknowledgement id and wait for the server's ``43<id>`` answer."""
        assert self.ws is not None
        if self._acks is None:
            self._acks = {}
        ack_id = self._next_ack
        self._next_ack += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        try:
            await self.ws.send(f"42{ack_id}" + json.dumps([event, payload], separators=(",", ":")))
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._acks.pop(ack_id, None)

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader
        self.ws = None
        self.reader = None

    async def _read(self, ws: ClientConnection) -> None:
        receipts = self.receipts
        try:
            async for message in ws:
                received_at = time.time()  # before parsing: parse time is the client's cost
                if not isinstance(message, str) or not message:
                    continue
                kind = message[0]
                if kind == "2":
                    self.pings += 1
                    await ws.send("3")
                elif kind == "4" and len(message) > 1:
                    packet = message[1]
                    if packet == "2":
                        self._on_event(message, received_at, receipts)
                    elif packet == "3":
                        self._on_ack(message)
                    elif packet == "1":  # the server disconnected the namespace
                        break
                elif kind == "1":  # Engine.IO close
                    break
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.dropped += 1
            if self._acks:
                for future in self._acks.values():
                    if not future.done():
                        future.set_exception(ConnectionError("connection closed before the ack"))

    def _on_event(self, message: str, received_at: float, receipts: Receipts) -> None:
        start = _skip_digits(message, 2)  # a server event may carry an ack id; we never ask for it
        name, _, rest = message[start + 2 :].partition('",')
        if name == "notification":
            receipts.notification(self.user, json.loads(rest[:-1]), received_at)
        else:
            receipts.other_events += 1

    def _on_ack(self, message: str) -> None:
        start = _skip_digits(message, 2)
        if self._acks is None or start == 2:
            return
        future = self._acks.get(int(message[2:start]))
        if future is not None and not future.done():
            args = json.loads(message[start:])
            future.set_result(args[0] if len(args) == 1 else args)


def _skip_digits(text: str, index: int) -> int:
    while index < len(text) and text[index].isdigit():
        index += 1
    return index


def _connect_error_message(body: str) -> str:
    try:
        return str(json.loads(body).get("message", body))
    except (ValueError, AttributeError):
        return body
