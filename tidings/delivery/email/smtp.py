"""Email over SMTP (aiosmtplib), through a small pool of authenticated connections.

Guarantees: `send` answers an `Attempt` and never raises for anything the server or the
network does; the Message-ID is the record's, so a retry after a lost reply is a duplicate
the receiver can recognise. A connection is used by one send at a time, goes back to the
pool only after a clean transaction, is dropped on any error, and is closed (QUIT) after
`idle_s` without use. Neither credentials nor message contents are ever logged or put
into an `Attempt`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field, replace

import aiosmtplib

from tidings.delivery.email.format import envelope_address, needs_smtputf8, render_message
from tidings.delivery.messages import Email
from tidings.delivery.outcome import Attempt, Outcome, classify_smtp
from tidings.domain.addresses import valid_address

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)  # identity: a pool holds each connection once
class _Connection:
    client: aiosmtplib.SMTP
    reused: bool = False
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)


class SmtpSender:
    """Sends `Email` records through one SMTP relay.

    `implicit_tls` (SMTP_TLS) wins over `starttls`; with `starttls` the upgrade is required,
    never silently skipped. `tls_context` replaces the system trust store (tests pass a
    private CA). `timeout_s` bounds one attempt, connecting included, but not the wait for
    a free connection when all `pool_size` are busy. `local_hostname` is the name given
    in EHLO (default: this machine's FQDN, looked up off the event loop).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        implicit_tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        timeout_s: float = 30.0,
        pool_size: int = 8,
        idle_s: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._envelope_from = envelope_address(sender)
        self._username = username
        self._password = password
        self._implicit_tls = implicit_tls
        self._starttls = starttls and not implicit_tls
        self._tls_context = tls_context
        self._timeout = timeout_s
        self._idle_s = idle_s
        self._local_hostname = local_hostname
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def send(self, email: Email) -> Attempt:
        started = time.monotonic()
        if not valid_address(email.to):
            return Attempt(Outcome.PERMANENT, error="invalid recipient address")
        try:
            data = render_message(email, self._sender)
        except (ValueError, TypeError) as exc:
            return Attempt(Outcome.PERMANENT, error=f"cannot build the message: {exc}")
        options = ["SMTPUTF8"] if needs_smtputf8(email.to) else []
        async with self._slots:
            attempt, stale = await self._transact(email.to, data, options)
            if stale:
                # A pooled connection the server had already dropped says nothing about
                # this message: it gets one try on a fresh connection.
                attempt, _ = await self._transact(email.to, data, options)
        if attempt.outcome is Outcome.SENT:
            attempt = Attempt(Outcome.SENT, code="250", provider_id=email.message_id)
        return replace(attempt, elapsed_s=time.monotonic() - started)

    async def close(self) -> None:
        """QUIT every idle connection; sends in flight finish on theirs."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._quit_later(connection)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- one transaction on one connection --------------------------------------------

    async def _transact(
        self, to: str, data: bytes, options: list[str]
    ) -> tuple[Attempt, bool]:
        """The attempt, and whether it failed only because a pooled connection was stale."""
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                connection = await self._checkout()
                await connection.client.sendmail(
                    self._envelope_from, [to], data, mail_options=options
                )
        except BaseException as exc:
            stale = False
            if connection is not None:
                stale = connection.reused and isinstance(exc, aiosmtplib.SMTPServerDisconnected)
                connection.client.close()
            if not isinstance(exc, Exception):
                raise  # cancellation: the connection is gone, the caller decides
            return _failed(exc), stale
        self._checkin(connection)
        return Attempt(Outcome.SENT), False

    async def _checkout(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely stale
            if connection.expiry is not None:
                connection.expiry.cancel()
            if connection.client.is_connected:
                connection.reused = True
                return connection
            connection.client.close()
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username or None,
            password=self._password or None,
            use_tls=self._implicit_tls,
            start_tls=self._starttls,
            tls_context=self._tls_context,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return _Connection(client)

    def _checkin(self, connection: _Connection) -> None:
        if self._closed:
            self._quit_later(connection)
            return
        loop = asyncio.get_running_loop()
        connection.expiry = loop.call_later(self._idle_s, self._expire, connection)
        self._idle.append(connection)

    def _expire(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)
            self._quit_later(connection)

    def _quit_later(self, connection: _Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._quit(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _quit(self, connection: _Connection) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await connection.client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass  # a polite goodbye that failed; the socket is closed below either way
        finally:
            connection.client.close()


def _failed(exc: Exception) -> Attempt:
    """SMTP answers by their code (4xx transient, 5xx permanent at any stage); the
    network, timeouts and TLS trouble are transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 200:
        stage = _STAGES.get(type(exc), "SMTP")
        return Attempt(
            classify_smtp(exc.code),
            code=str(exc.code),
            error=f"{stage}: {exc.code} {_first_line(exc.message)}",
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported) and "SMTPUTF8" in str(exc):
        return Attempt(Outcome.PERMANENT, error="the server cannot deliver to this address")
    if isinstance(exc, TimeoutError):
        return Attempt(Outcome.TRANSIENT, error="timed out")
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return Attempt(Outcome.TRANSIENT, error=f"{type(exc).__name__}: {_first_line(str(exc))}")
    log.exception("unexpected error from the SMTP client", exc_info=exc)
    return Attempt(Outcome.TRANSIENT, error=type(exc).__name__)


_STAGES: dict[type[Exception], str] = {
    aiosmtplib.SMTPConnectResponseError: "connect",
    aiosmtplib.SMTPHeloError: "HELO",
    aiosmtplib.SMTPAuthenticationError: "AUTH",
    aiosmtplib.SMTPSenderRefused: "MAIL",
    aiosmtplib.SMTPRecipientRefused: "RCPT",
    aiosmtplib.SMTPDataError: "DATA",
}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""

