"""Creates notifications over HTTP, open loop: at a fixed rate whatever the server does.

Open loop matters: a closed loop (send, wait, send) slows down with the server and
hides its stalls ("coordinated omission"). Here request ``i`` is *scheduled* at
``start + i / rate`` and carries that wall-clock instant as ``data.bench_sent_at``, so
time spent queued in the generator or the server shows up as latency. The generator's
own lag (actual start minus schedule) is reported apart, to tell which side was slow.
The HTTP transports it sends over are in transport.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .transport import Transport

API_PATH = "/api/notifications"


@dataclass
class SendLog:
    """What the sender did: created keys (to count losses) and everything that failed."""

    created: dict[str, str] = field(default_factory=dict)  # bench_key -> user ("" for channel)
    ids: dict[str, str] = field(default_factory=dict)  # bench_key -> notification id
    http_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)  # generator lag behind the schedule
    errors: Counter[str] = field(default_factory=Counter)
    scheduled: int = 0
    elapsed_s: float = 0.0
    answers: list[Any] = field(default_factory=list)  # bodies of 202 answers (channel sends)

    @property
    def rate(self) -> float:
        return len(self.created) / self.elapsed_s if self.elapsed_s else 0.0


class Sender:
    def __init__(self, transport: Transport, run_id: str) -> None:
        self.transport = transport
        self.run_id = run_id  # keeps keys unique across runs against one server
        self._counter = itertools.count()
        self.log = SendLog()

    def _body(
        self, user: str | None, sent_at: float, channel: str | None = None
    ) -> tuple[str, bytes]:
        key = f"{self.run_id}-{next(self._counter)}"
        data: dict[str, Any] = {"bench_sent_at": sent_at, "bench_key": key}
        body: dict[str, Any] = {"type": "bench", "title": "t", "message": "m", "data": data}
        if user is not None:
            body["user_id"] = user
            data["bench_user"] = user
        if channel is not None:
            body["channel"] = channel
        return key, json.dumps(body, separators=(",", ":")).encode()

    async def create(
        self, user: str | None, sent_at: float | None = None, channel: str | None = None
    ) -> None:
        """One POST; the outcome lands in ``self.log``. Never raises."""
        now = time.time()
        scheduled = now if sent_at is None else sent_at
        key, body = self._body(user, scheduled, channel)
        self.log.lag_ms.append((now - scheduled) * 1000.0)
        started = time.perf_counter()
        try:
            status, payload = await self.transport.post(API_PATH, body)
        except Exception as exc:
            self.log.errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
            return
        self.log.http_ms.append((time.perf_counter() - started) * 1000.0)
        if status == 201:
            self.log.created[key] = user or ""
            try:
                self.log.ids[key] = str(json.loads(payload)["id"])
            except (ValueError, KeyError, TypeError):
                self.log.errors["201 without an id"] += 1
        elif status == 202:
            self.log.created[key] = ""
            try:
                self.log.answers.append(json.loads(payload))
            except ValueError:
                self.log.answers.append(None)
        else:
            self.log.errors[f"HTTP {status}: {payload[:60].decode(errors='replace')}"] += 1

    async def run_rate(
        self,
        rate: float,
        duration: float,
        pick_user: Callable[[], str],
        max_in_flight: int = 5000,
        stop: asyncio.Event | None = None,
    ) -> SendLog:
        """Offer ``rate``/s for ``duration`` s, open loop; ends by itself."""
        loop = asyncio.get_running_loop()
        total = int(rate * duration)
        in_flight: set[asyncio.Task[None]] = set()
        start_mono = loop.time() + 0.01
        start_wall = time.time() + (start_mono - loop.time())
        sent = 0
        while sent < total and not (stop and stop.is_set()):
            due = min(total, int((loop.time() - start_mono) * rate) + 1)
            while sent < due:
                if len(in_flight) >= max_in_flight:
                    # The server stopped answering: keep the schedule, count what was shed.
                    self.log.errors["shed: too many requests in flight"] += 1
                else:
                    task = loop.create_task(self.create(pick_user(), start_wall + sent / rate))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                sent += 1
            next_at = start_mono + sent / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        self.log.scheduled += sent
        if in_flight:
            await asyncio.wait(in_flight, timeout=30)
        self.log.elapsed_s += loop.time() - start_mono
        return self.log

    async def run_burst(
        self, count: int, concurrency: int, pick_user: Callable[[], str]
    ) -> SendLog:
        """As fast as the API takes them, ``concurrency`` requests at a time (closed loop)."""
        loop = asyncio.get_running_loop()
        remaining = iter(range(count))

        async def lane() -> None:
            for _ in remaining:
                await self.create(pick_user())

        started = loop.time()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        self.log.scheduled += count
        self.log.elapsed_s += loop.time() - started
        return self.log


def random_picker(users: list[str], seed: int = 1) -> Callable[[], str]:
    chooser = random.Random(seed)
    return lambda: chooser.choice(users)
