"""Control messages over PostgreSQL's LISTEN/NOTIFY (a PostgreSQL database and no Redis):
queue wake-ups, so that `tidings worker` processes and the other nodes wake at a create
instead of polling, and cache invalidations, so that no node goes on using a preference
another one changed.

One connection of its own (not the pool's: a LISTEN belongs to its session), which both
listens and sends. A NOTIFY goes in a statement of its own after the create committed,
never inside the creating transaction, where it would serialise commits. The payload is
the sender's id: a process skips its own (its waiters were woken directly).
Invalidations go on a channel of their own (the wake-up's stays as it was, for processes
of the release before), the payload the JSON array `[origin, scope, key]`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

CHANNEL = "tidings_queue"
INVALIDATIONS = "tidings_invalidate"
TIMEOUT_S = 2.0
# A connection is checked this often (a server gone without closing it sends nothing).
HEARTBEAT_S = 5.0


def asyncpg_dsn(database_url: str) -> str:
    """The DATABASE_URL (`postgresql+asyncpg://...`) as asyncpg's own DSN."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresRelay:
    """Implements `Relay` over LISTEN/NOTIFY; see the module docstring."""

    def __init__(self, database_url: str, *, channel: str = CHANNEL,
                 invalidations: str = INVALIDATIONS) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._invalidations = invalidations
        self.origin = uuid.uuid4().hex
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._heard: Callable[[], None] = lambda: None
        self._invalidated: Callable[[str, str], None] = lambda _scope, _key: None
        # One statement at a time on a connection: the sends and the heartbeat take turns.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await self.close()
        self._lost = asyncio.Event()
        conn = await asyncpg.connect(self._dsn, timeout=TIMEOUT_S)
        self._conn = conn
        conn.add_termination_listener(self._terminated)
        await conn.add_listener(self._channel, self._notified)
        await conn.add_listener(self._invalidations, self._told)

    def _terminated(self, _conn: Any) -> None:
        self._lost.set()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.origin:
            self._heard()

    def _told(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin, scope, key = json.loads(payload)
        except (ValueError, TypeError):
            return
        if origin != self.origin and isinstance(scope, str) and isinstance(key, str):
            self._invalidated(scope, key)

    async def listen(self, heard: Callable[[], None],
                     invalidated: Callable[[str, str], None]) -> None:
        self._heard = heard
        self._invalidated = invalidated
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), HEARTBEAT_S)
            except TimeoutError:
                await self._execute("SELECT 1")
                continue
            raise ConnectionError("the PostgreSQL connection closed")

    async def send(self) -> None:
        await self._execute("SELECT pg_notify($1, $2)", self._channel, self.origin)

    async def send_invalidations(self, items: Sequence[tuple[str, str]]) -> None:
        for scope, key in items:
            await self._execute("SELECT pg_notify($1, $2)", self._invalidations,
                                json.dumps([self.origin, scope, key]))

    async def _execute(self, query: str, *args: str) -> None:
        async with self._lock:
            conn = self._conn
            if conn is None or conn.is_closed():
                raise ConnectionError("not connected to PostgreSQL")
            await conn.execute(query, *args, timeout=TIMEOUT_S)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), TIMEOUT_S)
            except Exception:
                conn.terminate()
