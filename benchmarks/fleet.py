"""Many clients of one user each, driven together inside one event loop (one process).

Two kinds with the same methods: ``LeanFleet`` (``leanclient``, the load) and
``FullFleet`` (python-socketio's AsyncClient, a few hundred, as a cross-check that the
lean client measures the same latency as a real client does). Every method answers a
JSON-able dict, because ``pool`` sends it to the parent process as it is.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Protocol

from .leanclient import LeanClient, Receipts
from .tokens import user_token


class Fleet(Protocol):
    receipts: Receipts

    async def connect(self, users: list[str], concurrency: int) -> dict[str, Any]: ...
    async def call_all(self, event: str, payload: Any, timeout_s: float) -> dict[str, Any]: ...
    async def drop(self) -> dict[str, Any]: ...
    async def recover(
        self, event: str, payload: Any, concurrency: int, timeout_s: float
    ) -> dict[str, Any]: ...
    async def reconnect(self, concurrency: int) -> dict[str, Any]: ...
    def stats(self) -> dict[str, Any]: ...
    async def close(self) -> dict[str, Any]: ...


def _error_name(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:80]}" if text else type(exc).__name__


class LeanFleet:
    def __init__(self, ws_url: str, secret: str, source_addr: str | None) -> None:
        self.ws_url = ws_url
        self.secret = secret
        self.source_addr = source_addr
        self.receipts = Receipts()
        self.clients: list[LeanClient] = []

    async def connect(self, users: list[str], concurrency: int) -> dict[str, Any]:
        # Bounded concurrency: opening thousands at once overflows the server's accept
        # backlog (somaxconn 4096) and measures SYN retries instead of the server.
        self.clients = [LeanClient(u, user_token(self.secret, u), self.receipts) for u in users]
        return await self._connect_clients(self.clients, concurrency)

    async def reconnect(self, concurrency: int) -> dict[str, Any]:
        return await self._connect_clients(self.clients, concurrency)

    async def _connect_clients(self, clients: list[LeanClient], concurrency: int) -> dict[str, Any]:
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        times: list[float] = []

        failed_users: list[str] = []

        async def one(client: LeanClient) -> None:
            async with gate:
                try:
                    times.append(await client.connect(self.ws_url, self.source_addr))
                except Exception as exc:  # counted and reported, never hidden
                    errors[_error_name(exc)] += 1
                    failed_users.append(client.user)

        started = time.perf_counter()
        await asyncio.gather(*(one(c) for c in clients))
        return _connect_answer(times, errors, failed_users, time.perf_counter() - started)

    async def recover(
        self, event: str, payload: Any, concurrency: int, timeout_s: float
    ) -> dict[str, Any]:
        """Reconnect every client and have each ask at once for what it missed (with ack)."""
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        answers: list[Any] = []
        started = time.perf_counter()
        last_connect = started

        async def one(client: LeanClient) -> None:
            nonlocal last_connect
            async with gate:
                try:
                    await client.connect(self.ws_url, self.source_addr)
                except Exception as exc:
                    errors[f"connect: {_error_name(exc)}"] += 1
                    return
                last_connect = max(last_connect, time.perf_counter())
            try:
                answers.append(await client.call(event, payload, timeout_s))
            except Exception as exc:
                errors[f"ack: {_error_name(exc)}"] += 1

        await asyncio.gather(*(one(c) for c in self.clients))
        answer = _tally_answers(answers, errors, time.perf_counter() - started)
        answer["reconnected_s"] = last_connect - started
        return answer

    async def call_all(self, event: str, payload: Any, timeout_s: float) -> dict[str, Any]:
        """Every connected client emits ``event`` with an ack; answers are tallied."""
        errors: Counter[str] = Counter()
        answers: list[Any] = []

        async def one(client: LeanClient) -> None:
            try:
                answers.append(await client.call(event, payload, timeout_s))
            except Exception as exc:
                errors[_error_name(exc)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(c) for c in self.clients if c.connected))
        return _tally_answers(answers, errors, time.perf_counter() - started)

    async def drop(self) -> dict[str, Any]:
        await asyncio.gather(*(c.close() for c in self.clients))
        return {"closed": len(self.clients)}

    def stats(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "connected": sum(1 for c in self.clients if c.connected),
            "received": len(self.receipts.records),
            "drops": sum(c.dropped for c in self.clients),
            "pings": sum(c.pings for c in self.clients),
        }

    async def close(self) -> dict[str, Any]:
        await self.drop()
        return {"closed": len(self.clients)}


class FullFleet:
    """python-socketio AsyncClient instances, for the cross-check only."""

    def __init__(self, http_url: str, secret: str) -> None:
        self.http_url = http_url
        self.secret = secret
        self.receipts = Receipts()
        self.clients: list[Any] = []
        self.users: list[str] = []
        self.drops = 0
        self.closing = False

    def _make(self, user: str) -> Any:
        import socketio  # optional for everything else, so imported only here

        client = socketio.AsyncClient(reconnection=False)
        receipts = self.receipts

        @client.on("notification")
        def on_notification(payload: Any) -> None:
            receipts.notification(user, payload, time.time())

        @client.on("disconnect")
        def on_disconnect(*_: Any) -> None:
            if not self.closing:
                self.drops += 1

        return client

    async def connect(self, users: list[str], concurrency: int) -> dict[str, Any]:
        self.users = users
        self.clients = [self._make(u) for u in users]
        return await self.reconnect(concurrency)

    async def reconnect(self, concurrency: int) -> dict[str, Any]:
        self.closing = False
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        times: list[float] = []

        failed_users: list[str] = []

        async def one(client: Any, user: str) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    await self._connect_one(client, user)
                    times.append(time.perf_counter() - started)
                except Exception as exc:
                    errors[_error_name(exc)] += 1
                    failed_users.append(user)

        started = time.perf_counter()
        await asyncio.gather(*(one(c, u) for c, u in zip(self.clients, self.users, strict=False)))
        return _connect_answer(times, errors, failed_users, time.perf_counter() - started)

    async def _connect_one(self, client: Any, user: str) -> None:
        await client.connect(
            self.http_url,
            auth={"token": user_token(self.secret, user)},
            transports=["websocket"],
            wait_timeout=15,
        )

    async def recover(
        self, event: str, payload: Any, concurrency: int, timeout_s: float
    ) -> dict[str, Any]:
        self.closing = False
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        answers: list[Any] = []
        started = time.perf_counter()
        last_connect = started

        async def one(client: Any, user: str) -> None:
            nonlocal last_connect
            async with gate:
                try:
                    await self._connect_one(client, user)
                except Exception as exc:
                    errors[f"connect: {_error_name(exc)}"] += 1
                    return
                last_connect = max(last_connect, time.perf_counter())
            try:
                answers.append(await client.call(event, payload, timeout=timeout_s))
            except Exception as exc:
                errors[f"ack: {_error_name(exc)}"] += 1

        await asyncio.gather(*(one(c, u) for c, u in zip(self.clients, self.users, strict=False)))
        answer = _tally_answers(answers, errors, time.perf_counter() - started)
        answer["reconnected_s"] = last_connect - started
        return answer

    async def call_all(self, event: str, payload: Any, timeout_s: float) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        answers: list[Any] = []

        async def one(client: Any) -> None:
            try:
                answers.append(await client.call(event, payload, timeout=timeout_s))
            except Exception as exc:
                errors[_error_name(exc)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(c) for c in self.clients if c.connected))
        return _tally_answers(answers, errors, time.perf_counter() - started)

    async def drop(self) -> dict[str, Any]:
        self.closing = True
        await asyncio.gather(*(c.disconnect() for c in self.clients if c.connected))
        return {"closed": len(self.clients)}

    def stats(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "connected": sum(1 for c in self.clients if c.connected),
            "received": len(self.receipts.records),
            "drops": self.drops,
            "pings": 0,  # python-socketio answers pings internally and does not count them
        }

    async def close(self) -> dict[str, Any]:
        return await self.drop()


def _connect_answer(
    times: list[float], errors: Counter[str], failed_users: list[str], elapsed: float
) -> dict[str, Any]:
    return {
        "connected": len(times),
        "failed": sum(errors.values()),
        "errors": dict(errors),
        "failed_users": failed_users,
        "elapsed_s": elapsed,
        "connect_ms": [t * 1000.0 for t in times],
    }


def _tally_answers(answers: list[Any], errors: Counter[str], elapsed: float) -> dict[str, Any]:
    ok = [a for a in answers if isinstance(a, dict) and a.get("ok") is True]
    for answer in answers:
        if not (isinstance(answer, dict) and answer.get("ok") is True):
            errors[f"not ok: {str(answer)[:80]}"] += 1
    return {
        "ok": len(ok),
        "failed": sum(errors.values()),
        "errors": dict(errors),
        "count_sum": sum(int(a.get("count", 0) or 0) for a in ok),
        "elapsed_s": elapsed,
    }
