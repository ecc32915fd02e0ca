"""What the delivery scenarios start and drive: `tidings serve` (or `tidings worker`) on a
scratch database with a loopback SMTP sink, contacts and email notifications created
through the API, and delivery states read from the database. Processes are stopped by pid.

The scenarios themselves are in delivery.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from .loopback import parse_target
from .peers.launch import LaunchError, free_port
from .smtpsink import SmtpSink, start_sink
from .tokens import service_token
from .transport import RawTransport

BATCH_ITEMS = 1000  # the bulk endpoint's maximum


@dataclass
class Config:
    jwt_secret: str
    database_url: str  # "" = a fresh SQLite file in a scratch directory
    batch_size: int  # NOTIFICATION_BATCH_SIZE of the worker
    pin: bool


def _tidings() -> str:
    found = shutil.which("tidings") or str(Path(sys.executable).with_name("tidings"))
    if not Path(found).exists():
        raise LaunchError("`tidings` is not installed here: pip install -e .")
    return found


def _env(
    config: Config, db_url: str, sink: SmtpSink, port: int, in_serve: bool
) -> dict[str, str]:
    return dict(
        os.environ,
        JWT_SECRET=config.jwt_secret,
        DATABASE_URL=db_url,
        HOST="127.0.0.1",
        WEBSOCKET_PORT=str(port),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_STARTTLS="false",
        SMTP_TLS="false",
        EMAIL_FROM="bench@example.test",
        THROTTLE_PER_HOUR="0",  # one email per user anyway; no digest folding
        WORKERS_IN_SERVE="true" if in_serve else "false",
        NOTIFICATION_BATCH_SIZE=str(config.batch_size),
        RATE_LIMIT_CREATES="1000000/second",
        LOG_LEVEL="warning",
    )


def _spawn(
    command: list[str], env: dict[str, str], cwd: str, cpu: int | None
) -> subprocess.Popen[bytes]:
    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=pin)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def _wait_port(process: subprocess.Popen[bytes], port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LaunchError(f"tidings exited with code {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise LaunchError(f"tidings did not listen on 127.0.0.1:{port}")


@dataclass
class Stack:
    sink: SmtpSink
    db_url: str
    workdir: str
    port: int
    transport: RawTransport
    server: subprocess.Popen[bytes]
    latencies: list[float] = field(default_factory=list)  # the sink's, once stopped


@asynccontextmanager
async def _stack(config: Config, in_serve: bool) -> AsyncIterator[Stack]:
    """Sink on core 1, `tidings serve` on core 0, a scratch database; all stopped after."""
    server_cpu, other_cpu = (0, 1) if config.pin else (None, None)
    workdir = tempfile.mkdtemp(prefix="bench-delivery-")
    db_url = config.database_url or f"sqlite+aiosqlite:///{workdir}/tidings.db"
    sink = start_sink(other_cpu)
    port = free_port()
    server = _spawn(
        [_tidings(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        _env(config, db_url, sink, port, in_serve), workdir, server_cpu,
    )
    transport = RawTransport(
        parse_target(f"http://127.0.0.1:{port}"), service_token(config.jwt_secret), 16
    )
    stack = Stack(sink, db_url, workdir, port, transport, server)
    try:
        if other_cpu is not None:
            os.sched_setaffinity(0, {other_cpu})
        await _wait_port(server, port)
        yield stack
    finally:
        await transport.close()
        _stop(server)
        stack.latencies = sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _seed_contacts(transport: RawTransport, users: list[str]) -> None:
    """One PUT per user (the API has no bulk contact route), 16 in flight."""
    queue = list(reversed(users))

    async def lane() -> None:
        while queue:
            user = queue.pop()
            body = json.dumps({"email": f"{user}@example.test"}).encode()
            status, payload = await transport.send("PUT", f"/api/users/{user}/contact", body)
            if status != 200:
                raise RuntimeError(f"contact of {user}: HTTP {status} {payload[:200]!r}")

    await asyncio.gather(*(lane() for _ in range(16)))


def _item(user: str, scheduled: float) -> dict[str, object]:
    # The sink reads the instant after the last "@" of the subject (the title).
    return {"user_id": user, "type": "bench", "title": f"bench @{scheduled:.6f}",
            "message": "m", "media": ["email"]}


async def _create_bulk(transport: RawTransport, users: list[str]) -> None:
    for start in range(0, len(users), BATCH_ITEMS):
        items = [_item(u, time.time()) for u in users[start : start + BATCH_ITEMS]]
        body = json.dumps({"items": items}).encode()
        status, payload = await transport.post("/api/notifications/batch", body)
        if status not in (200, 201, 207):
            raise RuntimeError(f"batch: HTTP {status} {payload[:300]!r}")
        results = json.loads(payload).get("results", [])
        failed = [r for r in results if r.get("status") not in (201, 202)]
        if failed:
            raise RuntimeError(f"batch: {len(failed)} items failed, first {failed[0]}")


async def _count(db_url: str, where: str) -> dict[str, int]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text(
                "SELECT status, count(*) FROM notification_deliveries "
                f"WHERE medium = 'email' {where} GROUP BY status"))
            return {str(status): int(n) for status, n in rows}
    finally:
        await engine.dispose()

