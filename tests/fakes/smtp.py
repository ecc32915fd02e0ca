"""A real SMTP server (aiosmtpd) on loopback whose answers a test scripts per command, and
raw sockets for the failures a well-behaved server never produces."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

OK = "250 OK"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool
    raw: bytes


@dataclass
class ScriptedHandler:
    """Answers each MAIL/RCPT/DATA with the next scripted reply, then 250 OK."""

    mail: deque[str] = field(default_factory=deque)
    rcpt: deque[str] = field(default_factory=deque)
    data: deque[str] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 1
    quits: int = 0
    # When set, DATA waits for `gate` after setting `in_data` (a transaction held open).
    gate: asyncio.Event | None = None
    in_data: asyncio.Event = field(default_factory=asyncio.Event)
    quit_seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        self.quit_seen.set()
        return "221 Bye"

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        answer = self.mail.popleft() if self.mail else OK
        if answer.startswith("2"):
            envelope.mail_from = address
        return answer

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        answer = self.rcpt.popleft() if self.rcpt else OK
        if answer.startswith("2"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.in_data.set()
        if self.gate is not None:
            await self.gate.wait()
        answer = self.data.popleft() if self.data else OK
        if answer.startswith("2"):
            content = envelope.original_content or b""
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(Received(
                envelope.mail_from or "", list(envelope.rcpt_tos), message,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                authenticated=bool(session.authenticated), raw=content,
            ))
            if len(self.received) >= self.expected:
                self.arrived.set()
        return answer


class Authenticator:
    """Accepts exactly one username/password pair (PLAIN and LOGIN)."""

    def __init__(self, username: str, password: str) -> None:
        self.credentials = (username.encode(), password.encode())

    def __call__(self, server: SMTP, session: Session, envelope: Envelope,
                 mechanism: str, auth_data: Any) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == self.credentials
        return AuthResult(success=ok, handled=False)


class _CountingSMTP(SMTP):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.event_handler.connections += 1
        super().connection_made(transport)


@asynccontextmanager
async def smtp_server(handler: ScriptedHandler, *, port: int = 0,
                      implicit_tls: ssl.SSLContext | None = None,
                      **smtp_kwargs: Any) -> AsyncIterator[int]:
    """Serve on 127.0.0.1 in this event loop (on `port`, or any free one); yields the port."""
    loop = asyncio.get_running_loop()
    smtp_kwargs.setdefault("hostname", "mx.test")
    sessions: list[SMTP] = []

    def session() -> SMTP:
        sessions.append(_CountingSMTP(handler, loop=loop, **smtp_kwargs))
        return sessions[-1]

    server = await loop.create_server(session, "127.0.0.1", port, ssl=implicit_tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for smtp in sessions:
            if smtp.transport is not None:
                smtp.transport.close()
        await server.wait_closed()


@asynccontextmanager
async def raw_server(greeting: bytes | None,
                     accepted: asyncio.Event | None = None) -> AsyncIterator[int]:
    """A TCP server that sends `greeting` (or nothing at all) and never reads; `accepted`
    is set on the first connection."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if accepted is not None:
            accepted.set()
        if greeting is not None:
            writer.write(greeting)
            await writer.drain()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
